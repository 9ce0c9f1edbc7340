/**
 * The checks that find damaged data (docs/operations.md, Corruption): an index checkpoint's
 * files against their checksums, a point's value and a sealed meta or journal record against
 * their CRC-32, and the Raft core's repair of a replica rebuilt from nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encodeValue } from '../../src/storage/store-codec.js';
import { decodeSealed, encodeSealed } from '../../src/storage/store-codec.js';
import { checkPointValue, DamagedValue, decodePoint, encodePoint } from '../../src/storage/points-store.js';
import { HnswIndex } from '../../src/index/mod.js';
import { CorruptDataError } from '../../src/runtime/errors.js';
import { encodeConf, makeEntry } from '../../src/raft/entry.js';
import { RaftNode } from '../../src/raft/raft-node.js';
import type { LogIndex, NodeId, Term } from '../../src/raft/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'shoal-corrupt-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const opts = { dim: 8, metric: 'l2' as const, hnsw: { m: 8, efConstruction: 50, ef: 50 }, seed: 3 };

function checkpointed(name: string): string {
  const index = HnswIndex.create(opts);
  index.upsert(Array.from({ length: 300 }, (_, i) => ({ id: `p${i}`, vector: Float32Array.from({ length: 8 }, (_, d) => Math.sin(i * 7 + d)) })));
  const dir = join(tmp, name);
  index.checkpoint(dir);
  return dir;
}

function flipMiddle(path: string, n: number): void {
  const b = readFileSync(path);
  const at = b.length >> 1;
  for (let i = 0; i < n; i++) b[at + i] = ~(b[at + i] as number) & 0xff;
  writeFileSync(path, b);
}

describe('corruption checks', () => {
  it('corruption checks - a checkpoint whose graph or table changed after it was written is refused, naming the file; one without checksums (older) still loads', () => {
    const good = checkpointed('good');
    assert.equal(HnswIndex.load(good, opts).count(), 300);

    const flipped = checkpointed('flipped');
    flipMiddle(join(flipped, 'graph.hnsw'), 64);
    assert.throws(() => HnswIndex.load(flipped, opts), (err: unknown) =>
      err instanceof CorruptDataError && err.file === join(flipped, 'graph.hnsw') && /fails its checksum/.test(err.message) && err.code === 'UNAVAILABLE');

    const short = checkpointed('short');
    truncateSync(join(short, 'graph.hnsw'), statSync(join(short, 'graph.hnsw')).size - 100);
    assert.throws(() => HnswIndex.load(short, opts), (err: unknown) => err instanceof CorruptDataError && /has \d+ bytes; its checkpoint wrote \d+/.test(err.message));

    const table = checkpointed('table');
    flipMiddle(join(table, 'table.v8'), 1);
    assert.throws(() => HnswIndex.load(table, opts), (err: unknown) => err instanceof CorruptDataError && err.file === join(table, 'table.v8'));

    // hnswlib alone takes the flipped graph without a word: only the checksum stands between it and wrong answers
    const unchecked = checkpointed('unchecked');
    flipMiddle(join(unchecked, 'graph.hnsw'), 64);
    rmSync(join(unchecked, 'sums.json'));
    assert.equal(HnswIndex.load(unchecked, opts).count(), 300);
  });

  it('corruption checks - a point value with a flipped bit anywhere fails its CRC; a value written before checksums still decodes', () => {
    const vector = Float32Array.from([0.5, -1, 2, 3, 4, 5, 6, 7]);
    const value = encodePoint(vector, { lang: 'en' }, 'tenant-1');
    assert.deepEqual(decodePoint(value), { vector, metadata: { lang: 'en' }, shardKey: 'tenant-1' });
    for (let byte = 0; byte < value.length; byte++) {
      const bad = Buffer.from(value);
      bad[byte] = (bad[byte] as number) ^ 0x10;
      assert.throws(() => checkPointValue(bad), DamagedValue, `a flip in byte ${byte} of ${value.length}`);
    }
    // the layout before checksums: u32 dim | floats | CBOR metadata
    const meta = encodeValue({ lang: 'en' });
    const old = Buffer.concat([Buffer.from(Uint32Array.of(8).buffer), Buffer.from(vector.buffer), meta]);
    assert.deepEqual(decodePoint(old), { vector, metadata: { lang: 'en' } });
    // an old value whose dim is damaged does not read past its end
    const badDim = Buffer.from(old);
    badDim.writeUInt32LE(9_000, 0);
    assert.throws(() => decodePoint(badDim), DamagedValue);
  });

  it('corruption checks - a sealed record with a flipped bit fails its CRC; plain CBOR (written before sealing) still decodes', () => {
    const value = encodeSealed({ appliedIndex: 1024, count: 7 });
    assert.deepEqual(decodeSealed(value), { appliedIndex: 1024, count: 7 });
    const bad = Buffer.from(value);
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
    assert.throws(() => decodeSealed(bad), /CRC-32/);
    assert.deepEqual(decodeSealed(encodeValue({ appliedIndex: 3 })), { appliedIndex: 3 });
  });

  it('corruption checks - a replica rebuilt from nothing (repairing, empty log) votes for no one until an append of its leader\'s term brings the commit point; a heartbeat alone does not repair it', () => {
    const id = (s: string): NodeId => s as NodeId;
    const conf = { voters: [id('a'), id('b'), id('c')], learners: [] };
    const core = new RaftNode({ id: id('b'), seed: 1 }, {
      hardState: { term: 3 as Term, vote: id('a'), commit: 0 as LogIndex, repairing: true },
      snapshot: { index: 0 as LogIndex, term: 0 as Term, conf: { voters: [], learners: [] } },
      entries: [],
      applied: 0,
    });
    assert.equal(core.damaged, true);
    // the leader's log: entries 1..6, from 4 on of its term 3
    const entries = [1, 2, 3, 4, 5, 6].map((i) => makeEntry(i as LogIndex, (i <= 3 ? 2 : 3) as Term, i === 1 ? 'config' : 'normal', i === 1 ? encodeConf(conf) : new Uint8Array([i])));
    core.step({ type: 'app', from: id('a'), to: id('b'), term: 3 as Term, prevIndex: 0 as LogIndex, prevTerm: 0 as Term, entries: entries.slice(0, 3), commit: 3 as LogIndex });
    assert.equal(core.damaged, true, 'the commit point is of an older term: entries of term 3 it had acknowledged may still be missing');
    core.step({ type: 'app', from: id('a'), to: id('b'), term: 3 as Term, prevIndex: 3 as LogIndex, prevTerm: 2 as Term, entries: entries.slice(3, 5), commit: 3 as LogIndex });
    // A heartbeat's commit point may be older than an entry this replica acknowledged before it
    // lost it (the raft sim found a leader that lacked a committed entry when heartbeats repaired).
    core.step({ type: 'heartbeat', from: id('a'), to: id('b'), term: 3 as Term, commit: 5 as LogIndex, seq: 2, quiesce: false });
    assert.equal(core.damaged, true, 'a heartbeat does not repair it');
    // the leader's next entry (the no-op a repairing replica asks for in an idle group) carries commit 5, of term 3
    core.step({ type: 'app', from: id('a'), to: id('b'), term: 3 as Term, prevIndex: 5 as LogIndex, prevTerm: 3 as Term, entries: entries.slice(5), commit: 5 as LogIndex });
    assert.equal(core.damaged, false, 'an append with the commit point of its leader\'s term: repaired');
  });
});
