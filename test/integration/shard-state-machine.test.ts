import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseFilter, type Filter } from '../../src/index/mod.js';
import { DEDUP_WINDOW_MS, type ShardStateMachine } from '../../src/shard/mod.js';
import { applyInBatches, testNode } from '../helpers/shard.js';
import { model, randomVector, rng, workload } from '../helpers/shard-workload.js';

const DIM = 16;
const node = testNode({ dim: DIM, checkpointEvery: 25 });
after(() => node.close());

const rand = rng(99);
const FILTERS: (Filter | undefined)[] = [undefined, parseFilter({ c: 2 }), parseFilter({ tag: 'odd', n: { $lt: 50 } })];
const QUERIES = Array.from({ length: 40 }, (_, i) => ({ vector: randomVector(rand, DIM), k: 10, filter: FILTERS[i % FILTERS.length] }));

/** Every query's full answer (ids, distances, metadata), as one string. */
async function answers(sm: ShardStateMachine): Promise<string> {
  return JSON.stringify(await Promise.all(QUERIES.map((q) => sm.search(q))));
}

async function points(sm: ShardStateMachine, ids: string[]): Promise<string> {
  return JSON.stringify(await sm.get(ids, { withVector: true, withMetadata: true }), (_k, v: unknown) => (v instanceof Float32Array ? Array.from(v) : v));
}

const ENTRIES = workload({ seed: 1, entries: 300, dim: DIM, ids: 400 });
const ALL_IDS = Array.from({ length: 400 }, (_, i) => `p${i}`);

describe('shard state machine', () => {
  it('shard state machine - replicas fed the same entries in other batches, or restarted midway, give identical hits', async () => {
    const a = await node.open('det-a');
    const b = await node.open('det-b');
    let c = await node.open('det-c');
    await applyInBatches(a, ENTRIES, 7);
    await applyInBatches(b, ENTRIES, 50);
    await applyInBatches(c, ENTRIES.slice(0, 163), 11);
    await c.close();
    c = await node.open('det-c'); // checkpoint at 150 + journal 151..163
    assert.equal(c.appliedIndex, 163);
    await applyInBatches(c, ENTRIES.slice(163), 13);
    const want = model(ENTRIES);
    for (const sm of [a, b, c]) {
      assert.equal(sm.appliedIndex, 300);
      assert.equal(sm.count(), want.size);
    }
    const ref = await answers(a);
    assert.equal(await answers(b), ref);
    assert.equal(await answers(c), ref, 'the restarted replica answers like the others');
    assert.equal(await points(b, ALL_IDS), await points(a, ALL_IDS));
    const got = await a.get(ALL_IDS, { withVector: true, withMetadata: true });
    assert.deepEqual(got.map((p) => p.id).sort(), [...want.keys()].sort());
    for (const p of got) assert.deepEqual(Array.from(p.vector ?? []), want.get(p.id)?.vector.map(Math.fround));
    // Their newest checkpoints (log index 300) are the same bytes.
    for (const f of ['graph.hnsw', 'table.v8']) {
      const file = (g: string): Buffer => readFileSync(join(node.root, 'index', g, 'ckpt-0000000000000300', f));
      assert.ok(file('det-b').equals(file('det-a')) && file('det-c').equals(file('det-a')), `checkpoint ${f} files are byte-identical`);
    }
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('shard state machine - checkpoints by journal size fall at the same log indexes on every replica, restarted or not', async () => {
    // 2,000 journal bytes: a checkpoint every few entries, mostly between the multiples of checkpointEvery
    const opts = { checkpointJournalBytes: 2_000 };
    const a = await node.open('jd-a', opts);
    const upTo = ENTRIES.slice(0, 289);
    // c, as a replica that crashed before recording the checkpoints after 150: it applies 151..163
    // without the size rule, and its reopen replays them and must decide those checkpoints as a did live
    let c = await node.open('jd-c', opts);
    await applyInBatches(a, upTo, 7);
    await applyInBatches(c, upTo.slice(0, 150), 11);
    await c.close();
    c = await node.open('jd-c', { checkpointJournalBytes: 2 ** 40 });
    await applyInBatches(c, upTo.slice(150, 163), 11);
    await c.close();
    c = await node.open('jd-c', opts);
    assert.ok(c.checkpoints > 0, 'the replay took checkpoints by size');
    await applyInBatches(c, upTo.slice(163), 13);
    const ckpts = (g: string): string[] => readdirSync(join(node.root, 'index', g)).filter((n) => n.startsWith('ckpt-'));
    const newest = ckpts('jd-a');
    assert.equal(newest.length, 1);
    assert.notEqual(Number((newest[0] as string).slice(5)) % 25, 0, 'the newest checkpoint was taken by size, not at a multiple of checkpointEvery');
    assert.deepEqual(ckpts('jd-c'), newest);
    assert.ok(a.checkpoints > 289 / 25, `more checkpoints than by index alone (${a.checkpoints})`);
    for (const f of ['graph.hnsw', 'table.v8']) {
      const file = (g: string): Buffer => readFileSync(join(node.root, 'index', g, newest[0] as string, f));
      assert.ok(file('jd-c').equals(file('jd-a')), `checkpoint ${f} files are byte-identical`);
    }
    assert.equal(await answers(c), await answers(a), 'the restarted replica answers like the other');
    await Promise.all([a.close(), c.close()]);
  });

  it('shard state machine - snapshot then restore into an empty state machine gives identical answers, and both go on alike', async () => {
    const src = await node.open('snap-src');
    await applyInBatches(src, ENTRIES.slice(0, 170), 20); // checkpoint at 150, journal 151..170
    const snap = await src.snapshot();
    assert.equal(snap.appliedIndex, 170);
    await src.apply(ENTRIES.slice(170, 200)); // after the snapshot: must not leak into it
    const dst = await node.open('snap-dst');
    await dst.apply(ENTRIES.slice(0, 3)); // some state of its own, which the restore replaces
    await dst.restore(snap.appliedIndex, snap.chunks);
    assert.equal(dst.appliedIndex, 170);
    const ref = await node.open('snap-ref');
    await applyInBatches(ref, ENTRIES.slice(0, 170), 170);
    assert.equal(dst.count(), ref.count());
    assert.equal(await answers(dst), await answers(ref));
    assert.equal(await points(dst, ALL_IDS), await points(ref, ALL_IDS));
    for (const sm of [dst, ref]) await sm.apply(ENTRIES.slice(170));
    await applyInBatches(src, ENTRIES.slice(200), 40);
    assert.equal(await answers(dst), await answers(src));
    assert.equal(await answers(ref), await answers(src));
    await Promise.all([src.close(), dst.close(), ref.close()]);
  });

  it('shard state machine - a snapshot estimates its size: within 15% of the bytes its stream yields, with and without a checkpoint', async () => {
    for (const [group, every] of [['est-ckpt', 25], ['est-journal', 1024]] as const) {
      const sm = await node.open(group, { checkpointEvery: every });
      await applyInBatches(sm, ENTRIES.slice(0, 170), 20);
      const snap = await sm.snapshot();
      let actual = 0;
      for await (const c of snap.chunks) actual += c.length;
      assert.ok(Math.abs(snap.bytes - actual) <= 0.15 * actual, `${group}: estimated ${snap.bytes} bytes, the stream has ${actual}`);
      await sm.close();
    }
  });

  it('shard state machine - a requestId is applied once while its at is within ten minutes, and forgotten after', async () => {
    const sm = await node.open('dedup');
    const v = (x: number): number[] => Array.from({ length: DIM }, () => x);
    const t0 = 1_000_000;
    const up = (index: number, at: number, id: string): Parameters<ShardStateMachine['apply']>[0][number] => ({ index, command: { type: 'upsert', requestId: 'r1', points: [{ id, vector: v(1) }], at } });
    assert.deepEqual(await sm.apply([up(1, t0, 'a')]), [{ upserted: 1 }]);
    assert.deepEqual(await sm.apply([up(2, t0 + DEDUP_WINDOW_MS, 'b')]), [{ upserted: 1 }], 'a retry returns the first result');
    assert.equal(sm.count(), 1, 'and changes nothing');
    assert.deepEqual(await sm.get(['b'], { withVector: false, withMetadata: false }), []);
    const del = await sm.apply([{ index: 3, command: { type: 'delete', ids: ['a', 'zz'], requestId: 'r2', at: t0 + 10 } }]);
    assert.deepEqual(del, [{ deleted: 1 }]);
    assert.deepEqual(await sm.apply([{ index: 4, command: { type: 'delete', ids: ['a'], requestId: 'r2', at: t0 + 20 } }]), [{ deleted: 1 }]);
    // Another command moves at past r1's window: r1 is forgotten and applies anew.
    await sm.apply([{ index: 5, command: { type: 'noop' } }, { index: 6, command: { type: 'delete', ids: [], at: t0 + DEDUP_WINDOW_MS + 1 } }]);
    assert.deepEqual(await sm.apply([up(7, t0 + DEDUP_WINDOW_MS + 2, 'c')]), [{ upserted: 1 }]);
    assert.deepEqual((await sm.get(['c'], { withVector: false, withMetadata: false })).map((p) => p.id), ['c']);
    // The dedup table travels in snapshots.
    await sm.apply([up(8, t0 + DEDUP_WINDOW_MS + 3, 'd')]);
    const snap = await sm.snapshot();
    const copy = await node.open('dedup-copy');
    await copy.restore(snap.appliedIndex, snap.chunks);
    assert.deepEqual(await copy.apply([up(9, t0 + DEDUP_WINDOW_MS + 4, 'e')]), [{ upserted: 1 }]);
    assert.equal(copy.count(), 1, 'the restored replica remembers r1');
    await Promise.all([sm.close(), copy.close()]);
  });

  it('shard state machine - get keeps request order, leaves out missing ids, returns a repeated id once; upsert last wins', async () => {
    const sm = await node.open('get');
    const vec = (x: number): number[] => Array.from({ length: DIM }, (_, i) => x + i);
    const res = await sm.apply([{ index: 1, command: { type: 'upsert', points: [{ id: 'x', vector: vec(1), metadata: { v: 1 } }, { id: 'y', vector: vec(2) }, { id: 'x', vector: vec(3), metadata: { v: 3 } }], at: 1 } }]);
    assert.deepEqual(res, [{ upserted: 2 }]);
    const got = await sm.get(['y', 'nope', 'x', 'y'], { withVector: true, withMetadata: true });
    assert.deepEqual(got.map((p) => p.id), ['y', 'x']);
    assert.deepEqual(Array.from(got[1]?.vector ?? []), vec(3));
    assert.deepEqual(got[1]?.metadata, { v: 3 });
    assert.equal(got[0]?.metadata, undefined);
    const bare = await sm.get(['x'], { withVector: false, withMetadata: false });
    assert.deepEqual(bare, [{ id: 'x' }]);
    const [hit] = await sm.search({ vector: vec(3), k: 1, withVector: true });
    assert.equal(hit?.id, 'x');
    assert.deepEqual(hit?.metadata, { v: 3 }, 'withMetadata defaults to true');
    assert.deepEqual(Array.from(hit?.vector ?? []), vec(3));
    await sm.close();
  });

  it('shard state machine - an invalid command is refused alike by every replica, applies nothing, and the log moves on', async () => {
    const cos = testNode({ dim: 3, metric: 'cosine' });
    const sm = await cos.open('bad');
    const res = await sm.apply([
      { index: 1, command: { type: 'upsert', points: [{ id: 'ok', vector: [1, 0, 0] }], at: 1 } },
      { index: 2, command: { type: 'upsert', points: [{ id: 'ok2', vector: [0, 1, 0] }, { id: 'zero', vector: [0, 0, 0] }], at: 2 } },
      { index: 3, command: { type: 'upsert', points: [{ id: 'short', vector: [1, 0] }], at: 3 } },
      { index: 4, command: { type: 'delete', ids: ['ok', 7 as unknown as string], at: 4 } },
      { index: 5, command: { type: 'upsert', points: [{ id: 'x'.repeat(300), vector: [1, 1, 1] }], at: 5 } },
    ]);
    assert.deepEqual(res, [
      { upserted: 1 },
      { rejected: { code: 'INVALID_ARGUMENT', message: 'points[1].vector is all zeros, which has no direction under the cosine metric' } },
      { rejected: { code: 'INVALID_ARGUMENT', message: 'points[0].vector has 2 dimensions; the index has 3' } },
      { rejected: { code: 'INVALID_ARGUMENT', message: 'ids[1] must be a non-empty string of at most 256 bytes' } },
      { rejected: { code: 'INVALID_ARGUMENT', message: 'points[0].id must be a non-empty string of at most 256 bytes' } },
    ]);
    assert.equal(sm.appliedIndex, 5);
    assert.equal(sm.count(), 1);
    assert.deepEqual((await sm.search({ vector: [0, 1, 0], k: 5 })).map((h) => h.id), ['ok'], 'ok2 of the refused batch is not there');
    await assert.rejects(sm.search({ vector: [0, 0, 0], k: 1 }), /vector is all zeros/);
    await assert.rejects(sm.apply([{ index: 7, command: { type: 'noop' } }, { index: 6, command: { type: 'noop' } }]), /increasing positive integer indexes/);
    await sm.close();
    await cos.close();
  });

  it('shard state machine - entries at or below the applied index are skipped', async () => {
    const sm = await node.open('skip');
    await sm.apply(ENTRIES.slice(0, 10));
    const before = await answers(sm);
    const res = await sm.apply(ENTRIES.slice(5, 12));
    assert.deepEqual(res.slice(0, 5), Array(5).fill({ skipped: true }));
    assert.equal(sm.appliedIndex, 12);
    const ref = await node.open('skip-ref');
    await ref.apply(ENTRIES.slice(0, 12));
    assert.equal(await answers(sm), await answers(ref));
    assert.notEqual(before, '');
    await Promise.all([sm.close(), ref.close()]);
  });

  it('shard state machine - a truncated snapshot fails the restore and leaves the group empty, not mixed', async () => {
    const src = await node.open('trunc-src');
    await src.apply(ENTRIES.slice(0, 60));
    const snap = await src.snapshot();
    const chunks: Uint8Array[] = [];
    for await (const c of snap.chunks) chunks.push(c);
    const dst = await node.open('trunc-dst');
    await dst.apply(ENTRIES.slice(0, 5));
    async function* cut(): AsyncGenerator<Uint8Array> {
      for (const c of chunks.slice(0, -1)) yield c; // no end frame
    }
    await assert.rejects(dst.restore(snap.appliedIndex, cut()), /ended before its end frame/);
    assert.equal(dst.appliedIndex, 0);
    assert.equal(dst.count(), 0);
    assert.deepEqual(await dst.search({ vector: QUERIES[0]?.vector ?? [], k: 3 }), []);
    await assert.rejects(dst.restore(59, (async function* () { yield* chunks; })()), /snapshot is at index 60, restore was asked for 59/);
    // Chunks cut anywhere (as a transport may cut them) restore the same state.
    const bytes = Buffer.concat(chunks);
    async function* rechunked(): AsyncGenerator<Uint8Array> {
      for (let i = 0, n = 1; i < bytes.length; i += n, n = (n * 7) % 9973 + 1) yield bytes.subarray(i, i + n);
    }
    await dst.restore(60, rechunked());
    assert.equal(await answers(dst), await answers(src));
    await Promise.all([src.close(), dst.close()]);
  });

  it('shard state machine - drop deletes the group and leaves other groups alone; reopening with another dim is refused', async () => {
    const gone = await node.open('drop-me');
    const kept = await node.open('keep-me');
    for (const sm of [gone, kept]) await sm.apply(ENTRIES.slice(0, 30));
    const keptAnswers = await answers(kept);
    await gone.drop();
    const again = await node.open('drop-me');
    assert.equal(again.appliedIndex, 0);
    assert.equal(again.count(), 0);
    assert.deepEqual(await again.get(ALL_IDS, { withVector: false, withMetadata: false }), []);
    assert.equal(await answers(kept), keptAnswers);
    await again.close();
    await assert.rejects(node.open('keep-me', { dim: DIM + 1 }), /holds dim 16 l2 points; opened as dim 17 l2/);
    await kept.close();
  });
});
