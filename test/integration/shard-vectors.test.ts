/**
 * `withVector` on a shard returns the vectors exactly as they were upserted, consistent with the
 * state its search scored (issue 21: the index keeps no copy of its own; a cosine graph holds
 * unit vectors, so a cosine shard reads the vectors from LMDB between two applies).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Metric } from '../../src/index/mod.js';
import type { LogEntry } from '../../src/shard/mod.js';
import { testNode, type TestNode } from '../helpers/shard.js';
import { randomVector, rng } from '../helpers/shard-workload.js';

const DIM = 16;
const N = 300;
const nodes: TestNode[] = [];
after(async () => {
  for (const n of nodes) await n.close();
});

function node(metric: Metric): TestNode {
  const n = testNode({ dim: DIM, metric, checkpointEvery: 1000 });
  nodes.push(n);
  return n;
}

/** `N` points p0..p(N-1), all new vectors drawn from `rand`. */
function upsertAll(index: number, rand: () => number): { entry: LogEntry; vectors: Map<string, number[]> } {
  const vectors = new Map<string, number[]>();
  const points = Array.from({ length: N }, (_, i) => {
    const vector = randomVector(rand, DIM);
    vectors.set(`p${i}`, vector);
    return { id: `p${i}`, vector };
  });
  return { entry: { index, command: { type: 'upsert', points, at: 1_700_000_000_000 + index } }, vectors };
}

const f32 = (v: ArrayLike<number>): number[] => Array.from(v, (x) => Math.fround(x));

function cosineDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] as number) * (b[i] as number);
    na += (a[i] as number) ** 2;
    nb += (b[i] as number) ** 2;
  }
  return 1 - dot / Math.sqrt(na * nb);
}

describe('shard vectors', () => {
  for (const metric of ['cosine', 'l2', 'ip'] as const) {
    it(`shard vectors - ${metric}: withVector returns each hit's vector as upserted, under every plan`, async () => {
      const n = node(metric);
      const sm = await n.open(`vectors-${metric}`, { exactBudget: 0, filteredGraphCost: 0 });
      const rand = rng(3);
      const { entry, vectors } = upsertAll(1, rand);
      await sm.apply([entry]);
      for (let i = 0; i < 20; i++) {
        const hits = await sm.search({ vector: randomVector(rand, DIM), k: 10, withVector: true });
        assert.equal(hits.length, 10);
        for (const h of hits) assert.deepEqual(Array.from(h.vector ?? []), f32(vectors.get(h.id) ?? []), `${metric}: ${h.id}`);
      }
      const exact = await n.open(`vectors-${metric}-exact`, { exactBudget: 1 << 30 });
      await exact.apply([entry]);
      const hits = await exact.search({ vector: randomVector(rand, DIM), k: 10, withVector: true });
      for (const h of hits) assert.deepEqual(Array.from(h.vector ?? []), f32(vectors.get(h.id) ?? []), `${metric} exact: ${h.id}`);
      await sm.close();
      await exact.close();
    });
  }

  it('shard vectors - cosine: a withVector search racing upserts of its hits returns the vectors it scored', async () => {
    const n = node('cosine');
    const sm = await n.open('race');
    const rand = rng(11);
    const states: Map<string, number[]>[] = [];
    const first = upsertAll(1, rand);
    await sm.apply([first.entry]);
    states.push(first.vectors);
    let checked = 0;
    for (let round = 2; round <= 40; round++) {
      const next = upsertAll(round, rand);
      const q = randomVector(rand, DIM);
      // both orders: the apply made first (its LMDB commit then runs while the search is out), and the search first
      const hits =
        round % 2 === 0
          ? (await Promise.all([sm.search({ vector: q, k: 10, withVector: true }), sm.apply([next.entry])]))[0]
          : (await Promise.all([sm.apply([next.entry]), sm.search({ vector: q, k: 10, withVector: true })]))[1];
      states.push(next.vectors);
      for (const h of hits) {
        const v = Array.from(h.vector ?? []);
        // the vector returned is one the point had, and the one the hit's distance was scored on
        assert.ok(states.some((s) => JSON.stringify(f32(s.get(h.id) ?? [])) === JSON.stringify(v)), `round ${round}: ${h.id}'s vector is one it had`);
        assert.ok(Math.abs(cosineDistance(q, v) - h.distance) < 1e-4, `round ${round}: ${h.id} was scored at ${h.distance}, its vector returned is at ${cosineDistance(q, v)}`);
        checked++;
      }
    }
    assert.equal(checked, 39 * 10);
    await sm.close();
  });
});
