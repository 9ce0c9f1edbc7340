/**
 * Shoal's error vocabulary. Every error that crosses a process boundary is a
 * {@link ShoalError} with a `code` from the closed union {@link ErrorCode}; on the wire it is
 * `{error: {code, message}}` and the receiving side revives it as the same class.
 */

/** The public API's codes (PROTOCOL.md) followed by the cluster-internal ones. */
export const ERROR_CODES = [
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PAYLOAD_TOO_LARGE',
  'UNAVAILABLE',
  'TIMEOUT',
  'INTERNAL',
  // internal to the cluster: never sent to a public client as such
  'NO_RESPONDERS',
  'MAILBOX_FULL',
  'DECODE_ERROR',
  'ACTOR_FAILED',
  'ACTOR_STOPPED',
  'NOT_LEADER',
  'STALE_MAP',
  'MOVING',
  'OVERLOADED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && CODE_SET.has(value);
}

/** The HTTP-like status PROTOCOL.md attaches to each public code (internal codes map to the public ones they surface as). */
export const ERROR_STATUS: Readonly<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  INTERNAL: 500,
  NO_RESPONDERS: 503,
  MAILBOX_FULL: 503,
  DECODE_ERROR: 400,
  ACTOR_FAILED: 500,
  ACTOR_STOPPED: 503,
  NOT_LEADER: 503,
  STALE_MAP: 503,
  MOVING: 503,
  OVERLOADED: 503,
};

/** Base of every Shoal error. `code` is what programs branch on; `message` is for people. */
export class ShoalError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ShoalError';
  }
}

export class InvalidArgumentError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
    this.name = 'InvalidArgumentError';
  }
}

export class NotFoundError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, options);
    this.name = 'NotFoundError';
  }
}

export class AlreadyExistsError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ALREADY_EXISTS', message, options);
    this.name = 'AlreadyExistsError';
  }
}

export class PayloadTooLargeError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PAYLOAD_TOO_LARGE', message, options);
    this.name = 'PayloadTooLargeError';
  }
}

export class UnavailableError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
    this.name = 'UnavailableError';
  }
}

/**
 * Stored data that fails its check (a checksum, a length, a file that does not load): a replica
 * that finds it refuses to serve from that data. `file` names what was damaged (a checkpoint
 * file, or the LMDB data file and the record in it). UNAVAILABLE on the wire: another replica
 * can answer.
 */
export class CorruptDataError extends ShoalError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
    this.name = 'CorruptDataError';
    this.file = file;
  }
}

/** The deadline passed before an answer came. For a write, the outcome is unknown. */
export class TimeoutError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TIMEOUT', message, options);
    this.name = 'TimeoutError';
  }
}

export class InternalError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INTERNAL', message, options);
    this.name = 'InternalError';
  }
}

/** Nobody subscribes to the subject asked: the actor does not exist or is not reachable. */
export class NoRespondersError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NO_RESPONDERS', message, options);
    this.name = 'NoRespondersError';
  }
}

/** The target mailbox is at its bound; the message was refused, not queued. */
export class MailboxFullError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MAILBOX_FULL', message, options);
    this.name = 'MailboxFullError';
  }
}

/** Bytes that do not decode under the codec they claim. */
export class DecodeError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DECODE_ERROR', message, options);
    this.name = 'DecodeError';
  }
}

/** The handler failed with something that is not a ShoalError (a bug, or a thrown non-error). */
export class ActorFailedError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ACTOR_FAILED', message, options);
    this.name = 'ActorFailedError';
  }
}

/** The actor was stopped (or escalated past its restart limit) and takes no more messages. */
export class ActorStoppedError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ACTOR_STOPPED', message, options);
    this.name = 'ActorStoppedError';
  }
}

/** A replica that is not (or no longer) its group's leader got a leader-only request. */
export class NotLeaderError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_LEADER', message, options);
    this.name = 'NotLeaderError';
  }
}

/**
 * A shard refused a request made with a shard map it does not serve (docs/resharding.md): the
 * router reads the collection's map again and retries inside the deadline.
 */
export class StaleMapError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STALE_MAP', message, options);
    this.name = 'StaleMapError';
  }
}

/** A write of a key that a reshard is moving to another shard, between its fence and its switch: retried inside the deadline. */
export class MovingError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MOVING', message, options);
    this.name = 'MovingError';
  }
}

/**
 * A node refused a request at once because one of its limits is passed: its bound of requests in
 * flight, its disk's free-space reserve, or `--max-memory` (docs/operations.md, Resource limits).
 * It surfaces as UNAVAILABLE, and a router does not retry it inside the deadline: the client hears
 * at once and backs off, instead of its request waiting in a queue until it times out.
 */
export class OverloadedError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('OVERLOADED', message, options);
    this.name = 'OverloadedError';
  }
}

type ErrorClass = new (message: string, options?: { cause?: unknown }) => ShoalError;

const CLASSES: Readonly<Record<ErrorCode, ErrorClass>> = {
  INVALID_ARGUMENT: InvalidArgumentError,
  NOT_FOUND: NotFoundError,
  ALREADY_EXISTS: AlreadyExistsError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  UNAVAILABLE: UnavailableError,
  TIMEOUT: TimeoutError,
  INTERNAL: InternalError,
  NO_RESPONDERS: NoRespondersError,
  MAILBOX_FULL: MailboxFullError,
  DECODE_ERROR: DecodeError,
  ACTOR_FAILED: ActorFailedError,
  ACTOR_STOPPED: ActorStoppedError,
  NOT_LEADER: NotLeaderError,
  STALE_MAP: StaleMapError,
  MOVING: MovingError,
  OVERLOADED: OverloadedError,
};

/** Builds the class that belongs to `code`. */
export function errorFromCode(code: ErrorCode, message: string, options?: { cause?: unknown }): ShoalError {
  return new CLASSES[code](message, options);
}

/** The shape of an error on the wire. */
export interface WireError {
  error: { code: ErrorCode; message: string };
}

export function isWireError(value: unknown): value is WireError {
  if (typeof value !== 'object' || value === null || !('error' in value)) return false;
  const e = (value as { error: unknown }).error;
  return typeof e === 'object' && e !== null && isErrorCode((e as { code?: unknown }).code);
}

/** Anything thrown, as a ShoalError: ShoalErrors pass through; other errors become ACTOR_FAILED. */
export function toShoalError(err: unknown): ShoalError {
  if (err instanceof ShoalError) return err;
  if (err instanceof Error) return new ActorFailedError(`${err.name}: ${err.message}`, { cause: err });
  return new ActorFailedError(`thrown non-error: ${String(err)}`, { cause: err });
}

export function toWireError(err: unknown): WireError {
  const e = toShoalError(err);
  return { error: { code: e.code, message: e.message } };
}

export function fromWireError(wire: WireError): ShoalError {
  return errorFromCode(wire.error.code, String(wire.error.message));
}

/** The codes a public client may see (PROTOCOL.md, Errors). */
export type PublicErrorCode = 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'ALREADY_EXISTS' | 'PAYLOAD_TOO_LARGE' | 'UNAVAILABLE' | 'TIMEOUT' | 'INTERNAL';

const PUBLIC_CODE: Readonly<Record<ErrorCode, PublicErrorCode>> = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  NOT_FOUND: 'NOT_FOUND',
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNAVAILABLE: 'UNAVAILABLE',
  TIMEOUT: 'TIMEOUT',
  INTERNAL: 'INTERNAL',
  NO_RESPONDERS: 'UNAVAILABLE',
  MAILBOX_FULL: 'UNAVAILABLE',
  DECODE_ERROR: 'INVALID_ARGUMENT',
  ACTOR_FAILED: 'INTERNAL',
  ACTOR_STOPPED: 'UNAVAILABLE',
  NOT_LEADER: 'UNAVAILABLE',
  STALE_MAP: 'UNAVAILABLE',
  MOVING: 'UNAVAILABLE',
  OVERLOADED: 'UNAVAILABLE',
};

/**
 * Anything thrown, as an error a public client may see: internal codes become the public code
 * they surface as (a full mailbox or a missing leader is UNAVAILABLE, undecodable bytes are
 * INVALID_ARGUMENT, a bug is INTERNAL), keeping the message.
 */
export function toPublicError(err: unknown): ShoalError {
  const e = toShoalError(err);
  const code = PUBLIC_CODE[e.code];
  return code === e.code ? e : errorFromCode(code, e.message, { cause: e });
}

/** A message safe to print for anything thrown. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
