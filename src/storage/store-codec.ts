/**
 * How stores encode values: plain CBOR (no cbor-x records, so any language reads it), typed
 * arrays as RFC 8746 tags, and decoded typed arrays owning their memory (LMDB may reuse the
 * buffer a value was read from).
 */
import { Decoder, Encoder } from 'cbor-x';

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

export function encodeValue(value: unknown): Buffer {
  return encoder.encode(value);
}

export function decodeValue<T>(bytes: Uint8Array): T {
  return decoder.decode(bytes) as T;
}

/** The byte just above any string: `[group]` to `[groupEnd(group)]` spans every key `[group, ...]`. */
export function groupEnd(group: string): string {
  return `${group}\u0000`;
}
