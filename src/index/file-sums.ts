/**
 * Checksums of a checkpoint's files: `sums.json` beside them lists each file's size and CRC-32,
 * written after the files are flushed and checked before any of them is read back. hnswlib
 * reads a damaged graph file without a word (a file with 64 bytes flipped in its middle loads
 * and answers searches with wrong neighbours; a truncated one throws "Index seems to be
 * corrupted"), and a damaged link list can crash the process, so nothing reaches hnswlib
 * unchecked.
 */
import { closeSync, fsyncSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { CorruptDataError } from '../runtime/errors.js';

export const SUMS_FILE = 'sums.json';
const SUMS_FORMAT = 1;
const CHUNK = 1 << 20;

interface SumsFile {
  format: number;
  files: Record<string, { bytes: number; crc32: number }>;
}

type Crc = (bytes: Uint8Array, crc: number) => number;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** node:zlib's crc32 (Node 20.15 and later), or the same function in JavaScript. */
const crc32: Crc = (zlib as { crc32?: Crc }).crc32 ?? ((bytes, crc) => {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = (TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
});

/** Size and CRC-32 of a file, read in 1 MiB chunks. */
export function sumFile(path: string): { bytes: number; crc32: number } {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  let crc = 0;
  let bytes = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, bytes);
      if (n === 0) break;
      crc = crc32(buf.subarray(0, n), crc) >>> 0;
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  return { bytes, crc32: crc };
}

/** Writes `sums.json` in `dir` for `names` (files already in `dir`), flushed. */
export function writeSums(dir: string, names: readonly string[]): void {
  const file: SumsFile = { format: SUMS_FORMAT, files: {} };
  for (const name of names) file.files[name] = sumFile(join(dir, name));
  const path = join(dir, SUMS_FILE);
  writeFileSync(path, JSON.stringify(file));
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks `names` in `dir` against its `sums.json`; throws CorruptDataError naming the file and
 * what is wrong. Returns false (nothing checked) for a checkpoint written before sums existed.
 */
export function checkSums(dir: string, names: readonly string[]): boolean {
  let text: string;
  try {
    text = readFileSync(join(dir, SUMS_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const path = join(dir, SUMS_FILE);
  let sums: SumsFile;
  try {
    sums = JSON.parse(text) as SumsFile;
  } catch {
    throw new CorruptDataError(path, `${path} is not valid JSON: the checkpoint's checksums are damaged`);
  }
  if (sums?.format !== SUMS_FORMAT || typeof sums.files !== 'object' || sums.files === null) {
    throw new CorruptDataError(path, `${path} is not a checksum list of format ${SUMS_FORMAT}`);
  }
  for (const name of names) {
    const want = sums.files[name];
    const file = join(dir, name);
    if (!want) throw new CorruptDataError(file, `${path} lists no checksum for ${name}`);
    let got: { bytes: number; crc32: number };
    try {
      got = sumFile(file);
    } catch (err) {
      throw new CorruptDataError(file, `${file} cannot be read: ${(err as Error).message}`, { cause: err });
    }
    if (got.bytes !== want.bytes) throw new CorruptDataError(file, `${file} has ${got.bytes} bytes; its checkpoint wrote ${want.bytes}`);
    if (got.crc32 !== want.crc32) {
      throw new CorruptDataError(file, `${file} fails its checksum (CRC-32 ${hex(got.crc32)}, written as ${hex(want.crc32)}): its bytes changed after the checkpoint`);
    }
  }
  return true;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
