/**
 * Sizes of requests and replies, and how the client splits an operation so that every request
 * and every reply fits in one NATS message (the server's max payload: 1 MiB by default). Pure:
 * no connection, no clock.
 */
import { createHash } from 'node:crypto';
import { LIMITS } from '../api/limits.js';
import { encodeBody, type Encoding } from '../runtime/codec.js';

/** nats-server's default max payload, assumed when the server did not say. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/**
 * What a message's budget keeps back from the max payload for what the estimates leave out:
 * headers, the request's options and requestId, the reply's coverage, and rounding.
 */
export const PAYLOAD_SLACK_BYTES = 16 * 1024;

/** Requests of one split operation in flight at once. */
export const SPLIT_CONCURRENCY = 4;

/** Bytes a body may take: the max payload less the slack (at least 1 KiB). */
export function payloadBudget(maxPayload: number): number {
  return Math.max(1024, maxPayload - PAYLOAD_SLACK_BYTES);
}

/**
 * Bytes one vector of `dim` dimensions takes in a reply. CBOR: a float32 typed array (RFC 8746
 * tag 85), 4 bytes a dimension. JSON: a float32 widened to a double prints up to ~21 characters
 * (`-0.012345678918063641`), plus its comma.
 */
export function vectorReplyBytes(dim: number, encoding: Encoding): number {
  return encoding === 'cbor' ? 4 * dim + 8 : 22 * dim + 2;
}

/** Bytes a reply spends on one point or hit besides its vector and metadata: the id and field names. */
export function pointOverheadBytes(id: string): number {
  // JSON escapes at most double a UTF-8 string (quotes, backslashes); field names and the distance
  return 2 * Buffer.byteLength(id) + 64;
}

/**
 * An upper bound, cheap to compute, of the bytes one point takes in an upsert request: the vector
 * by its length (a JSON number is at most 24 characters; a CBOR number at most 9 bytes, a
 * Float32Array 4 a dimension), the metadata by three times its JSON length.
 */
export function pointRequestBound(p: { id: string; vector: ArrayLike<number>; metadata?: unknown; shardKey?: string }, encoding: Encoding): number {
  const n = p.vector.length;
  const vector = encoding === 'json' ? 25 * n : p.vector instanceof Float32Array ? 4 * n + 8 : 9 * n + 5;
  const meta = p.metadata === undefined ? 0 : 3 * JSON.stringify(p.metadata).length;
  return pointOverheadBytes(p.id) + 2 * Buffer.byteLength(p.shardKey ?? '') + vector + meta;
}

/** The exact bytes `item` takes inside a request body's array (its encoding and a separator). */
export function encodedBytes(item: unknown, encoding: Encoding): number {
  return encodeBody(item, encoding).length + 1;
}

/**
 * Splits `items` into consecutive chunks of at most `maxCount` items whose sizes add up to at most
 * `budget` bytes. An item larger than the budget alone makes a chunk of its own (its request gets
 * PAYLOAD_TOO_LARGE). Deterministic: the same items, sizes and budget give the same chunks, which
 * is what keeps a split upsert's part requestIds the same for a retry.
 */
export function chunkBySize<T>(items: readonly T[], sizeOf: (item: T) => number, budget: number, maxCount: number): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (chunk.length > 0 && (bytes + size > budget || chunk.length >= maxCount)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/**
 * The requestId of part `part` (from 0) of an operation split into `parts` requests: derived from
 * the operation's own, so that a retry of the whole operation with the same requestId (and the same
 * split) sends the same ids and each part is applied at most once. Over the protocol's 128 bytes,
 * the base is a SHA-256 of the requestId.
 */
export function partRequestId(requestId: string, part: number, parts: number): string {
  if (parts === 1) return requestId;
  const suffix = `/part-${part + 1}-of-${parts}`;
  const base = Buffer.byteLength(requestId) + suffix.length <= LIMITS.requestIdMaxBytes ? requestId : createHash('sha256').update(requestId).digest('base64url');
  return base + suffix;
}

/** The items with a repeated key kept once, at its first position. */
export function firstOfEach<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((x) => !seen.has(key(x)) && (seen.add(key(x)), true));
}

/** The items with a repeated key kept once: the last one, at the last one's position (an upsert's "last one wins"). */
export function lastOfEach<T>(items: readonly T[], key: (item: T) => string): T[] {
  const last = new Map<string, number>();
  items.forEach((x, i) => last.set(key(x), i));
  return items.filter((x, i) => last.get(key(x)) === i);
}
