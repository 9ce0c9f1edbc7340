/**
 * A shard state machine on real LMDB whose stored data was damaged behind its back: opening it
 * fails with a CorruptDataError naming the file, and one that meets damage while open serves
 * nothing more and says so once (docs/operations.md, Corruption).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CorruptDataError } from '../../src/runtime/errors.js';
import type { LogEntry } from '../../src/shard/mod.js';
import { DB_NAMES } from '../../src/storage/node-env.js';
import { testNode } from '../helpers/shard.js';

const DIM = 4;

function upserts(n: number, from = 1): LogEntry[] {
  return Array.from({ length: n }, (_, k) => ({
    index: from + k,
    command: { type: 'upsert', requestId: `r${from + k}`, at: 1, points: [{ id: `p${from + k}`, vector: [k, 1, 2, 3] }] },
  })) as LogEntry[];
}

describe('shard corruption', () => {
  it('shard corruption - a point record lost from the LMDB file (fewer points than the meta record counts) fails the open, naming data.mdb', async () => {
    const node = testNode({ dim: DIM, checkpointEvery: 1_000 });
    try {
      const sm = await node.open('g');
      await sm.apply(upserts(30));
      await sm.close();
      const raw = node.env.openDB<Buffer, [string, string]>({ name: DB_NAMES.points, encoding: 'binary' });
      await raw.remove(['g', 'p7']);
      await assert.rejects(node.open('g'), (err: unknown) =>
        err instanceof CorruptDataError && err.file.endsWith('data.mdb') && /holds 29 points .*its meta record counts 30/.test(err.message));
    } finally {
      await node.close();
    }
  });

  it('shard corruption - a damaged index journal entry fails the open, naming the entry', async () => {
    const node = testNode({ dim: DIM, checkpointEvery: 1_000 });
    try {
      const sm = await node.open('g');
      await sm.apply(upserts(10));
      await sm.close();
      const raw = node.env.openDB<Buffer, (string | number)[]>({ name: DB_NAMES.shardMeta, encoding: 'binary' });
      const bytes = Buffer.from(raw.get(['g', 'journal', 4]) as Buffer);
      bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0x40;
      await raw.put(['g', 'journal', 4], bytes);
      await assert.rejects(node.open('g'), (err: unknown) => err instanceof CorruptDataError && /index journal entry 4 of g .* is damaged: its CRC-32/.test(err.message));
    } finally {
      await node.close();
    }
  });

  it('shard corruption - a read that meets a damaged value while open: UNAVAILABLE naming the point, onCorrupt told once, every later read and apply refused', async () => {
    const node = testNode({ dim: DIM, checkpointEvery: 1_000 });
    try {
      const told: CorruptDataError[] = [];
      const sm = await node.open('g', { onCorrupt: (err) => told.push(err) });
      await sm.apply(upserts(10));
      const raw = node.env.openDB<Buffer, [string, string]>({ name: DB_NAMES.points, encoding: 'binary' });
      const bytes = Buffer.from(raw.get(['g', 'p3']) as Buffer);
      bytes[6] = (bytes[6] as number) ^ 0x01; // a bit of the vector's first float
      await raw.put(['g', 'p3'], bytes);
      assert.equal((await sm.get(['p2'], { withVector: true, withMetadata: false })).length, 1, 'an intact point is still read');
      await assert.rejects(sm.get(['p3'], { withVector: true, withMetadata: false }), (err: unknown) =>
        err instanceof CorruptDataError && err.code === 'UNAVAILABLE' && /point "p3" of g .* is damaged: its CRC-32/.test(err.message));
      assert.equal(told.length, 1);
      await assert.rejects(sm.get(['p2'], { withVector: true, withMetadata: false }), /serves nothing: its stored data is damaged/);
      await assert.rejects(sm.search({ vector: [0, 1, 2, 3], k: 1 }), /serves nothing/);
      await assert.rejects(sm.apply(upserts(1, 11)), /serves nothing/);
      assert.equal(told.length, 1, 'told once');
      await sm.close();
    } finally {
      await node.close();
    }
  });
});
