/**
 * Encodings. Inside the cluster every message is CBOR (RFC 8949). At the public edge a request
 * is JSON unless its `Content-Type` header says `application/cbor`, and the reply uses the
 * request's encoding (PROTOCOL.md, Encoding). Bytes that do not decode are a
 * {@link DecodeError}, never a crash.
 */
import { Decoder, Encoder } from 'cbor-x';
import { checkPublicCbor } from './cbor-check.js';
import { DecodeError, InternalError } from './errors.js';

export type Encoding = 'json' | 'cbor';

export const CBOR_CONTENT_TYPE = 'application/cbor';
export const JSON_CONTENT_TYPE = 'application/json';

// Plain RFC 8949 CBOR, readable by any language: no cbor-x record extension. Typed arrays
// travel as RFC 8746 tags (Float32Array little-endian is tag 85). `copyBuffers` makes every
// decoded typed array own its memory instead of viewing the (reused) input buffer.
const cborEncoder = new Encoder({ useRecords: false, mapsAsObjects: true });
const cborDecoder = new Decoder({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

const EMPTY = new Uint8Array(0);
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Encodes one value as CBOR. Throws {@link InternalError} for values CBOR cannot carry. */
export function encodeCbor(value: unknown): Uint8Array {
  try {
    return cborEncoder.encode(value);
  } catch (err) {
    throw new InternalError(`value cannot be encoded as CBOR: ${(err as Error).message}`, { cause: err });
  }
}

/** Decodes exactly one CBOR value filling all of `bytes`. Throws {@link DecodeError}. */
export function decodeCbor(bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw new DecodeError('empty CBOR message');
  try {
    return cborDecoder.decode(bytes);
  } catch (err) {
    throw new DecodeError(`bytes are not valid CBOR: ${(err as Error).message}`, { cause: err });
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number>);
  }
  if (typeof value === 'bigint') return Number(value);
  return value;
}

export function encodeJson(value: unknown): Uint8Array {
  return utf8Encoder.encode(JSON.stringify(value, jsonReplacer));
}

export function decodeJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8Decoder.decode(bytes);
  } catch (err) {
    throw new DecodeError('body is not valid UTF-8', { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`body is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Something with a case-insensitive-enough `get`, such as NATS message headers. */
export interface HeaderReader {
  get(key: string): string;
}

/** The public edge's encoding, from the `Content-Type` header; JSON when absent. */
export function encodingOf(headers: HeaderReader | undefined): Encoding {
  if (!headers) return 'json';
  const ct = headers.get('Content-Type').trim().toLowerCase();
  return ct.startsWith(CBOR_CONTENT_TYPE) ? 'cbor' : 'json';
}

/**
 * Decodes a public request body. An empty body is `{}` (PROTOCOL.md). Throws
 * {@link DecodeError} for bytes that do not decode, and for CBOR that a request may not hold
 * (invalid UTF-8, tags other than typed arrays, a `__proto__` key, deep nesting: see
 * {@link checkPublicCbor}).
 */
export function decodeBody(bytes: Uint8Array, encoding: Encoding): unknown {
  if (bytes.length === 0) return {};
  if (encoding === 'json') return decodeJson(bytes);
  checkPublicCbor(bytes);
  return decodeCbor(bytes);
}

/** Encodes a public reply. In JSON, typed arrays become arrays of numbers. */
export function encodeBody(value: unknown, encoding: Encoding): Uint8Array {
  if (value === undefined) return EMPTY;
  return encoding === 'cbor' ? encodeCbor(value) : encodeJson(value);
}
