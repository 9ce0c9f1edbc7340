import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { distance, FlatIndex, HnswIndex, type Metric } from '../../src/index/mod.js';

const a = Float32Array.from([1, 2, 3]);
const b = Float32Array.from([4, -5, 6]);
// By hand: a·b = 4 - 10 + 18 = 12; |a|² = 14; |b|² = 77; Σ(a−b)² = 9 + 49 + 9 = 67.
const HAND: Record<Metric, number> = { l2: 67, ip: 1 - 12, cosine: 1 - 12 / Math.sqrt(14 * 77) };

describe('index distances', () => {
  for (const metric of ['l2', 'ip', 'cosine'] as const) {
    it(`index distances - ${metric} matches the hand computation in distance(), FlatIndex and HnswIndex`, () => {
      const want = HAND[metric];
      assert.ok(Math.abs(distance(metric, a, b) - want) < 1e-6, `distance(): ${distance(metric, a, b)} vs ${want}`);
      const flat = new FlatIndex({ dim: 3, metric });
      const hnsw = HnswIndex.create({ dim: 3, metric, hnsw: { m: 8, efConstruction: 16, ef: 16 }, exactBudget: 0 });
      for (const index of [flat, hnsw]) {
        index.upsert([{ id: 'b', vector: b }]);
        const [hit] = index.search({ vector: a, k: 1 });
        assert.equal(hit?.id, 'b');
        assert.ok(Math.abs((hit?.distance ?? NaN) - want) < 1e-5, `${index.constructor.name} ${metric}: ${hit?.distance} vs ${want}`);
      }
    });
  }

  it('index distances - the exact path and the graph agree on the same point', () => {
    for (const metric of ['l2', 'ip', 'cosine'] as const) {
      const graph = HnswIndex.create({ dim: 3, metric, hnsw: { m: 8, efConstruction: 16, ef: 16 }, exactBudget: 0 });
      const exact = HnswIndex.create({ dim: 3, metric, hnsw: { m: 8, efConstruction: 16, ef: 16 } });
      for (const i of [graph, exact]) i.upsert([{ id: 'b', vector: b }, { id: 'c', vector: Float32Array.from([0.5, 0.25, -1]) }]);
      assert.equal(graph.plan({ vector: a, k: 2 }), 'hnsw');
      assert.equal(exact.plan({ vector: a, k: 2 }), 'exact');
      const g = graph.search({ vector: a, k: 2 });
      const e = exact.search({ vector: a, k: 2 });
      assert.deepEqual(g.map((h) => h.id), e.map((h) => h.id));
      g.forEach((h, i) => assert.ok(Math.abs(h.distance - (e[i]?.distance ?? NaN)) < 1e-5, `${metric}: ${h.distance} vs ${e[i]?.distance}`));
    }
  });
});
