/**
 * Runs console lines one command at a time, for the interactive console and for scripts
 * (`--exec`, standard input): each command gets an AbortSignal that Ctrl-C fires (a `watch`
 * ends on it), and `exit` or `quit` ends the session.
 */
import { describeError } from '../../runtime/errors.js';
import { EXIT_USAGE } from '../exit-codes.js';
import { parseLine } from './parse.js';
import type { Registry } from './registry.js';
import type { ConsoleSession } from './session.js';

export class Runner {
  private current: AbortController | undefined;
  /** The first non-zero exit code of the session's commands (what a script exits with). */
  firstFailure = 0;
  ended = false;

  constructor(
    private readonly registry: Registry,
    private readonly session: ConsoleSession,
  ) {}

  /** True while a command runs. */
  get busy(): boolean {
    return this.current !== undefined;
  }

  /** Ctrl-C: ends the running command's wait (a watch ends); true when one was running. */
  interrupt(): boolean {
    if (!this.current) return false;
    this.current.abort();
    return true;
  }

  /** Runs every command of `line` in turn. */
  async runLine(line: string): Promise<void> {
    let commands;
    try {
      commands = parseLine(line);
    } catch (err) {
      if (this.session.opts.json) this.session.print(JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message: describeError(err) } }));
      else this.session.printError(`error: ${describeError(err)}`);
      this.note(EXIT_USAGE);
      return;
    }
    for (const c of commands) {
      if (this.ended) return;
      if (c.words[0] === 'exit' || c.words[0] === 'quit') {
        this.ended = true;
        return;
      }
      this.current = new AbortController();
      try {
        this.note(await this.registry.run(c.words, this.session, this.current.signal));
      } finally {
        this.current = undefined;
      }
    }
  }

  private note(code: number): void {
    if (code !== 0 && this.firstFailure === 0) this.firstFailure = code;
  }
}
