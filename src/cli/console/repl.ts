/**
 * The interactive console: a readline prompt with TAB completion and history kept across
 * sessions. Ctrl-C ends the running command (a `watch`), or clears the line at the prompt; it
 * never ends the console. Ctrl-D or `exit` does.
 */
import { createInterface } from 'node:readline';
import { complete } from './complete.js';
import { appendHistory, HISTORY_SIZE, loadHistory } from './history.js';
import type { Registry } from './registry.js';
import type { Runner } from './runner.js';
import type { ConsoleSession } from './session.js';

export const PROMPT = 'shoal> ';

export async function runInteractive(session: ConsoleSession, registry: Registry, runner: Runner, historyPath: string): Promise<number> {
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    prompt: PROMPT,
    history: loadHistory(historyPath),
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    completer: (line: string, done: (err: Error | null, result: [string[], string]) => void) => {
      complete(line, registry, () => session.completions()).then(
        (r) => done(null, r),
        () => done(null, [[], line]),
      );
    },
  });
  const onInterrupt = (): void => {
    if (runner.interrupt()) return;
    // at the prompt: drop what was typed, as a shell does
    rl.write(null, { ctrl: true, name: 'u' });
    process.stdout.write('^C\n');
    rl.prompt();
  };
  rl.on('SIGINT', onInterrupt);
  // a SIGINT from outside the terminal (kill -INT) is treated the same way
  process.on('SIGINT', onInterrupt);
  const nodes = await session.client.clusterStatus(2_000).then(
    (s) => `${s.nodes.filter((n) => n.state === 'up').length} of ${s.nodes.length} nodes up`,
    () => 'no answer from the cluster yet',
  );
  session.print(`shoal console on ${session.opts.natsUrl} (prefix ${session.opts.prefix}): ${nodes}. help lists the commands; TAB completes; Ctrl-D leaves.`);
  rl.prompt();
  try {
    for await (const line of rl) {
      if (line.trim() !== '') appendHistory(historyPath, line.trim());
      await runner.runLine(line);
      if (runner.ended) break;
      rl.prompt();
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    rl.close();
  }
  return 0;
}
