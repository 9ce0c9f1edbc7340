import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/runtime/errors.js';
import { FlatIndex, HnswIndex, parseFilter, type Hit, type IndexPoint, type Metric, type VectorIndex } from '../../src/index/mod.js';
import { assertSameHits } from '../helpers/same-hits.js';
import { randomVector, rng } from '../helpers/shard-workload.js';

const PARAMS = { m: 12, efConstruction: 64, ef: 32 };
const tmp = mkdtempSync(join(tmpdir(), 'shoal-index-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function seededPoints(seed: number, n: number, dim: number, prefix = 'p'): IndexPoint[] {
  const rand = rng(seed);
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, vector: Float32Array.from(randomVector(rand, dim)), metadata: { c: i % 10, b: i % 7 } }));
}

function both(metric: Metric, dim: number): [FlatIndex, HnswIndex] {
  return [new FlatIndex({ dim, metric }), HnswIndex.create({ dim, metric, hnsw: PARAMS, exactBudget: 0, filteredGraphCost: 0, initialCapacity: 8 })];
}

const ids = (hits: Hit[]): string[] => hits.map((h) => h.id);

describe('vector index', () => {
  it('vector index - upsert replaces and delete removes, in search and in count', () => {
    for (const index of both('l2', 2) as VectorIndex[]) {
      index.upsert([{ id: 'a', vector: Float32Array.from([0, 0]) }, { id: 'b', vector: Float32Array.from([5, 5]) }, { id: 'c', vector: Float32Array.from([9, 9]) }]);
      assert.equal(index.count(), 3);
      assert.deepEqual(ids(index.search({ vector: [5, 5], k: 1 })), ['b']);
      index.upsert([{ id: 'b', vector: Float32Array.from([100, 100]), metadata: { v: 2 } }]);
      assert.equal(index.count(), 3, 'a replace does not add a point');
      assert.deepEqual(ids(index.search({ vector: [5, 5], k: 3 })), ['c', 'a', 'b']);
      assert.deepEqual(index.get('b')?.metadata, { v: 2 });
      assert.equal(index.delete(['a', 'nope', 'a']), 1, 'counts the ids that existed');
      assert.equal(index.count(), 2);
      assert.deepEqual(ids(index.search({ vector: [0, 0], k: 10 })), ['c', 'b'], 'k above the count returns what exists');
      index.upsert([{ id: 'a', vector: Float32Array.from([1, 1]) }, { id: 'd', vector: Float32Array.from([2, 2]) }]);
      assert.deepEqual(ids(index.search({ vector: [0, 0], k: 2 })), ['a', 'd'], 'a deleted id can come back; its label is reused');
      assert.equal(index.get('zzz'), undefined);
    }
  });

  it('vector index - within one upsert a repeated id: the last one wins', () => {
    for (const index of both('l2', 1) as VectorIndex[]) {
      index.upsert([{ id: 'x', vector: Float32Array.from([1]) }, { id: 'x', vector: Float32Array.from([7]) }]);
      assert.equal(index.count(), 1);
      assert.deepEqual(Array.from(index.get('x')?.vector ?? []), [7]);
    }
  });

  it('vector index - HnswIndex recall@10 against the FlatIndex oracle on seeded data, capacity growing by itself', () => {
    for (const metric of ['l2', 'cosine', 'ip'] as const) {
      const [flat, hnsw] = both(metric, 24);
      const points = seededPoints(42, 3000, 24);
      flat.upsert(points);
      hnsw.upsert(points); // initial capacity 8: grows as it goes
      hnsw.delete(points.slice(0, 300).map((p) => p.id));
      flat.delete(points.slice(0, 300).map((p) => p.id));
      const rand = rng(7);
      let found = 0;
      let foundHighEf = 0;
      for (let q = 0; q < 100; q++) {
        const vector = randomVector(rand, 24);
        const truth = new Set(ids(flat.search({ vector, k: 10 })));
        found += ids(hnsw.search({ vector, k: 10 })).filter((id) => truth.has(id)).length;
        foundHighEf += ids(hnsw.search({ vector, k: 10, ef: 400 })).filter((id) => truth.has(id)).length;
      }
      assert.ok(found / 1000 >= 0.9, `${metric} recall@10 at ef 32 is ${found / 1000}`);
      assert.ok(foundHighEf / 1000 >= 0.99, `${metric} recall@10 at ef 400 is ${foundHighEf / 1000}`);
      assert.ok(foundHighEf >= found, 'a larger per-query ef does not lose recall');
    }
  });

  for (const [broadPlan, postfilterMaxCandidates] of [['hnsw-postfilter', undefined], ['hnsw-filtered', 0]] as const) {
    it(`vector index - a selective filter takes the exact path and returns the k nearest matches; a broad one takes ${broadPlan}`, () => {
      const points = seededPoints(3, 5000, 16);
      const flat = new FlatIndex({ dim: 16, metric: 'l2' });
      const hnsw = HnswIndex.create({ dim: 16, metric: 'l2', hnsw: PARAMS, exactBudget: 16 * 600, filteredGraphCost: 0, postfilterMaxCandidates });
      flat.upsert(points);
      hnsw.upsert(points);
      const selective = parseFilter({ c: 3, b: 2 }); // ~1.4%: ~71 points
      const broad = parseFilter({ c: { $in: [1, 2, 3, 4] } }); // 40%
      const rand = rng(11);
      let broadFound = 0;
      for (let q = 0; q < 50; q++) {
        const vector = randomVector(rand, 16);
        assert.equal(hnsw.plan({ vector, k: 10, filter: selective }), 'exact');
        assertSameHits(hnsw.search({ vector, k: 10, filter: selective }), flat.search({ vector, k: 10, filter: selective }), 'the exact plan');
        assert.equal(hnsw.plan({ vector, k: 10, filter: broad }), broadPlan);
        const { hits, explain } = hnsw.searchExplained({ vector, k: 10, filter: broad });
        assert.equal(explain.plan, broadPlan, 'the search took the plan it planned');
        assert.equal(hits.length, 10);
        assert.ok(hits.every((h) => [1, 2, 3, 4].includes(h.metadata?.c as number)), 'only matching points come back');
        const truth = new Set(ids(flat.search({ vector, k: 10, filter: broad })));
        broadFound += ids(hits).filter((id) => truth.has(id)).length;
      }
      assert.ok(broadFound / 500 >= 0.9, `${broadPlan} recall ${broadFound / 500}`);
      assert.deepEqual(hnsw.search({ vector: points[0]?.vector ?? [], k: 5, filter: parseFilter({ c: 99 }) }), [], 'no match, no hits');
    });
  }

  it('vector index - an $and guessed broad but matching few points falls back to the exact plan, and explain reports the true count', () => {
    // a and b each hold for ~40% of the points, together for 12: as independent parts they would be 16%
    const rand = rng(9);
    const points = Array.from({ length: 30_000 }, (_, i) => ({
      id: `p${i}`,
      vector: Float32Array.from(randomVector(rand, 4)),
      metadata: { a: i % 5 < 2 ? 'x' : 'z', b: (i % 5 >= 2 && i % 5 < 4) || i % 2500 === 0 ? 'y' : 'w' },
    }));
    const flat = new FlatIndex({ dim: 4, metric: 'l2' });
    const hnsw = HnswIndex.create({ dim: 4, metric: 'l2', hnsw: PARAMS, indexes: { a: 'keyword', b: 'keyword' }, initialCapacity: 30_000, exactBudget: 0 });
    flat.upsert(points);
    hnsw.upsert(points);
    const q = { vector: [0.1, 0.2, 0.3, 0.4], k: 10, filter: parseFilter({ a: 'x', b: 'y' }) };
    assert.equal(hnsw.plan(q), 'hnsw-postfilter', 'planned from the guess');
    const { hits, explain } = hnsw.searchExplained(q);
    assert.deepEqual([explain.plan, explain.matches, explain.fellBack], ['exact', 12, true]);
    assertSameHits(hits, flat.search(q), 'the fallback answers exactly');
  });

  it('vector index - a post-filtered search whose candidates hold fewer than k matches walks the graph with the matches as a bitset', () => {
    // half of the points match (x > 0), but a query far on the other side sees none among its nearest
    const rand = rng(5);
    const points = Array.from({ length: 4000 }, (_, i) => {
      const vector = Float32Array.from(randomVector(rand, 4));
      return { id: `p${i}`, vector, metadata: { pos: (vector[0] as number) > 0 } };
    });
    const flat = new FlatIndex({ dim: 4, metric: 'l2' });
    const hnsw = HnswIndex.create({ dim: 4, metric: 'l2', hnsw: PARAMS, exactBudget: 0, filteredGraphCost: 0 });
    flat.upsert(points);
    hnsw.upsert(points);
    const filter = parseFilter({ pos: true });
    const far = { vector: [-30, 0, 0, 0], k: 10, filter };
    assert.equal(hnsw.plan(far), 'hnsw-postfilter');
    const { hits, explain } = hnsw.searchExplained(far);
    assert.equal(explain.plan, 'hnsw-filtered', 'it fell back');
    assert.equal(explain.fellBack, true, 'and explain says so');
    assert.equal(hits.length, 10);
    const truth = new Set(ids(flat.search(far)));
    assert.ok(ids(hits).filter((id) => truth.has(id)).length >= 9, 'the fallback finds the nearest matches');
    // a query on the matching side keeps the post-filter plan
    const near = hnsw.searchExplained({ ...far, vector: [30, 0, 0, 0] }).explain;
    assert.deepEqual([near.plan, near.fellBack], ['hnsw-postfilter', undefined]);
  });

  it('vector index - ties are broken by id in UTF-8 byte order', () => {
    // U+FF5E sorts before U+1F600 in UTF-8 (code point) order but after it in UTF-16 order.
    const tied = ['b', 'a', '\u{1F600}', '\uFF5E', 'a\u0000'].map((id) => ({ id, vector: Float32Array.from([1, 0]) }));
    for (const index of both('l2', 2) as VectorIndex[]) {
      index.upsert(tied);
      assert.deepEqual(ids(index.search({ vector: [0, 0], k: 5 })), ['a', 'a\u0000', 'b', '\uFF5E', '\u{1F600}']);
    }
  });

  it('vector index - bad input is refused with the field and the limit, and changes nothing', () => {
    const [flat, hnsw] = both('cosine', 3);
    for (const index of [flat, hnsw] as VectorIndex[]) {
      index.upsert([{ id: 'ok', vector: Float32Array.from([1, 0, 0]) }]);
      const bad: [IndexPoint[], RegExp][] = [
        [[{ id: 'z', vector: Float32Array.from([0, 0, 0]) }], /points\[0\]\.vector is all zeros/],
        [[{ id: 'ok2', vector: Float32Array.from([1, 1, 1]) }, { id: 'w', vector: Float32Array.from([1, 2]) }], /points\[1\]\.vector has 2 dimensions; the index has 3/],
        [[{ id: 'n', vector: Float32Array.from([1, NaN, 0]) }], /points\[0\]\.vector\[1\] must be a finite number/],
        [[{ id: '', vector: Float32Array.from([1, 0, 0]) }], /points\[0\]\.id must be a non-empty string/],
      ];
      for (const [points, msg] of bad) assert.throws(() => index.upsert(points), (e: unknown) => e instanceof InvalidArgumentError && msg.test(e.message));
      assert.equal(index.count(), 1, 'a refused batch applies nothing');
      assert.throws(() => index.search({ vector: [1, 0, 0], k: 0 }), /k must be an integer from 1 to 10000, got 0/);
      assert.throws(() => index.search({ vector: [1, 0], k: 1 }), /vector has 2 dimensions; the index has 3/);
    }
    assert.throws(() => HnswIndex.create({ dim: 0, metric: 'l2', hnsw: PARAMS }), /dim must be an integer from 1 to 4096, got 0/);
    assert.throws(() => HnswIndex.create({ dim: 4, metric: 'l2', hnsw: { ...PARAMS, m: 1 } }), /hnsw\.m must be an integer from 2 to 128, got 1/);
  });

  it('vector index - two indexes fed the same changes, one checkpointed and reloaded, answer identically', () => {
    const make = (): HnswIndex => HnswIndex.create({ dim: 8, metric: 'l2', hnsw: PARAMS, exactBudget: 0, seed: 5 });
    const live = make();
    const other = make();
    const points = seededPoints(9, 1200, 8);
    const rand = rng(13);
    const queries = Array.from({ length: 60 }, () => randomVector(rand, 8));
    live.upsert(points.slice(0, 600));
    other.upsert(points.slice(0, 600));
    live.checkpoint(join(tmp, 'live-600'));
    other.checkpoint(join(tmp, 'other-600'));
    assert.ok(readFileSync(join(tmp, 'live-600', 'graph.hnsw')).equals(readFileSync(join(tmp, 'other-600', 'graph.hnsw'))), 'checkpoints are byte-identical');
    const restarted = HnswIndex.load(join(tmp, 'live-600'), { dim: 8, metric: 'l2', hnsw: PARAMS, exactBudget: 0 });
    for (const index of [live, other, restarted]) {
      index.upsert(points.slice(600));
      index.delete(points.slice(0, 100).map((p) => p.id));
      index.upsert(points.slice(0, 50).map((p) => ({ ...p, id: `again-${p.id}` })));
    }
    const answers = (i: HnswIndex): string => JSON.stringify(queries.map((vector) => i.search({ vector, k: 10 })));
    assert.equal(answers(other), answers(live));
    assert.equal(answers(restarted), answers(live), 'a restarted index answers like one that never restarted');
    assert.equal(restarted.count(), live.count());
    // Answers on easy data can agree while graphs differ; the files say whether the graphs are the same.
    live.checkpoint(join(tmp, 'live-end'));
    restarted.checkpoint(join(tmp, 'restarted-end'));
    for (const f of ['graph.hnsw', 'table.v8']) {
      assert.ok(readFileSync(join(tmp, 'live-end', f)).equals(readFileSync(join(tmp, 'restarted-end', f))), `${f} of the restarted index is byte-identical`);
    }
  });
});
