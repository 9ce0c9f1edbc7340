/** The pure parts of resharding (docs/resharding.md): shard maps, which keys move, a shard's decisions. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ShardingConfig } from '../../src/api/types.js';
import { initialMap, movePairs, ownerOfFor, reshardedMap, sharderOf } from '../../src/cluster/shard-map.js';
import { InvalidArgumentError } from '../../src/runtime/errors.js';
import { decodePoint, encodePoint, shardKeyOf } from '../../src/storage/points-store.js';
import { afterImport, answerPull, importApplies } from '../../src/shard/reshard-import.js';
import { EMPTY_IMPORT_ENTRIES, worthImporting } from '../../src/actors/replica/importer.js';
import { applyReshard, initialReshardState, newShardState, ShardOwnership, type ReshardState } from '../../src/shard/reshard-state.js';

const ring: ShardingConfig = { strategy: 'consistent-hash', vnodes: 64 };
const keys = Array.from({ length: 20_000 }, (_, i) => `point-${i}`);

function step(state: ReshardState, ...cmds: Parameters<typeof applyReshard>[1][]): ReshardState {
  let s = state;
  let index = 10;
  for (const c of cmds) {
    const r = applyReshard(s, c, index++);
    if ('state' in r) s = r.state;
  }
  return s;
}

describe('reshard logic', () => {
  it('shard map - a reshard keeps the groups of shard numbers in both maps and names new ones by epoch', () => {
    const m0 = initialMap('u1', ring, 2);
    assert.deepEqual(m0, { epoch: 0, shards: 2, groups: ['u1-0', 'u1-1'] });
    const m1 = reshardedMap('u1', ring, m0, 4);
    assert.deepEqual(m1.groups, ['u1-0', 'u1-1', 'u1-e1-2', 'u1-e1-3']);
    const m2 = reshardedMap('u1', ring, m1, 3);
    assert.deepEqual(m2.groups, ['u1-0', 'u1-1', 'u1-e1-2']);
    // back to 4: shard 3 gets a group no shard had before
    assert.deepEqual(reshardedMap('u1', ring, m2, 4).groups, ['u1-0', 'u1-1', 'u1-e1-2', 'u1-e3-3']);
  });

  it('shard map - a bad reshard is INVALID_ARGUMENT naming the field and the limit', () => {
    const m0 = initialMap('u', ring, 2);
    const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message));
    bad(() => reshardedMap('u', ring, m0, 0), /shards must be an integer from 1 to 256, got 0/);
    bad(() => reshardedMap('u', ring, m0, 257), /shards must be an integer from 1 to 256, got 257/);
    bad(() => reshardedMap('u', ring, m0, 2.5), /shards must be an integer/);
    bad(() => reshardedMap('u', ring, m0, 2), /already has 2 shards/);
    bad(() => reshardedMap('u', ring, m0, 3, ['m', 't']), /boundaries is only for the 'range' strategy/);
    const range: ShardingConfig = { strategy: 'range', boundaries: ['m'] };
    const r0 = initialMap('u', range, 2);
    bad(() => reshardedMap('u', range, r0, 3), /boundaries is required/);
    bad(() => reshardedMap('u', range, r0, 3, ['m']), /exactly shards - 1 = 2 strings, got 1/);
    bad(() => reshardedMap('u', range, r0, 3, ['t', 'm']), /strictly increasing.*\[0\] 't' is not below \[1\] 'm'/);
    bad(() => reshardedMap('u', range, r0, 2, ['m']), /already has 2 shards with these boundaries/);
    assert.deepEqual(reshardedMap('u', range, r0, 2, ['g']).boundaries, ['g'], 'the same count with new boundaries is a reshard');
  });

  it('shard map - every key whose owner changes is in one of the move pairs, for every strategy, up and down', () => {
    const configs: ShardingConfig[] = [ring, { strategy: 'custom', vnodes: 64 }, { strategy: 'hash' }, { strategy: 'range', boundaries: ['point-3'] }];
    for (const sharding of configs) {
      for (const [a, b, bounds] of [[2, 4, ['point-2', 'point-5', 'point-7']], [4, 3, ['point-3', 'point-6']], [1, 2, ['point-5']]] as const) {
        const from = sharding.strategy === 'range' ? { ...initialMap('u', { strategy: 'range', boundaries: a === 4 ? ['point-2', 'point-5', 'point-7'] : a === 2 ? ['point-3'] : [] }, a) } : initialMap('u', sharding, a);
        const to = reshardedMap('u', sharding, from, b, sharding.strategy === 'range' ? [...bounds] : undefined);
        const pairs = new Set(movePairs(sharding, from, to).map((p) => `${p.source}>${p.target}`));
        const [f, t] = [sharderOf(sharding, from), sharderOf(sharding, to)];
        let moved = 0;
        for (const k of keys) {
          const [s, d] = [f.shardOf(k), t.shardOf(k)];
          if (s === d) continue;
          moved++;
          assert.ok(pairs.has(`${s}>${d}`), `${sharding.strategy} ${a} -> ${b}: ${k} moves ${s} -> ${d}, a pair not planned`);
        }
        if (sharding.strategy === 'consistent-hash' && a === 2 && b === 4) {
          // only the keys that fall to the new shards move: about half, not most
          assert.ok(moved > keys.length * 0.35 && moved < keys.length * 0.65, `a ring grown 2 -> 4 moved ${moved} of ${keys.length}`);
        }
        if (sharding.strategy === 'hash' && a === 2 && b === 4) assert.ok(moved > keys.length * 0.4, `hash 2 -> 4 moves most keys with a new owner: ${moved}`);
      }
    }
  });

  it('shard state - a write at an old epoch, of a key the shard does not own, or of a moving key after the fence is refused; before it, moving keys go to the journal', () => {
    const from = initialMap('u', ring, 2);
    const to = reshardedMap('u', ring, from, 4);
    const mover = keys.find((k) => sharderOf(ring, from).shardOf(k) === 0 && sharderOf(ring, to).shardOf(k) !== 0) as string;
    const stayer = keys.find((k) => sharderOf(ring, from).shardOf(k) === 0 && sharderOf(ring, to).shardOf(k) === 0) as string;
    const other = keys.find((k) => sharderOf(ring, from).shardOf(k) === 1) as string;
    let s = initialReshardState(from);
    assert.deepEqual(new ShardOwnership(ownerOfFor(ring), 0, s).admitWrite(0, [mover, stayer]), { ok: true, journal: [] }, 'no reshard: no journal');
    assert.deepEqual(new ShardOwnership(ownerOfFor(ring), 0, s).admitWrite(0, [other]), { ok: false, code: 'WRONG_SHARD', keys: [other] });
    assert.deepEqual(new ShardOwnership(ownerOfFor(ring), 0, s).admitWrite(1, [stayer]), { ok: false, code: 'STALE_MAP', epoch: 0 }, 'an epoch ahead of the shard');
    s = step(s, { type: 'reshard-begin', from, next: to });
    assert.deepEqual(new ShardOwnership(ownerOfFor(ring), 0, s).admitWrite(0, [mover, stayer]), { ok: true, journal: [mover] });
    s = step(s, { type: 'reshard-fence', epoch: 1 });
    assert.equal(s.fencedAt, 10);
    assert.deepEqual(new ShardOwnership(ownerOfFor(ring), 0, s).admitWrite(0, [mover, stayer]), { ok: false, code: 'MOVING', keys: [mover] });
    assert.deepEqual(new ShardOwnership(ownerOfFor(ring), 0, s).admitWrite(0, [stayer]), { ok: true, journal: [] }, 'keys that stay are written through the fence');
    assert.ok(new ShardOwnership(ownerOfFor(ring), 0, s).visible(mover), 'before the switch the source still serves its moving keys');
    s = step(s, { type: 'reshard-switch', epoch: 1, need: {} });
    const own = new ShardOwnership(ownerOfFor(ring), 0, s);
    assert.deepEqual(own.admitWrite(0, [stayer]), { ok: false, code: 'STALE_MAP', epoch: 1 });
    assert.deepEqual(own.admitWrite(1, [stayer]), { ok: true, journal: [] });
    assert.equal(own.visible(mover), false, 'after it, what moved away is hidden');
    assert.deepEqual(own.admitRead(0), { ok: false, code: 'STALE_MAP', epoch: 1 });
  });

  it('shard state - a target switches only once its imports reach the fences; commands repeat harmlessly; a new shard serves nothing before its switch', () => {
    const from = initialMap('u', ring, 2);
    const to = reshardedMap('u', ring, from, 3);
    let t = newShardState(from, to);
    const own = () => new ShardOwnership(ownerOfFor(ring), 2, t);
    assert.equal(own().serving, null);
    assert.deepEqual(own().admitRead(0), { ok: false, code: 'STALE_MAP', epoch: 0 });
    const refused = applyReshard(t, { type: 'reshard-switch', epoch: 1, need: { 0: 40, 1: 12 } }, 5);
    assert.ok('unchanged' in refused && /imports behind the fences: shard 0 at 0 of 40, shard 1 at 0 of 12/.test(refused.unchanged));
    t = { ...t, cursors: { 0: 40, 1: 12 } };
    t = step(t, { type: 'reshard-switch', epoch: 1, need: { 0: 40, 1: 12 } }, { type: 'reshard-switch', epoch: 1, need: { 0: 40, 1: 12 } });
    assert.equal(own().serving, 1);
    assert.deepEqual(importApplies(own(), { type: 'import', source: 0, epoch: 1, upTo: 99, ops: [], requestIds: [] }), { ok: false, why: 'switched already' }, 'nothing is imported after the switch');
    t = step(t, { type: 'reshard-end', epoch: 1 }, { type: 'reshard-end', epoch: 1 }, { type: 'reshard-begin', from, next: to });
    assert.deepEqual(t, { active: to, next: null, fenced: false, fencedAt: null, switched: false, cursors: {}, copyLows: {} }, 'ended once; an old begin again changes nothing');
  });

  it('pull - pages of the points that move to the target, in key order, then the journal after the cursor, cut at entry boundaries', () => {
    const from = initialMap('u', ring, 1);
    const to = reshardedMap('u', ring, from, 2);
    const movers = keys.filter((k) => sharderOf(ring, to).shardOf(k) === 1).slice(0, 3).sort() as [string, string, string];
    const stayer = keys.find((k) => sharderOf(ring, to).shardOf(k) === 0) as string;
    const src = new ShardOwnership(ownerOfFor(ring), 0, step(initialReshardState(from), { type: 'reshard-begin', from, next: to }));
    const points = new Map([[movers[0], 'a'], [movers[1], 'b'], [stayer, 'c']]);
    const view = {
      appliedIndex: 20,
      points: (after: string | undefined) => [...points].filter(([k]) => after === undefined || k > after).sort(([a], [b]) => (a < b ? -1 : 1)),
      journalAfter: (after: number) => [
        { index: 15, ops: [{ key: movers[1], value: 'd' }], requestId: 'r1' },
        { index: 18, ops: [{ key: movers[2], value: null }, { key: movers[0], value: 'e' }], requestId: 'r2' },
      ].filter((e) => e.index > after),
      requestIds: () => [['r0', [movers[0], stayer]] as [string, string[]]],
    };
    const p1 = answerPull(src, view, { target: 1, epoch: 1, cursor: 0, maxOps: 1 });
    assert.deepEqual(p1, { type: 'import-page', source: 0, epoch: 1, index: 20, ops: [{ key: movers[0], value: 'a' }], requestIds: [{ id: 'r0', keys: [movers[0]] }], next: movers[0] });
    const p2 = answerPull(src, view, { target: 1, epoch: 1, cursor: 0, after: movers[0], maxOps: 1 });
    assert.deepEqual(p2.ops, [{ key: movers[1], value: 'b' }]);
    assert.deepEqual(p2.type === 'import-page' && p2.requestIds, [], 'the request ids come with the first page only');
    const p3 = answerPull(src, view, { target: 1, epoch: 1, cursor: 0, after: movers[1], maxOps: 1 });
    assert.deepEqual([p3.ops, p3.type === 'import-page' && p3.next], [[], null], 'the last page says so');
    assert.deepEqual(answerPull(src, view, { target: 1, epoch: 1, cursor: 12, maxOps: 1 }), { type: 'import', source: 0, epoch: 1, upTo: 17, ops: [{ key: movers[1], value: 'd' }], requestIds: [{ id: 'r1', keys: [movers[1]] }], fencedAt: null });
    assert.deepEqual(answerPull(src, view, { target: 1, epoch: 1, cursor: 17, maxOps: 10 }).ops, [{ key: movers[2], value: null }, { key: movers[0], value: 'e' }]);
    assert.throws(() => answerPull(src, view, { target: 1, epoch: 2, cursor: 0, maxOps: 10 }), /runs no reshard to epoch 2/);
  });

  it('import - an empty stretch of journal is imported only when far behind or to reach the source\'s fence (two shards importing from each other do not bump each other forever)', () => {
    const empty = (upTo: number, fencedAt: number | null = null) => ({ upTo, ops: [], requestIds: [], fencedAt });
    assert.equal(worthImporting(empty(10 + EMPTY_IMPORT_ENTRIES - 1), 10), false);
    assert.equal(worthImporting(empty(10 + EMPTY_IMPORT_ENTRIES), 10), true);
    assert.equal(worthImporting(empty(12, 11), 10), true, 'behind the fence');
    assert.equal(worthImporting(empty(12, 9), 10), false, 'past the fence');
    assert.equal(worthImporting({ upTo: 11, ops: [1], requestIds: [] }, 10), true, 'writes always');
  });

  it('import - pages while copying, the cursor at the lowest page, journal imports past it only, nothing after the switch', () => {
    const from = initialMap('u', ring, 1);
    const to = reshardedMap('u', ring, from, 2);
    let t = newShardState(from, to);
    const own = () => new ShardOwnership(ownerOfFor(ring), 1, t);
    const page = (index: number) => ({ type: 'import-page' as const, source: 0, epoch: 1, index, ops: [], requestIds: [] });
    assert.deepEqual(importApplies(own(), { type: 'import-copied', source: 0, epoch: 1 }), { ok: false, why: 'no page from shard 0 was applied' });
    for (const p of [page(30), page(25), page(40)]) t = afterImport(t, p);
    t = afterImport(t, { type: 'import-copied', source: 0, epoch: 1 });
    assert.equal(t.cursors[0], 25, 'the journal is replayed from before every page');
    assert.equal(importApplies(own(), page(50)).ok, false, 'a late page is refused once the copy is complete');
    assert.equal(importApplies(own(), { type: 'import', source: 0, epoch: 1, upTo: 25, ops: [], requestIds: [] }).ok, false);
    assert.equal(importApplies(own(), { type: 'import', source: 0, epoch: 1, upTo: 26, ops: [], requestIds: [] }).ok, true);
    assert.equal(importApplies(own(), { type: 'import', source: 0, epoch: 2, upTo: 26, ops: [], requestIds: [] }).ok, false);
  });
});

describe('points store values', () => {
  it('points store - a custom point keeps its shard key after its vector; a value without one reads as before', () => {
    const v = Float32Array.from([1, -2.5, 3]);
    const plain = encodePoint(v, { lang: 'en' });
    assert.deepEqual({ ...decodePoint(plain) }, { vector: v, metadata: { lang: 'en' } });
    assert.equal(shardKeyOf(plain), undefined);
    const keyed = encodePoint(v, { lang: 'en' }, 'tenant-é');
    assert.deepEqual({ ...decodePoint(keyed) }, { vector: v, metadata: { lang: 'en' }, shardKey: 'tenant-é' });
    assert.equal(shardKeyOf(keyed), 'tenant-é');
    assert.deepEqual({ ...decodePoint(encodePoint(v, undefined, 'k')) }, { vector: v, shardKey: 'k' });
    assert.deepEqual({ ...decodePoint(keyed, false, false) }, { shardKey: 'tenant-é' });
  });
});
