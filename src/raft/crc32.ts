/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven, in pure TypeScript: the
 * checksum of every log entry. Written here because the Raft core imports nothing; the host may
 * hand it a native implementation of the same function ({@link useNativeCrc32}).
 */

/** A CRC-32 that continues `crc` over `bytes` (node:zlib's `crc32` has this shape). */
export type Crc32Impl = (bytes: Uint8Array, crc: number) => number;

/** Inputs shorter than this stay in JavaScript: below it a call into native code costs more. */
export const NATIVE_CRC32_MIN_BYTES = 256;

let native: Crc32Impl | undefined;

/** CRC-32's check input, "123456789": its CRC is 0xCBF43926. */
const CHECK_INPUT = new Uint8Array([0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39]);

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * Uses `impl` for long inputs from now on, once it gives this module's answers on a check value
 * and on a continued CRC; returns whether it was taken. `undefined` goes back to JavaScript alone.
 * (node:zlib's crc32 is ~9× faster on a large entry: 0.23 against 2.1 ms for 784 KB.)
 */
export function useNativeCrc32(impl: Crc32Impl | undefined): boolean {
  native = undefined;
  if (impl === undefined) return true;
  const probe = new Uint8Array(NATIVE_CRC32_MIN_BYTES + 13).map((_, i) => (i * 31 + 7) & 0xff);
  const ok = impl(CHECK_INPUT, 0) >>> 0 === 0xcbf43926 && impl(probe, 0x12345678) >>> 0 === crc32(probe, 0x12345678);
  if (ok) native = impl;
  return ok;
}

/** Continues a CRC over `bytes`; start with `crc = 0`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (native !== undefined && bytes.length >= NATIVE_CRC32_MIN_BYTES) return native(bytes, crc) >>> 0;
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = (TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);

/** Continues a CRC over a non-negative integer below 2^53, as 8 little-endian bytes. */
export function crc32Number(n: number, crc = 0): number {
  scratch.setUint32(0, n >>> 0, true);
  scratch.setUint32(4, Math.floor(n / 2 ** 32), true);
  return crc32(scratchBytes, crc);
}
