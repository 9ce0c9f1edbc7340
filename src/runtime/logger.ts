/**
 * Structured logs on pino: one JSON object per line on standard error, such as
 *
 *     {"level":"info","time":"2025-01-01T12:05:01.123Z","node":"n1","actor":"replicas","trace_id":"…","span_id":"…","request_id":"…","msg":"replica started","collection":"docs","shard":0}
 *
 * `level` is a label, `time` ISO 8601. The fields given to {@link createLogger} and to `child`
 * come on every line (a node's logger carries `node`). While a request is handled, the line
 * carries the active OpenTelemetry span's `trace_id` and `span_id` and the request's
 * `request_id` (src/runtime/request-context.ts); outside one they are absent. An Error in the
 * fields is written with its name, message, stack (and code and cause when it has them).
 *
 * The level comes from `SHOAL_LOG_LEVEL` (`debug`, `info`, `warn`, `error`, `silent`; default
 * `info`). Writes to standard error are synchronous, so the lines a process wrote before it
 * crashed or called `process.exit` are all there (docs/operations.md, Logs, has the cost).
 */
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { currentRequestId } from './request-context.js';
import { SyncFdWriter } from './sync-writer.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** `value` as a level; throws naming `what` (e.g. `SHOAL_LOG_LEVEL`) when it is not one. */
export function parseLogLevel(value: string, what: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new Error(`${what} must be one of ${LOG_LEVELS.join(', ')}; got '${value}'`);
}

let warnedBadLevel = false;

/** The level `SHOAL_LOG_LEVEL` names; a bad one is reported once, on standard error, and `info` used. */
export function levelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const v = env['SHOAL_LOG_LEVEL'];
  if (v === undefined || v === '') return DEFAULT_LOG_LEVEL;
  try {
    return parseLogLevel(v, 'SHOAL_LOG_LEVEL');
  } catch (err) {
    if (!warnedBadLevel) process.stderr.write(`${(err as Error).message}; logging at ${DEFAULT_LOG_LEVEL}\n`);
    warnedBadLevel = true;
    return DEFAULT_LOG_LEVEL;
  }
}

let stderrSync: SyncFdWriter | undefined;

/** One synchronous writer on standard error (file descriptor 2) for every logger of the process. */
function stderrDestination(): DestinationStream {
  stderrSync ??= new SyncFdWriter(2);
  return stderrSync;
}

/** The active span's ids and the current request id, read for each line written. */
function activeContext(): Record<string, string> {
  const out: Record<string, string> = {};
  const span = trace.getActiveSpan();
  if (span !== undefined) {
    const sc = span.spanContext();
    if (isSpanContextValid(sc)) {
      out['trace_id'] = sc.traceId;
      out['span_id'] = sc.spanId;
    }
  }
  const rid = currentRequestId();
  if (rid !== undefined) out['request_id'] = rid;
  return out;
}

/** An Error as plain fields (JSON.stringify would write `{}`); its cause the same way, a few deep. */
export function serializeError(err: Error, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out['code'] = code;
  if (err.stack !== undefined) out['stack'] = err.stack;
  const cause = (err as { cause?: unknown }).cause;
  if (cause !== undefined && depth < 3) out['cause'] = cause instanceof Error ? serializeError(cause, depth + 1) : cause;
  return out;
}

function withErrors(fields: Record<string, unknown>): Record<string, unknown> {
  for (const k in fields) {
    if (fields[k] instanceof Error) return Object.fromEntries(Object.entries(fields).map(([key, v]) => [key, v instanceof Error ? serializeError(v) : v]));
  }
  return fields;
}

/**
 * A logger whose lines carry `base`. `destination` is for tests (any object with a `write` of
 * one line); the default is standard error, written synchronously.
 */
export function createLogger(base: Record<string, unknown> = {}, level: LogLevel = levelFromEnv(), destination?: DestinationStream): Logger {
  const root = pino(
    {
      level,
      base: null,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: withErrors,
      },
      mixin: activeContext,
    },
    destination ?? stderrDestination(),
  );
  return wrap(Object.keys(base).length > 0 ? root.child(withErrors(base)) : root);
}

function wrap(p: PinoLogger): Logger {
  return {
    debug: (msg, fields) => (fields === undefined ? p.debug(msg) : p.debug(fields, msg)),
    info: (msg, fields) => (fields === undefined ? p.info(msg) : p.info(fields, msg)),
    warn: (msg, fields) => (fields === undefined ? p.warn(msg) : p.warn(fields, msg)),
    error: (msg, fields) => (fields === undefined ? p.error(msg) : p.error(fields, msg)),
    child: (fields) => wrap(p.child(withErrors(fields))),
  };
}
