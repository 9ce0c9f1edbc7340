/**
 * A reshard through two real shard state machines (LMDB, the index worker): a source that gives
 * half its keys to a new target, by the steps docs/resharding.md gives: begin, copy in pages,
 * catch-up from the journal, fence, switch, end. What a user would see at each step: counts,
 * gets and searches that show each point once, writes refused where they must be, a retry across
 * the switch applied once, and a target restored from a snapshot or restarted in the middle.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ShardingConfig } from '../../src/api/types.js';
import { initialMap, ownerOfFor, reshardedMap, sharderOf } from '../../src/cluster/shard-map.js';
import type { ApplyResult, LogEntry, LoggedCommand, ShardStateMachine } from '../../src/shard/mod.js';
import type { ImportCommand, PullAnswer } from '../../src/shard/reshard-import.js';
import { newShardState, type ReshardCommand } from '../../src/shard/reshard-state.js';
import { testNode } from '../helpers/shard.js';

const DIM = 8;
const node = testNode({ dim: DIM, checkpointEvery: 16 });
after(() => node.close());

const ring: ShardingConfig = { strategy: 'consistent-hash', vnodes: 64 };
const m0 = initialMap('u', ring, 1);
const m1 = reshardedMap('u', ring, m0, 2);
const owner1 = sharderOf(ring, m1);
const ids = Array.from({ length: 120 }, (_, i) => `p${String(i).padStart(3, '0')}`);
const moving = ids.filter((id) => owner1.shardOf(id) === 1);
const staying = ids.filter((id) => owner1.shardOf(id) === 0);
const vec = (i: number, v = 0) => Float32Array.from({ length: DIM }, (_, d) => Math.sin(i * 0.37 + d + v));

/** A shard's log, index by index. */
class Log {
  index = 0;
  constructor(readonly sm: ShardStateMachine) {}
  async apply(command: LoggedCommand): Promise<ApplyResult> {
    const e: LogEntry = { index: ++this.index, command };
    const [r] = await this.sm.apply([e]);
    return r as ApplyResult;
  }
  upsert(epoch: number, points: string[], requestId?: string, v = 0) {
    return this.apply({ type: 'upsert', points: points.map((id) => ({ id, vector: vec(ids.indexOf(id), v) })), requestId, at: Date.now(), mapEpoch: epoch });
  }
  step(step: ReshardCommand) {
    return this.apply({ type: 'reshard', step, at: Date.now() });
  }
  import(step: ImportCommand<Uint8Array>) {
    return this.apply({ type: 'import', step, at: Date.now() });
  }
}

/** The shard's reshard state, read afresh (not narrowed by an earlier assertion). */
const reshardOf = (sm: ShardStateMachine) => sm.reshard;

async function ids0(sm: ShardStateMachine, which: string[]): Promise<string[]> {
  return (await sm.get(which, { withVector: false, withMetadata: false })).map((p) => p.id).sort();
}

async function searchAll(sm: ShardStateMachine): Promise<string[]> {
  return (await sm.search({ vector: vec(0), k: 1000, ef: 1000 })).map((h) => h.id).sort();
}

/** Pulls from `src` for target 1 and imports into `dst` until the cursor is at the source's applied index. */
async function catchUp(src: Log, dst: Log, pageOps = 7): Promise<number> {
  let imports = 0;
  for (;;) {
    const cursor = dst.sm.reshard?.cursors[0] ?? 0;
    if (cursor === 0) {
      let after: string | undefined;
      for (;;) {
        const page = src.sm.pull({ target: 1, epoch: 1, cursor: 0, after, maxOps: pageOps }) as Extract<PullAnswer<Uint8Array>, { type: 'import-page' }>;
        const { next, ...cmd } = page;
        assert.deepEqual(await dst.import(cmd), { imported: true });
        imports++;
        if (next === null) break;
        after = next;
      }
      assert.deepEqual(await dst.import({ type: 'import-copied', source: 0, epoch: 1 }), { imported: true });
      continue;
    }
    if (cursor >= src.index) return imports;
    const a = src.sm.pull({ target: 1, epoch: 1, cursor, maxOps: pageOps });
    assert.equal(a.type, 'import');
    assert.deepEqual(await dst.import(a as ImportCommand<Uint8Array>), { imported: true });
    imports++;
  }
}

describe('shard reshard', () => {
  it('shard reshard - a source gives its moving keys to a new target: hidden until the switch, each point seen once, writes refused where they must be, a retry applied once, gone from the source at the end', async () => {
    const opts = { ownerOf: ownerOfFor(ring) };
    const s = new Log(await node.open('u-0', { ...opts, shard: 0 }));
    const t = new Log(await node.open('u-e1-1', { ...opts, shard: 1, initialReshard: newShardState(m0, m1) }));
    // before any reshard: epoch 0, no checks (the state of every shard today)
    await s.upsert(0, ids.slice(0, 80));
    assert.equal(reshardOf(s.sm), null);
    assert.deepEqual(await s.upsert(1, [ids[0] as string]), { refused: { code: 'STALE_MAP', message: 'shard 0 serves map epoch 0, not 1' } });

    await s.step({ type: 'reshard-begin', from: m0, next: m1 });
    assert.equal(reshardOf(s.sm)?.next?.epoch, 1);
    // writes go on at epoch 0; the moving ones also go to the journal
    await s.upsert(0, ids.slice(80, 100));
    // a request writing a moving and a staying key, applied at the source before the fence
    const mk = moving[0] as string;
    const sk = staying[0] as string;
    assert.deepEqual(await s.upsert(0, [mk, sk], 'req-both', 1), { upserted: 2 });
    assert.equal(t.sm.count(), 0);

    const copied = await catchUp(s, t);
    assert.ok(copied >= 3, `the copy took ${copied} imports (pages of 7 operations)`);
    const movedNow = moving.filter((id) => ids.indexOf(id) < 100);
    assert.equal(t.sm.count(), 0, 'imports are hidden before the switch');
    assert.deepEqual(await ids0(t.sm, moving), []);
    assert.deepEqual(await searchAll(t.sm), []);
    assert.equal(s.sm.count(), 100, 'the source still serves every point');

    // more writes, then the fence: moving keys refused, staying ones applied
    await s.upsert(0, ids.slice(100, 120));
    await s.step({ type: 'reshard-fence', epoch: 1 });
    const fencedAt = reshardOf(s.sm)?.fencedAt as number;
    assert.equal(fencedAt, s.index);
    const r = await s.upsert(0, [mk]);
    assert.ok('refused' in r && r.refused.code === 'MOVING', JSON.stringify(r));
    assert.ok('upserted' in (await s.upsert(0, [sk], undefined, 2)));
    await catchUp(s, t);

    // the switch: a target behind the fence refuses it; in step, it serves epoch 1
    const early = await t.step({ type: 'reshard-switch', epoch: 1, need: { 0: s.index + 5 } });
    assert.ok('reshard' in early && /imports behind the fences/.test(early.unchanged ?? ''));
    await t.step({ type: 'reshard-switch', epoch: 1, need: { 0: fencedAt } });
    await s.step({ type: 'reshard-switch', epoch: 1, need: {} });
    assert.equal(t.sm.count(), moving.length);
    assert.equal(s.sm.count(), staying.length);
    assert.deepEqual(await ids0(t.sm, ids), [...moving].sort());
    assert.deepEqual(await ids0(s.sm, ids), [...staying].sort());
    assert.deepEqual([...(await searchAll(s.sm)), ...(await searchAll(t.sm))].sort(), [...ids].sort(), 'each point once, none missing');
    assert.deepEqual(Array.from((await t.sm.get([mk], { withVector: true, withMetadata: false }))[0]?.vector ?? []), Array.from(vec(ids.indexOf(mk), 1)), 'the last value written at the source');
    assert.ok(movedNow.length > 0);

    // old epoch refused everywhere; the new one accepted by the new owner
    const stale = await s.upsert(0, [sk]);
    assert.ok('refused' in stale && stale.refused.code === 'STALE_MAP');
    const wrong = await s.upsert(1, [mk]);
    assert.ok('refused' in wrong && wrong.refused.code === 'WRONG_SHARD');
    // the request that wrote both keys, retried across the switch: neither is written again
    const before = Array.from((await t.sm.get([mk], { withVector: true, withMetadata: false }))[0]?.vector ?? []);
    assert.deepEqual(await t.upsert(1, [mk], 'req-both', 9), { upserted: 1 }, 'the target counts the part it imported');
    assert.deepEqual(await s.upsert(1, [sk], 'req-both', 9), { upserted: 2 });
    assert.deepEqual(Array.from((await t.sm.get([mk], { withVector: true, withMetadata: false }))[0]?.vector ?? []), before, 'the retry changed nothing');
    assert.ok('upserted' in (await t.upsert(1, [mk], 'after-switch', 3)));

    // a replica of the target from a snapshot, and one restarted: the same state
    const snap = await t.sm.snapshot();
    const t2 = await node.open('u-e1-1-copy', { ...opts, shard: 1 });
    await t2.restore(snap.appliedIndex, snap.chunks);
    assert.deepEqual(t2.reshard, t.sm.reshard);
    assert.equal(t2.count(), t.sm.count());
    assert.deepEqual(await searchAll(t2), await searchAll(t.sm));
    await s.sm.close();
    const s2 = new Log(await node.open('u-0', { ...opts, shard: 0 }));
    s2.index = s.index;
    assert.equal(s2.sm.count(), staying.length, 'the source restarted still hides what moved away');
    assert.deepEqual(await searchAll(s2.sm), [...staying].sort());

    // the end: the source deletes what moved away
    await s2.step({ type: 'reshard-end', epoch: 1 });
    await t.step({ type: 'reshard-end', epoch: 1 });
    assert.equal(s2.sm.count(), staying.length);
    assert.deepEqual(await ids0(s2.sm, moving), []);
    assert.equal(s2.sm.reshard?.active.epoch, 1);
    assert.equal(s2.sm.reshard?.next, null);
    assert.throws(() => s2.sm.pull({ target: 1, epoch: 1, cursor: 0, maxOps: 10 }), /runs no reshard to epoch 1/, 'the journal is gone with the reshard');
    await Promise.all([s2.sm.close(), t.sm.close(), t2.close()]);
  });
});
