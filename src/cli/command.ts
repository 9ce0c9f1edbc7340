/** A verb of the `shoal` command. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

/** A usage mistake: printed with the verb's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

let held = false;
let first: NodeJS.Signals | undefined;
let waiting: ((sig: NodeJS.Signals) => void) | undefined;
let more = 0;

/**
 * From now on SIGINT and SIGTERM are the command's to handle ({@link untilSignal}): the first is
 * kept until the command asks for it (one that comes while it starts up stops it as soon as it
 * is up, cleanly); a second, while it stops what it started, is noted and does not kill it
 * halfway (leaving servers or temp files behind); a third exits at once. Commands that run until
 * a signal (`dev`, `nats`) hold signals from the moment the process starts.
 */
export function holdSignals(): void {
  if (held) return;
  held = true;
  const on = (sig: NodeJS.Signals): void => {
    if (first === undefined) {
      first = sig;
      waiting?.(sig);
    } else if (++more === 1) {
      process.stderr.write(`${sig} again: still stopping (after ${first}); once more to exit at once\n`);
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
}

/** Resolves with the first SIGINT or SIGTERM (at once if one came already): see {@link holdSignals}. */
export function untilSignal(): Promise<NodeJS.Signals> {
  holdSignals();
  if (first !== undefined) return Promise.resolve(first);
  return new Promise((resolve) => (waiting = resolve));
}

/** An integer option (flag or environment value): undefined when absent, a UsageError naming it and its range when bad. */
export function intOption(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be ${min} to ${max}, got ${value}`);
  return n;
}
