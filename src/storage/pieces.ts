/**
 * Large values stored as pieces of one LMDB page each (issue 21 item 2, docs/operations.md).
 *
 * A value LMDB stores on overflow pages needs that many CONTIGUOUS free pages. A Raft log entry
 * or an index-journal entry of an upsert batch is 300-800 KB: 75-200 contiguous pages. The points'
 * churn (one overflow page per point, freed and allocated one at a time) cuts the free space
 * into runs of a few pages, so those values found no run long enough and grew the file while
 * tens of MiB stood free (bench/RESULTS.md, churn). Cut into pieces of at most {@link PIECE_BYTES}
 * (one overflow page each), a value takes any free pages.
 *
 * Layout: a value of at most PIECE_BYTES stays one record under its key `base` (as every value
 * was before); a longer one is the records `[...base, 0]`, `[...base, 1]`, ... whose bytes,
 * concatenated in key order, are the value. Keys sort `base` < `[...base, 0]` < ... < the next
 * base, so a range over bases meets a value's records together. Nothing in the pieces checks
 * them: the stores' own checksums over the whole value do (a Raft entry's CRC, a sealed value's
 * CRC-32), so a damaged or missing piece fails the same check as a damaged value.
 */
import type { Database, Transaction } from 'lmdb';

/** A key of a store that keeps values as pieces: an array of strings and numbers. */
export type Key = (string | number)[];

/** Data bytes of one overflow page of a 4 KiB-page environment (the page header is under 32 bytes). */
export const PIECE_BYTES = 4096 - 32;

/** Records a value of `length` bytes takes: 0 means one record under the base key itself. */
export function pieceCount(length: number): number {
  return length <= PIECE_BYTES ? 0 : Math.ceil(length / PIECE_BYTES);
}

/** The value's records: `[key, bytes]`, views into `value` (no copy). */
export function piecesOf(base: Key, value: Uint8Array): [Key, Uint8Array][] {
  const n = pieceCount(value.length);
  if (n === 0) return [[base, value]];
  const out: [Key, Uint8Array][] = [];
  for (let k = 0; k < n; k++) out.push([[...base, k], value.subarray(k * PIECE_BYTES, (k + 1) * PIECE_BYTES)]);
  return out;
}

/** The keys of a value of `count` pieces under `base` (0: the base key itself). */
export function pieceKeys(base: Key, count: number): Key[] {
  if (count === 0) return [base];
  return Array.from({ length: count }, (_, k) => [...base, k]);
}

/** The range of `base`'s records (the whole value or its pieces). */
export function valueRange(base: Key): { start: Key; end: Key; inclusiveEnd: true } {
  return { start: base, end: [...base, Number.MAX_SAFE_INTEGER], inclusiveEnd: true };
}

/**
 * For stores keyed `[...prefix, logIndex]`: the records of the values with `after < index`
 * (log indexes are integers, so the range starts at the next base and takes its pieces along).
 */
export function afterRange(prefix: Key, after: number): { start: Key; end: Key } {
  return { start: [...prefix, Math.floor(after) + 1], end: [...prefix, Number.MAX_SAFE_INTEGER] };
}

/** For stores keyed `[...prefix, logIndex]`: the records of the values with `index <= upTo`, up to the last piece of `upTo`. */
export function throughRange(prefix: Key, upTo: number): { start: Key; end: Key } {
  return { start: [...prefix, 0], end: [...prefix, Math.floor(upTo) + 1] };
}

/** Whether `key` is a value's first record (the whole value, or its piece 0) in a store whose bases have `baseLength` elements: to count values by their keys. */
export function isFirstRecord(key: Key, baseLength: number): boolean {
  return key.length === baseLength || key[baseLength] === 0;
}

function sameBase(key: Key, base: Key): boolean {
  for (let i = 0; i < base.length; i++) if (key[i] !== base[i]) return false;
  return true;
}

/**
 * Reassembles values from a range read in key order whose bases have `baseLength` elements:
 * yields each base once with its bytes (a copy the caller owns), and how many pieces it had (0:
 * one record). Records of one base that do not follow one another (a gap in the piece numbers,
 * the whole value beside pieces) are concatenated as they are: the value's checksum then fails.
 */
export function* joinPieces(records: Iterable<{ key: Key; value: Uint8Array }>, baseLength: number): Iterable<{ base: Key; value: Buffer; pieces: number }> {
  let base: Key | undefined;
  let parts: Uint8Array[] = [];
  let pieces = 0;
  const flush = (): { base: Key; value: Buffer; pieces: number } => ({ base: base as Key, value: Buffer.concat(parts), pieces });
  for (const { key, value } of records) {
    if (base === undefined || key.length < baseLength || !sameBase(key, base)) {
      if (base !== undefined) yield flush();
      base = key.slice(0, baseLength);
      parts = [];
      pieces = 0;
    }
    // Buffer.concat copies: LMDB may reuse the buffer a value was read into
    parts.push(value);
    if (key.length > baseLength) pieces++;
  }
  if (base !== undefined) yield flush();
}

/** One value read whole (or undefined); with `transaction`, as of that transaction. */
export function getPieced(db: Database<Buffer, Key>, base: Key, transaction?: Transaction): Buffer | undefined {
  const range = { ...valueRange(base), ...(transaction ? { transaction } : {}) };
  for (const { value } of joinPieces(db.getRange(range), base.length)) return value;
  return undefined;
}

/** Inside a write transaction: writes `value` under `base` in place of whatever value was there (its pieces included). */
export function putPiecedSync(db: Database<Buffer, Key>, base: Key, value: Uint8Array): void {
  removePiecedSync(db, base);
  for (const [key, bytes] of piecesOf(base, value)) db.putSync(key, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** Inside a write transaction: removes the value under `base` and all its pieces. */
export function removePiecedSync(db: Database<Buffer, Key>, base: Key): void {
  for (const key of Array.from(db.getKeys(valueRange(base)))) db.removeSync(key);
}
