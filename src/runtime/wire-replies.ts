/**
 * How the actor system's requests are answered on the wire: an ask's reply in the internal
 * envelope, a public-edge request's reply in its own encoding, and the typed error a failed
 * NATS request becomes.
 *
 * Internal wire format: a message body is the CBOR of the message; an ask's reply body is the
 * CBOR of `[0, value]` or `[1, code, message]`, the latter revived as the same error class.
 */
import { headers as natsHeaders, type Msg } from '@nats-io/transport-node';
import type { Reply } from './actor.js';
import { CBOR_CONTENT_TYPE, decodeCbor, encodeBody, encodeCbor, type Encoding } from './codec.js';
import {
  ERROR_STATUS,
  DecodeError,
  InternalError,
  NoRespondersError,
  PayloadTooLargeError,
  TimeoutError,
  UnavailableError,
  describeError,
  errorFromCode,
  isErrorCode,
  toPublicError,
  toShoalError,
} from './errors.js';
import { isMaxPayload, isNoResponders, isRequestTimeout } from './inbox-requester.js';

export function mapRequestError(err: unknown, subject: string, timeoutMs: number): Error {
  if (isNoResponders(err)) {
    return new NoRespondersError(`no responders for ${subject}`, { cause: err });
  }
  if (isRequestTimeout(err)) {
    return new TimeoutError(`no reply from ${subject} within ${timeoutMs} ms`, { cause: err });
  }
  return new UnavailableError(`request to ${subject} failed: ${describeError(err)}`, { cause: err });
}

/** A reply whose first answer counts; later ones are ignored. A class: it is made per asked message. */
class OnceReply implements Reply {
  private settled = false;
  constructor(private readonly respond: (ok: boolean, value: unknown) => void) {}
  get done(): boolean {
    return this.settled;
  }
  resolve(value: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.respond(true, value);
  }
  reject(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.respond(false, err);
  }
}

export const once = (respond: (ok: boolean, value: unknown) => void): Reply => new OnceReply(respond);

export function internalReply(msg: Msg): Reply {
  return once((ok, value) => {
    let bytes: Uint8Array;
    try {
      bytes = ok ? encodeCbor([0, value]) : encodeErrorReply(value);
    } catch (err) {
      bytes = encodeErrorReply(err);
    }
    try {
      msg.respond(bytes);
    } catch (err) {
      // Over the server's max payload: the asker gets an answer it can act on, not a timeout.
      msg.respond(encodeErrorReply(isMaxPayload(err) ? tooLarge(bytes.length, err) : err));
    }
  });
}

function tooLarge(bytes: number | undefined, err: unknown): PayloadTooLargeError {
  const what = `the reply${bytes === undefined ? '' : ` (${bytes} bytes)`} is over the NATS server's max payload (${describeError(err)})`;
  return new PayloadTooLargeError(`${what}: ask for fewer ids, a smaller k, or withVector false, or speak CBOR (a float32 takes 4 bytes in CBOR, about 19 in JSON)`, { cause: err });
}

function encodeErrorReply(err: unknown): Uint8Array {
  const e = toShoalError(err);
  return encodeCbor([1, e.code, e.message]);
}

/** Decodes an ask's reply: the value, or the remote error thrown as its own class. */
export function decodeInternalReply(bytes: Uint8Array): unknown {
  const decoded = decodeCbor(bytes);
  if (!Array.isArray(decoded) || (decoded[0] !== 0 && decoded[0] !== 1)) {
    throw new DecodeError('reply is not a Shoal reply envelope');
  }
  if (decoded[0] === 0) return decoded[1];
  const code: unknown = decoded[1];
  const message = String(decoded[2]);
  throw isErrorCode(code) ? errorFromCode(code, message) : new InternalError(`unknown error code ${String(code)}: ${message}`);
}

export function edgeReply(msg: Msg, encoding: Encoding): Reply {
  return once((ok, value) => {
    if (ok) {
      try {
        respondEdge(msg, encoding, value);
        return;
      } catch (err) {
        value = isMaxPayload(err) ? tooLarge(undefined, err) : new InternalError(`reply could not be encoded: ${describeError(err)}`);
      }
    }
    respondEdgeError(msg, encoding, value);
  });
}

/** Answers a public-edge request in its own encoding. */
export function respondEdge(msg: Msg, encoding: Encoding, value: unknown): void {
  const body = encodeBody(value ?? {}, encoding);
  if (encoding === 'cbor') {
    const h = natsHeaders();
    h.set('Content-Type', CBOR_CONTENT_TYPE);
    msg.respond(body, { headers: h });
  } else {
    msg.respond(body);
  }
}

/**
 * Answers a public-edge request with an error: `{error: {code, message}}` plus the service-error
 * headers. Only public codes leave (internal ones are mapped by {@link toPublicError}).
 */
export function respondEdgeError(msg: Msg, encoding: Encoding, err: unknown): void {
  const e = toPublicError(err);
  // A message that echoes a hostile request (a huge key or name) must not make the reply too large to send.
  const message = e.message.length > MAX_ERROR_MESSAGE_CHARS ? `${e.message.slice(0, MAX_ERROR_MESSAGE_CHARS)}… (message cut)` : e.message;
  const h = natsHeaders();
  h.set('Nats-Service-Error-Code', String(ERROR_STATUS[e.code]));
  h.set('Nats-Service-Error', message.replace(/[\r\n]+/g, ' '));
  if (encoding === 'cbor') h.set('Content-Type', CBOR_CONTENT_TYPE);
  try {
    msg.respond(encodeBody({ error: { code: e.code, message } }, encoding), { headers: h });
  } catch (err) {
    // This runs in a reply callback: a throw here would end the process. The asker gets a short
    // answer instead (the NATS client refuses, for one, a reply over the server's max payload).
    const fallback = new InternalError(`the error reply could not be sent (${describeError(err).slice(0, 200)}); it was ${e.code}`);
    const h2 = natsHeaders();
    h2.set('Nats-Service-Error-Code', String(ERROR_STATUS.INTERNAL));
    h2.set('Nats-Service-Error', fallback.message.replace(/[\r\n]+/g, ' '));
    if (encoding === 'cbor') h2.set('Content-Type', CBOR_CONTENT_TYPE);
    try {
      msg.respond(encodeBody({ error: { code: fallback.code, message: fallback.message } }, encoding), { headers: h2 });
    } catch {
      // nothing more can be said to this asker; its request times out
    }
  }
}

/** Longest error message a public reply carries; longer ones are cut. */
export const MAX_ERROR_MESSAGE_CHARS = 4_096;
