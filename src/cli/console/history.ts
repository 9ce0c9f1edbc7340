/**
 * The console's history, kept across sessions in `$XDG_STATE_HOME/shoal/console_history` (or
 * `~/.shoal_console_history` without XDG_STATE_HOME): one command line per line, oldest first,
 * appended as each is entered (a console that is killed keeps what was typed).
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** Lines kept: the file is cut to these when the console starts. */
export const HISTORY_SIZE = 1_000;

export function historyFile(env: NodeJS.ProcessEnv = process.env): string {
  const state = env['XDG_STATE_HOME'];
  return state ? join(state, 'shoal', 'console_history') : join(homedir(), '.shoal_console_history');
}

/** The history for readline: newest first. A missing or unreadable file is an empty history. */
export function loadHistory(file: string): string[] {
  let lines: string[];
  try {
    lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  } catch {
    return [];
  }
  if (lines.length > HISTORY_SIZE) {
    lines = lines.slice(-HISTORY_SIZE);
    try {
      writeFileSync(file, `${lines.join('\n')}\n`);
    } catch {
      // kept in memory all the same
    }
  }
  return lines.reverse();
}

/** Appends one entered line; a history that cannot be written is not worth stopping the console for. */
export function appendHistory(file: string, line: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    appendFileSync(file, `${line.replace(/\n/g, ' ')}\n`, { mode: 0o600 });
  } catch {
    // best effort
  }
}
