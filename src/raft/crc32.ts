/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven, in pure TypeScript: the
 * checksum of every log entry. Written here because the Raft core imports nothing.
 */

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Continues a CRC over `bytes`; start with `crc = 0`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
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
