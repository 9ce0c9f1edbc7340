/**
 * The `shoal` command's exit codes, one per class of outcome, and how a failure is reported:
 * `error: CODE: message` on stderr, or with `--json` the protocol's `{"error": {"code", "message"}}`
 * as one line on stdout. docs/cli.md carries the same table (test/unit/cli-exit-codes.test.ts
 * checks that they agree).
 */
import { ShoalError, describeError, toPublicError, type PublicErrorCode } from '../runtime/errors.js';
import { UsageError } from './command.js';
import { InUseError } from './lock.js';

export const EXIT_OK = 0;
/** A failure of the command itself that is none of the classes below. */
export const EXIT_FAILURE = 1;
/** The command line is wrong: unknown verb or flag, bad flag value, missing argument, unreadable --file. */
export const EXIT_USAGE = 2;
/** `status`: the cluster answered but is not healthy. `dev`, `node`: the data directory is in use. */
export const EXIT_DEGRADED = 3;
/** The same code for a command that found its data directory in use by another process. */
export const EXIT_IN_USE = EXIT_DEGRADED;
/** `search`, `search-batch`: the reply was printed, but some shards did not answer (`partial: true`). */
export const EXIT_PARTIAL = 4;
/** `upsert --skip-invalid`: every valid line was loaded, and at least one invalid line was skipped. */
export const EXIT_SKIPPED = 5;

/** One exit code per public error class of the protocol (PROTOCOL.md, Errors). */
export const EXIT_BY_CODE: Readonly<Record<PublicErrorCode, number>> = {
  INVALID_ARGUMENT: 10,
  NOT_FOUND: 11,
  ALREADY_EXISTS: 12,
  PAYLOAD_TOO_LARGE: 13,
  UNAVAILABLE: 14,
  TIMEOUT: 15,
  INTERNAL: 16,
};

/** `shoal node`: a write to its log could not be flushed; it stopped (a restart recovers from disk). */
export const EXIT_FLUSH_FAILED = 70;
/** `rebalance status --watch` stopped by Ctrl-C (SIGINT) or SIGTERM: 128 + the signal's number. */
export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;

/**
 * Every documented exit code with its name, in the order of docs/cli.md's table (the names are
 * the table's second column; the protocol's classes go by their error code).
 */
export const EXIT_CODES: readonly { code: number; name: string }[] = [
  { code: EXIT_OK, name: 'OK' },
  { code: EXIT_FAILURE, name: 'FAILURE' },
  { code: EXIT_USAGE, name: 'USAGE' },
  { code: EXIT_DEGRADED, name: 'DEGRADED' },
  { code: EXIT_PARTIAL, name: 'PARTIAL' },
  { code: EXIT_SKIPPED, name: 'SKIPPED' },
  ...Object.entries(EXIT_BY_CODE).map(([name, code]) => ({ code, name })),
  { code: EXIT_FLUSH_FAILED, name: 'FLUSH_FAILED' },
  { code: EXIT_SIGINT, name: 'SIGINT' },
  { code: EXIT_SIGTERM, name: 'SIGTERM' },
];

/** Whether `err` is a mistake on the command line (Node's parseArgs errors included). */
export function isUsageError(err: unknown): boolean {
  return err instanceof UsageError || ((err as { code?: unknown } | null)?.code as string | undefined)?.startsWith?.('ERR_PARSE_ARGS') === true;
}

/** The exit code of a command that failed with `err`. */
export function exitCodeOf(err: unknown): number {
  if (isUsageError(err)) return EXIT_USAGE;
  if (err instanceof InUseError) return EXIT_IN_USE;
  if (err instanceof ShoalError) return EXIT_BY_CODE[toPublicError(err).code as PublicErrorCode];
  return EXIT_FAILURE;
}

/**
 * The error as the protocol puts it on the wire: a protocol error keeps its (public) code; a usage
 * mistake is `INVALID_ARGUMENT` (the exit code tells it apart); anything else is `INTERNAL`.
 */
export function wireErrorOf(err: unknown): { error: { code: PublicErrorCode; message: string } } {
  if (err instanceof ShoalError) {
    const e = toPublicError(err);
    return { error: { code: e.code as PublicErrorCode, message: e.message } };
  }
  return { error: { code: isUsageError(err) ? 'INVALID_ARGUMENT' : 'INTERNAL', message: describeError(err) } };
}

/** The line printed on stderr for `err` without --json: `error: NOT_FOUND: collection 'x' does not exist`. */
export function errorLine(err: unknown): string {
  if (err instanceof ShoalError) {
    const e = toPublicError(err);
    return `error: ${e.code}: ${e.message}`;
  }
  return `error: ${describeError(err)}`;
}
