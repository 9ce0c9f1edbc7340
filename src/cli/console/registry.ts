/**
 * The console's commands: what each takes, what TAB completes for each of its arguments, and the
 * one place that runs a parsed command and prints what it gave (text, or one JSON document with
 * `--json`), an error as a line (on standard error without --json) and, for a mistake of usage,
 * the command's help. Never a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../command.js';
import { errorLine, exitCodeOf, isUsageError, wireErrorOf, EXIT_USAGE } from '../exit-codes.js';
import type { ConsoleSession } from './session.js';

/** What a command gave: text for people, the document `--json` prints (none: the command printed as it went, as `watch` does). */
export interface Output {
  text: string;
  json?: unknown;
  /** Exit code for scripts (`--exec`): 0 unless said. */
  code?: number;
}

/** What TAB completes for an argument. */
export type Completion = 'command' | 'actor' | 'collection' | 'shard' | 'node' | { words: readonly string[] };

export interface ConsoleCommand {
  name: string;
  /** The arguments, as help shows them: `<collection>/<n>`. */
  args: string;
  summary: string;
  /** More lines for `help <command>`. */
  more?: string;
  /** What TAB completes for each positional argument, in order. */
  complete?: Completion[];
  /** `signal` aborts on Ctrl-C (a `watch` ends; others finish within their deadline). */
  run(args: string[], s: ConsoleSession, signal: AbortSignal): Promise<Output>;
}

/** Parses a command's flags and positionals; a mistake is a UsageError (shown with the command's help). */
export function parseCommandArgs(
  args: string[],
  options: NonNullable<ParseArgsConfig['options']>,
  positionals: { min: number; max: number; what: string },
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0] ?? String(err));
  }
  const n = parsed.positionals.length;
  if (n < positionals.min) throw new UsageError(`missing ${positionals.what}`);
  if (n > positionals.max) throw new UsageError(`unexpected arguments: ${parsed.positionals.slice(positionals.max).join(' ')}`);
  return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
}

export class Registry {
  private readonly byName = new Map<string, ConsoleCommand>();

  constructor(readonly commands: ConsoleCommand[]) {
    for (const c of commands) this.byName.set(c.name, c);
  }

  get(name: string): ConsoleCommand | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.commands.map((c) => c.name), 'exit'];
  }

  usage(c: ConsoleCommand): string {
    return `${c.name}${c.args ? ` ${c.args}` : ''}`;
  }

  /** `help`: every command with its arguments and summary. */
  help(): string {
    const usages = this.commands.map((c) => this.usage(c));
    const width = Math.min(40, Math.max(...usages.map((u) => u.length)));
    return [
      'Commands (TAB completes commands, actors, collections and nodes; `help <command>` says more):',
      // a usage too long for the column gets a line of its own, its summary under it
      ...this.commands.map((c, i) => {
        const u = usages[i] ?? '';
        return u.length > width ? `  ${u}\n  ${''.padEnd(width)}  ${c.summary}` : `  ${u.padEnd(width)}  ${c.summary}`;
      }),
      `  ${'exit'.padEnd(width)}  leave (Ctrl-D too)`,
    ].join('\n');
  }

  /** `help <command>`. */
  helpOf(c: ConsoleCommand): string {
    return [`${this.usage(c)}`, `  ${c.summary}`, ...(c.more ? c.more.split('\n').map((l) => `  ${l}`) : [])].join('\n');
  }

  /**
   * Runs one parsed command and prints its output; resolves with its exit code (the CLI's codes:
   * docs/cli.md). An unknown command or a usage mistake prints help; any other failure one line
   * (with --json: the protocol's `{"error": {code, message}}`).
   */
  async run(words: string[], s: ConsoleSession, signal: AbortSignal): Promise<number> {
    const [name, ...args] = words;
    if (name === undefined) return 0;
    const c = this.get(name);
    const json = s.opts.json;
    if (!c) {
      const message = `unknown command '${name}'`;
      if (json) s.print(JSON.stringify(wireErrorOf(new UsageError(message))));
      else s.printError(`${message}\n\n${this.help()}`);
      return EXIT_USAGE;
    }
    try {
      const out = await c.run(args, s, signal);
      if (json) {
        if (out.json !== undefined) s.print(JSON.stringify(out.json, typedArrays));
      } else if (out.text !== '') {
        s.print(out.text);
      }
      return out.code ?? 0;
    } catch (err) {
      if (json) s.print(JSON.stringify(wireErrorOf(err)));
      else s.printError(`${errorLine(err)}${isUsageError(err) ? `\n\n${this.helpOf(c)}` : ''}`);
      return exitCodeOf(err);
    }
  }
}

/** JSON.stringify's replacer for replies that hold typed arrays (vectors): arrays of numbers. */
export function typedArrays(_key: string, x: unknown): unknown {
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<number>);
  if (typeof x === 'bigint') return Number(x);
  return x;
}

/** A value for people: indented JSON, vectors as arrays. */
export function pretty(value: unknown): string {
  return JSON.stringify(value, typedArrays, 2) ?? 'undefined';
}
