/**
 * How stores encode values: plain CBOR (no cbor-x records, so any language reads it), typed
 * arrays as RFC 8746 tags, and decoded typed arrays owning their memory (LMDB may reuse the
 * buffer a value was read from).
 */
import { Decoder, Encoder } from 'cbor-x';
import { crc32 } from '../raft/crc32.js';

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

/**
 * A sealed value: `0xff | u32 CRC-32 (LE) of the CBOR | CBOR`. 0xff (CBOR's "break") never begins
 * a CBOR item, so a value written before sealing existed (plain CBOR) is told apart and read
 * unchecked.
 */
const SEALED = 0xff;

export function encodeSealed(value: unknown): Buffer {
  const body = encoder.encode(value);
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = SEALED;
  out.writeUInt32LE(crc32(body), 1);
  body.copy(out, 5);
  return out;
}

/** Decodes a sealed (or plain CBOR) value; throws an Error saying what is wrong when its checksum fails or it does not decode. */
export function decodeSealed<T>(bytes: Uint8Array): T {
  if (bytes.length > 0 && bytes[0] === SEALED) {
    if (bytes.length < 5) throw new Error(`a sealed value of ${bytes.length} bytes is shorter than its header`);
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const want = b.readUInt32LE(1);
    const got = crc32(b.subarray(5));
    if (got !== want) throw new Error(`its CRC-32 is ${got.toString(16).padStart(8, '0')}, stored as ${want.toString(16).padStart(8, '0')}`);
    return decoder.decode(b.subarray(5)) as T;
  }
  try {
    return decoder.decode(bytes) as T;
  } catch (err) {
    throw new Error(`it does not decode: ${(err as Error).message}`);
  }
}
