/**
 * A reshard as moves of reason `reshard` (PROTOCOL.md, Operations): the moves rebalance.status
 * shows, their phases, describe's progress, the bytes the coordinator learns from the statuses,
 * the copy-rate split and the importer's pacing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ShardingConfig } from '../../src/api/types.js';
import { CopyRates } from '../../src/actors/coordinator/copy-rates.js';
import type { ReshardShardStatus } from '../../src/actors/coordinator/reshard-driver.js';
import { copyingPairs, movePhaseOf, pairTotals, reshardMoves, reshardMovesInFlight, reshardProgress } from '../../src/actors/coordinator/reshard-moves.js';
import { pairShares, ReshardProgress } from '../../src/actors/coordinator/reshard-progress.js';
import { ImportPacer, opsBytes, pageBytes, PULL_BYTES } from '../../src/actors/replica/importer.js';
import type { CollectionRecord, MoveRecord, ReshardRecord } from '../../src/cluster/metadata.js';
import { initialMap, movePairs, reshardedMap } from '../../src/cluster/shard-map.js';
import { initialReshardState } from '../../src/shard/reshard-state.js';

const hash: ShardingConfig = { strategy: 'hash' };
const ring: ShardingConfig = { strategy: 'consistent-hash', vnodes: 64 };

function reshard(sharding: ShardingConfig, from: number, to: number, phase: ReshardRecord['phase'] = 'copy'): ReshardRecord {
  const m0 = initialMap('u1', sharding, from);
  const m1 = reshardedMap('u1', sharding, m0, to, sharding.strategy === 'range' ? ['m'] : undefined);
  return { collection: 'docs', uid: 'u1', sharding, from: m0, to: m1, phase, epoch: 3, startedAt: '2026-12-01T21:40:00.000Z', fences: {} };
}

function record(rs: ReshardRecord | null, shards = 4): CollectionRecord {
  const r: CollectionRecord = {
    name: 'docs',
    uid: 'u1',
    dim: 4,
    metric: 'l2',
    shards: rs?.from.shards ?? shards,
    replicas: 3,
    sharding: rs?.sharding ?? hash,
    hnsw: { m: 16, efConstruction: 100, ef: 50 },
    createdAt: '2026-12-01T21:00:00.000Z',
    placement: Array.from({ length: shards }, (_, s) => ({ shard: s, replicas: [`n${s + 1}`, 'n9'] })),
    resharding: rs,
  };
  return r;
}

/** Statuses of every group of both maps: the target's importers' tallies, the sources' counts and leaders. */
function statuses(rs: ReshardRecord, o: { counts?: Record<number, number>; cursors?: Record<number, Record<number, number>>; imported?: Record<number, { run: string; bySource: Record<number, { bytes: number; points: number }> }> }): Map<string, ReshardShardStatus> {
  const out = new Map<string, ReshardShardStatus>();
  const groups = [...new Set([...rs.from.groups, ...rs.to.groups])];
  for (const g of groups) {
    const shard = Math.max(rs.from.groups.indexOf(g), rs.to.groups.indexOf(g));
    const state = { ...initialReshardState(rs.from), next: rs.to, cursors: o.cursors?.[shard] ?? {} };
    const imp = o.imported?.[shard];
    out.set(g, { state, appliedIndex: 100, node: `leader${shard}`, count: o.counts?.[shard], imported: imp ? { epoch: rs.to.epoch, ...imp } : undefined });
  }
  return out;
}

describe('reshard moves', () => {
  it('reshard moves - phases map to the move phases: fence and switch are switch, a pair done copying is in catch-up', () => {
    assert.equal(movePhaseOf('prepare', false), 'prepare');
    assert.equal(movePhaseOf('copy', false), 'copy');
    assert.equal(movePhaseOf('copy', true), 'catch-up');
    assert.equal(movePhaseOf('catch-up', true), 'catch-up');
    assert.equal(movePhaseOf('fence', true), 'switch');
    assert.equal(movePhaseOf('switch', true), 'switch');
    assert.equal(movePhaseOf('cleanup', true), 'cleanup');
    assert.equal(movePhaseOf('done', true), null);
  });

  it('reshard moves - one move of reason reshard per pair that moves keys, target shard, placement nodes until leaders are known', () => {
    const rs = reshard(ring, 2, 4, 'prepare');
    const moves = reshardMoves(record(rs));
    assert.deepEqual(
      moves.map((m) => [m.id, m.shard, m.from, m.to, m.reason, m.phase]),
      movePairs(ring, rs.from, rs.to).map((p) => [`r-docs-${p.source}-${p.target}`, p.target, `n${p.source + 1}`, `n${p.target + 1}`, 'reshard', 'prepare']),
    );
    assert.equal(moves.length, 4, 'a ring 2 -> 4 moves keys from each old shard to each new one');
    for (const m of moves) {
      assert.equal(m.collection, 'docs');
      assert.equal(m.bytesCopied, 0);
      assert.equal(m.bytesTotal, null);
      assert.equal(m.startedAt, rs.startedAt);
    }
    assert.deepEqual(reshardMoves(record(null)), []);
    assert.deepEqual(reshardMoves(record({ ...rs, phase: 'done' })), []);
  });

  it('reshard moves - the pairs the coordinator wrote give leaders, bytes and per-pair phases; they count against maxConcurrentMoves', () => {
    const rs = reshard(hash, 1, 2);
    rs.pairs = [{ source: 0, target: 1, from: 'n3', to: 'n2', bytesCopied: 1_000, bytesTotal: 4_000, copied: false }];
    const [m] = reshardMoves(record(rs, 2));
    assert.deepEqual({ from: m?.from, to: m?.to, phase: m?.phase, bytesCopied: m?.bytesCopied, bytesTotal: m?.bytesTotal }, { from: 'n3', to: 'n2', phase: 'copy', bytesCopied: 1_000, bytesTotal: 4_000 });
    assert.equal(reshardMovesInFlight([record(rs, 2), record(reshard(ring, 2, 4)), record(null)]), 1 + 4);
    assert.deepEqual(copyingPairs(rs), [{ source: 0, target: 1 }]);
    rs.pairs[0]!.copied = true;
    assert.equal(reshardMoves(record(rs, 2))[0]?.phase, 'catch-up');
    assert.deepEqual(copyingPairs(rs), [], 'a pair done copying no longer shares the rate');
    assert.deepEqual(copyingPairs({ ...reshard(hash, 1, 2), phase: 'catch-up' }), []);
  });

  it('reshard moves - describe progress is by bytes during the copy, by phase otherwise', () => {
    const rs = reshard(hash, 1, 2);
    assert.equal(reshardProgress(rs), 0.05, 'nothing known yet');
    assert.equal(reshardProgress({ ...rs, bytesCopied: 500, bytesTotal: 1_000 }), 0.375);
    assert.equal(reshardProgress({ ...rs, bytesCopied: 2_000, bytesTotal: 1_000 }), 0.7, 'never past the copy');
    assert.equal(reshardProgress({ ...rs, phase: 'catch-up', bytesCopied: 500, bytesTotal: 1_000 }), 0.7);
    assert.equal(reshardProgress({ ...rs, phase: 'switch' }), 0.9);
    assert.deepEqual(pairTotals([{ source: 0, target: 1, from: null, to: null, bytesCopied: 5, bytesTotal: 10, copied: false }, { source: 0, target: 2, from: null, to: null, bytesCopied: 1, bytesTotal: null, copied: false }]), { bytesCopied: 6 });
  });

  it('reshard progress - the share of a source going to each target: sampled for hash strategies, even for range', () => {
    const h = reshard(hash, 1, 2);
    const s = pairShares(hash, h.from, h.to, movePairs(hash, h.from, h.to));
    assert.ok(Math.abs((s.get('0:1') ?? 0) - 0.5) < 0.03, `hash 1 -> 2 moves about half: ${s.get('0:1')}`);
    const r = reshard(ring, 2, 4);
    const rsh = pairShares(ring, r.from, r.to, movePairs(ring, r.from, r.to));
    const fromZero = (rsh.get('0:2') ?? 0) + (rsh.get('0:3') ?? 0);
    assert.ok(fromZero > 0.3 && fromZero < 0.7, `a ring 2 -> 4 moves about half of each shard: ${fromZero}`);
    const range: ShardingConfig = { strategy: 'range', boundaries: [] };
    const rr = reshard(range, 1, 2);
    assert.deepEqual([...pairShares(range, rr.from, rr.to, movePairs(range, rr.from, rr.to))], [['0:1', 1]]);
  });

  it('reshard progress - bytes add up over importer runs (a new leader starts at 0), a takeover keeps what the record had, the estimate comes from count, share and point size', () => {
    const rs = reshard(hash, 1, 2);
    const p = new ReshardProgress();
    let pairs = p.observe(rs, statuses(rs, { counts: { 0: 10_000 } }));
    assert.deepEqual(pairs, [{ source: 0, target: 1, from: 'leader0', to: 'leader1', bytesCopied: 0, bytesTotal: null, copied: false }], 'no point size known yet');
    pairs = p.observe({ ...rs, pairs }, statuses(rs, { counts: { 0: 10_000 }, imported: { 1: { run: 'a', bySource: { 0: { bytes: 60_000, points: 100 } } } } }));
    assert.equal(pairs[0]?.bytesCopied, 60_000);
    const share = pairShares(hash, rs.from, rs.to, [{ source: 0, target: 1 }]).get('0:1') ?? 0;
    assert.equal(pairs[0]?.bytesTotal, Math.round(10_000 * share * 600));
    // the target's leader changes: the new one counts from 0 in a run of its own
    pairs = p.observe({ ...rs, pairs }, statuses(rs, { counts: { 0: 10_000 }, imported: { 1: { run: 'b', bySource: { 0: { bytes: 6_000, points: 10 } } } } }));
    assert.equal(pairs[0]?.bytesCopied, 66_000);
    // the copy is done: the total is what was copied
    pairs = p.observe({ ...rs, pairs }, statuses(rs, { counts: { 0: 10_000 }, cursors: { 1: { 0: 57 } }, imported: { 1: { run: 'b', bySource: { 0: { bytes: 9_000, points: 15 } } } } }));
    assert.deepEqual(pairs[0], { source: 0, target: 1, from: 'leader0', to: 'leader1', bytesCopied: 69_000, bytesTotal: 69_000, copied: true });
    // a coordinator that takes over: the record's figure, the run it sees counted once
    const next = new ReshardProgress();
    const again = next.observe({ ...rs, pairs }, statuses(rs, { imported: { 1: { run: 'b', bySource: { 0: { bytes: 9_000, points: 15 } } } } }));
    assert.equal(again[0]?.bytesCopied, 69_000);
    const more = next.observe({ ...rs, pairs: again }, statuses(rs, { imported: { 1: { run: 'b', bySource: { 0: { bytes: 10_000, points: 16 } } } } }));
    assert.equal(more[0]?.bytesCopied, 70_000);
    // a tally of another reshard (an older epoch) is not this one's
    const other = new ReshardProgress().observe(rs, new Map([...statuses(rs, {})].map(([g, s]) => [g, { ...s, imported: { epoch: 99, run: 'z', bySource: { 0: { bytes: 5, points: 1 } } } }])));
    assert.equal(other[0]?.bytesCopied, 0);
  });

  it('importer pacing - pages paced by a token bucket hold the rate; 0 is unlimited; the page size follows the rate', () => {
    const rate = 400_000;
    const page = pageBytes(rate);
    assert.equal(page, 100_000, 'a quarter second of bytes');
    assert.equal(pageBytes(0), PULL_BYTES);
    assert.equal(pageBytes(10_000), 16 * 1024, 'not below the minimum');
    // the pull and the proposal take time too, up to most of a page's share of a second
    for (const busyMs of [5, 150, 240]) {
      const pacer = new ImportPacer();
      let t = 0;
      let bytes = 0;
      let start = 0;
      for (let i = 0; i < 40; i++) {
        t += busyMs;
        if (i > 0) bytes += page; // from the end of the first page's wait
        t += pacer.take(page, t, rate);
        if (i === 0) start = t;
      }
      const measured = (bytes / (t - start)) * 1000;
      assert.ok(Math.abs(measured - rate) / rate < 0.02, `paced at ${Math.round(measured)} B/s for ${rate} with ${busyMs} ms per page`);
    }
    assert.equal(new ImportPacer().take(10_000_000, 0, 0), 0);
    // after a long pause, no more than a page goes through at once
    const p2 = new ImportPacer();
    p2.take(0, 0, rate);
    assert.equal(p2.take(page, 60_000, rate), 0);
    assert.equal(p2.take(page, 60_000, rate), 250, 'a pause does not bank a minute of bytes');
    assert.equal(opsBytes([{ key: 'ab', value: new Uint8Array(10) }, { key: 'é', value: null }]), 2 + 10 + 2);
  });

  it('copy rates - a reshard pair takes one share like a move; a target shard imports at the shares of its pairs', () => {
    const applied: number[] = [];
    const rates = new CopyRates('n1', (r) => applied.push(r));
    rates.configure(1_200_000);
    const rs = reshard(ring, 2, 4);
    rates.collection('docs', record(rs));
    // four pairs: 0->2, 0->3, 1->2, 1->3
    assert.equal(rates.importRate('u1', 2), 600_000);
    assert.equal(rates.importRate('u1', 3), 600_000);
    const move = { id: 'm-1', to: 'n1', phase: 'copy' } as MoveRecord;
    rates.move('m-1', move);
    assert.equal(rates.importRate('u1', 2), 480_000, 'five shares now');
    assert.equal(rates.rate(), 240_000, 'the move targeting n1 has one share of its snapshots');
    rs.pairs = movePairs(ring, rs.from, rs.to).map(({ source, target }) => ({ source, target, from: null, to: null, bytesCopied: 0, bytesTotal: null, copied: target === 3 }));
    rates.collection('docs', record(rs));
    assert.equal(rates.importRate('u1', 2), 800_000, 'the pairs done copying left the split');
    rates.collection('docs', record({ ...rs, phase: 'catch-up' }));
    assert.equal(rates.rate(), 1_200_000);
    assert.equal(rates.importRate('u1', 2), 600_000, 'a target the records do not show copying gets one share');
    rates.configure(0);
    assert.equal(rates.importRate('u1', 2), 0);
    assert.equal(applied[applied.length - 1], 0);
  });
});
