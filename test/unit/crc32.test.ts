import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as zlib from 'node:zlib';
import { crc32, NATIVE_CRC32_MIN_BYTES, useNativeCrc32, type Crc32Impl } from '../../src/raft/crc32.js';
import { entryIntact, makeEntry } from '../../src/raft/entry.js';
import type { LogIndex, Term } from '../../src/raft/types.js';

const zlibCrc32 = (zlib as { crc32?: Crc32Impl }).crc32;

function bytes(n: number, seed: number): Uint8Array {
  let x = seed;
  return Uint8Array.from({ length: n }, () => (x = (x * 1103515245 + 12345) >>> 0) >>> 24);
}

describe('crc32', () => {
  it('crc32 - the check value of CRC-32/IEEE, whole and continued', () => {
    useNativeCrc32(undefined);
    const input = new TextEncoder().encode('123456789');
    assert.equal(crc32(input), 0xcbf43926);
    assert.equal(crc32(input.subarray(4), crc32(input.subarray(0, 4))), 0xcbf43926);
  });

  it('crc32 - with node:zlib handed in, every length and continuation gives the same checksums', () => {
    assert.ok(zlibCrc32, `this Node (${process.version}) has no zlib.crc32: the native path cannot be tested (Node 20.15 or later has it)`);
    const sizes = [0, 1, 7, NATIVE_CRC32_MIN_BYTES - 1, NATIVE_CRC32_MIN_BYTES, 1000, 65_537];
    const js = sizes.map((n, i) => crc32(bytes(n, i), i * 977));
    assert.equal(useNativeCrc32(zlibCrc32), true);
    try {
      assert.deepEqual(sizes.map((n, i) => crc32(bytes(n, i), i * 977)), js);
      // An entry checksummed by one path is intact to the other: logs written before stay readable.
      const e = makeEntry(42 as LogIndex, 7 as Term, 'normal', bytes(5000, 3));
      useNativeCrc32(undefined);
      assert.equal(entryIntact(e), true);
    } finally {
      useNativeCrc32(undefined);
    }
  });

  it('crc32 - an implementation that does not give the same answers is refused', () => {
    useNativeCrc32(undefined);
    const data = bytes(4096, 9);
    const expected = crc32(data);
    assert.equal(useNativeCrc32((b, c) => c ^ b.length), false);
    assert.equal(crc32(data), expected, 'the refused implementation is not used');
  });
});
