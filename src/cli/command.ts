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

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let first: NodeJS.Signals | undefined;
    let more = 0;
    // The handlers stay until the process exits: a second Ctrl-C while the command stops what it
    // started is noted, and does not kill it halfway through (leaving servers or temp files
    // behind); a third one exits at once.
    const on = (sig: NodeJS.Signals): void => {
      if (first === undefined) {
        first = sig;
        resolve(sig);
      } else if (++more === 1) {
        process.stderr.write(`${sig} again: still stopping (after ${first}); once more to exit at once\n`);
      } else {
        process.exit(130);
      }
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** An integer option (flag or environment value): undefined when absent, a UsageError naming it and its range when bad. */
export function intOption(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be ${min} to ${max}, got ${value}`);
  return n;
}
