/**
 * A `restore` entry (docs/backups.md, src/shard/restore-image.ts): state machines of a new group
 * install another group's image at their own log index; they answer as the image's source did,
 * hold byte-identical checkpoints, go on alike, reopen at the entry's index, and refuse an image
 * that does not decode alike (empty, the entry applied).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { LogEntry, ShardStateMachine } from '../../src/shard/mod.js';
import { FrameReader, type SnapshotFrame } from '../../src/shard/snapshot-codec.js';
import { applyInBatches, testNode } from '../helpers/shard.js';
import { randomVector, rng, workload } from '../helpers/shard-workload.js';

const DIM = 16;
const node = testNode({ dim: DIM, checkpointEvery: 25 });
after(() => node.close());

const rand = rng(5);
const QUERIES = Array.from({ length: 30 }, () => ({ vector: randomVector(rand, DIM), k: 10 }));
const ENTRIES = workload({ seed: 3, entries: 240, dim: DIM, ids: 400 });

async function answers(sm: ShardStateMachine): Promise<string> {
  return JSON.stringify(await Promise.all(QUERIES.map((q) => sm.search(q))));
}

const restoreAt = (index: number): LogEntry => ({ index, command: { type: 'restore', object: 'b/shard-0', at: 0 } });
/** Entries of the workload renumbered from `first`. */
const renumber = (entries: readonly LogEntry[], first: number): LogEntry[] => entries.map((e, i) => ({ ...e, index: first + i }));

it('shard restore image - replicas load another group\'s image at their own index, identically, and go on alike', async () => {
  const src = await node.open('ri-src');
  await applyInBatches(src, ENTRIES.slice(0, 170), 20); // checkpoint at 150, journal 151..170
  const snap = await src.snapshot();
  const parts: Uint8Array[] = [];
  for await (const c of snap.chunks) parts.push(c);
  const image = Buffer.concat(parts);
  const images = async function* (object: string): AsyncIterable<Uint8Array> {
    assert.equal(object, 'b/shard-0');
    for (let i = 0; i < image.length; i += 4096) yield image.subarray(i, i + 4096);
  };
  const want = await answers(src);

  const r1 = await node.open('ri-r1', { images });
  const r2 = await node.open('ri-r2', { images });
  await r1.apply(renumber(ENTRIES.slice(0, 4), 1)); // state of its own, which the restore replaces
  const [res1] = await r1.apply([restoreAt(5)]);
  const [, res2] = await r2.apply([{ index: 4, command: { type: 'noop' } }, restoreAt(5)]);
  assert.deepEqual(res1, { restored: { points: src.count(), from: 170 } });
  assert.deepEqual(res2, res1);
  for (const r of [r1, r2]) {
    assert.equal(r.appliedIndex, 5);
    assert.equal(r.count(), src.count());
    assert.equal(await answers(r), want, 'the restored replica answers as the image\'s source did');
  }
  for (const f of ['graph.hnsw', 'table.v8']) {
    const file = (g: string): Buffer => readFileSync(join(node.root, 'index', g, 'ckpt-0000000000000005', f));
    assert.ok(file('ri-r1').equals(file('ri-r2')), `checkpoint ${f} files at the restore entry's index are byte-identical`);
  }

  // both go on alike, through their next checkpoint (index 25), and a reopen is where it was
  const more = renumber(ENTRIES.slice(170, 210), 6);
  await applyInBatches(r1, more, 9);
  await applyInBatches(r2, more, 40);
  assert.equal(await answers(r1), await answers(r2));
  await r1.close();
  const again = await node.open('ri-r1', { images });
  assert.equal(again.appliedIndex, 45);
  assert.equal(await answers(again), await answers(r2), 'reopened: checkpoint + journal give the same answers');

  // an image that does not decode: refused alike, the group empty, the entry applied
  const bad = await node.open('ri-bad', { images: async function* () { yield new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]); } });
  const [r] = await bad.apply([restoreAt(3)]);
  assert.ok(r && 'rejected' in r, JSON.stringify(r));
  assert.equal(bad.appliedIndex, 3);
  assert.equal(bad.count(), 0);
  await Promise.all([src.close(), again.close(), r2.close(), bad.close()]);
});

it('shard restore image - a backup\'s image carries the index saved whole (no journal), restores to the same answers, and leaves its source unchanged', async () => {
  const src = await node.open('oc-src');
  const twin = await node.open('oc-twin');
  await applyInBatches(src, ENTRIES.slice(0, 170), 20);
  await applyInBatches(twin, ENTRIES.slice(0, 170), 33);
  const snap = await src.snapshot({ ownCheckpoint: true });
  const parts: Uint8Array[] = [];
  for await (const c of snap.chunks) parts.push(c);
  const image = Buffer.concat(parts);
  const frames = new FrameReader().push(image);
  const header = frames[0] as Extract<SnapshotFrame, { t: 'header' }>;
  const end = frames[frames.length - 1] as Extract<SnapshotFrame, { t: 'end' }>;
  assert.equal(header.checkpointIndex, 170, 'the image\'s checkpoint is the index at its applied index');
  assert.equal(end.journal, 0, 'no journal to replay');
  const want = await answers(src);
  const r = await node.open('oc-r', { images: async function* () { yield image; } });
  const [res] = await r.apply([restoreAt(2)]);
  assert.deepEqual(res, { restored: { points: src.count(), from: 170 } });
  assert.equal(await answers(r), want);
  // the save did not touch the source's index: it goes on exactly as a replica that never saved
  await applyInBatches(src, ENTRIES.slice(170, 240), 10);
  await applyInBatches(twin, ENTRIES.slice(170, 240), 70);
  assert.equal(await answers(src), await answers(twin));
  await Promise.all([src.close(), twin.close(), r.close()]);
});
