/**
 * Shoal's HNSW addon against hnswlib-node, the package whose hnswlib headers and compiler flags it
 * uses: graph files are interchangeable, the same inserts with the same seed give the same graph,
 * the bitset filter is hnswlib-node's callback filter without the callback, and the exact scan is
 * a brute force over the chosen labels.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import hnswlib from 'hnswlib-node';
import { bitsetOf, newHnswGraph, type GraphHits, type HnswGraph } from '../../src/index/native-graph.js';
import { FlatIndex, type Metric } from '../../src/index/mod.js';
import { closeDistance } from '../helpers/same-hits.js';
import { randomVector, rng } from '../helpers/shard-workload.js';

const DIM = 20;
const N = 1500;
const M = 12;
const EF_CONSTRUCTION = 60;
const SEED = 7;
const METRICS: Metric[] = ['l2', 'ip', 'cosine'];
const tmp = mkdtempSync(join(tmpdir(), 'shoal-native-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function vectors(seed: number, n: number): Float32Array[] {
  const rand = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from(randomVector(rand, DIM)));
}

const POINTS = vectors(1, N);
const QUERIES = vectors(2, 60);

function buildTheirs(metric: Metric): hnswlib.HierarchicalNSW {
  const g = new hnswlib.HierarchicalNSW(metric, DIM);
  g.initIndex({ maxElements: N, m: M, efConstruction: EF_CONSTRUCTION, randomSeed: SEED });
  POINTS.forEach((v, label) => g.addPoint(Array.from(v), label));
  return g;
}

function buildOurs(metric: Metric): HnswGraph {
  const g = newHnswGraph(metric, DIM);
  g.initIndex(N, M, EF_CONSTRUCTION, SEED);
  POINTS.forEach((v, label) => g.addPoint(v, label));
  return g;
}

type Answer = { labels: number[]; distances: number[] };
const ours = (r: GraphHits): Answer => ({ labels: Array.from(r.labels), distances: Array.from(r.distances) });
// hnswlib-node returns float32 distances widened to double: Math.fround is the identity on them.
const theirs = (r: { neighbors: number[]; distances: number[] }): Answer => ({ labels: r.neighbors, distances: r.distances.map(Math.fround) });

function answersOurs(g: HnswGraph, filter?: Uint8Array): Answer[] {
  g.setEf(40);
  return QUERIES.map((q) => ours(g.searchKnn(q, 10, filter)));
}

function answersTheirs(g: hnswlib.HierarchicalNSW, filter?: (label: number) => boolean): Answer[] {
  g.setEf(40);
  return QUERIES.map((q) => theirs(g.searchKnn(Array.from(q), 10, filter)));
}

describe('native graph', () => {
  for (const metric of METRICS) {
    it(`native graph - ${metric}: the same inserts and seed give hnswlib-node's graph, answers and file`, () => {
      const a = buildOurs(metric);
      const b = buildTheirs(metric);
      const expected = answersTheirs(b);
      assert.deepEqual(answersOurs(a), expected, 'identical labels and distances');
      assert.ok(expected.every((r) => r.labels.length === 10));
      // The stored vectors too (normalized for cosine).
      for (const label of [0, 17, N - 1]) assert.deepEqual(Array.from(a.getPoint(label)), b.getPoint(label).map(Math.fround));
    });

    it(`native graph - ${metric}: a file written by either is read by the other and answers identically`, () => {
      const theirsFile = join(tmp, `theirs-${metric}.hnsw`);
      const oursFile = join(tmp, `ours-${metric}.hnsw`);
      const b = buildTheirs(metric);
      b.markDelete(5); // a deleted mark travels in the file too
      b.writeIndexSync(theirsFile);
      const expected = answersTheirs(b);

      const a = newHnswGraph(metric, DIM);
      a.readIndex(theirsFile);
      assert.equal(a.getCurrentCount(), N);
      assert.deepEqual(answersOurs(a), expected, 'hnswlib-node → addon');

      a.writeIndex(oursFile);
      const c = new hnswlib.HierarchicalNSW(metric, DIM);
      c.readIndexSync(oursFile);
      assert.deepEqual(answersTheirs(c), expected, 'addon → hnswlib-node');
      assert.ok(expected.every((r) => !r.labels.includes(5)), 'the deleted point stays deleted');
    });
  }

  it('native graph - the bitset filter returns only allowed labels, exactly as the callback filter does', () => {
    for (const metric of METRICS) {
      const a = buildOurs(metric);
      const b = buildTheirs(metric);
      for (const every of [2, 7, 50]) {
        const allowed = POINTS.map((_, l) => l).filter((l) => (l * 7919) % every === 0);
        const set = new Set(allowed);
        const mine = answersOurs(a, bitsetOf(allowed, N));
        assert.deepEqual(mine, answersTheirs(b, (l) => set.has(l)), `${metric}, 1 in ${every} allowed`);
        assert.ok(mine.every((r) => r.labels.length === 10 && r.labels.every((l) => set.has(l))), 'only allowed labels');
      }
      assert.deepEqual(ours(a.searchKnn(QUERIES[0] as Float32Array, 10, new Uint8Array(0))), { labels: [], distances: [] }, 'an empty bitset allows nothing');
    }
  });

  it('native graph - the exact scan equals a brute force over the chosen points', () => {
    for (const metric of METRICS) {
      const a = buildOurs(metric);
      const labels = Uint32Array.from(POINTS.map((_, l) => l).filter((l) => l % 9 === 4));
      const flat = new FlatIndex({ dim: DIM, metric });
      flat.upsert(Array.from(labels, (l) => ({ id: String(l), vector: POINTS[l] as Float32Array })));
      for (const q of QUERIES) {
        const got = a.exactKnn(q, 10, labels);
        const want = flat.search({ vector: q, k: 10 });
        assert.deepEqual(Array.from(got.labels).map(String), want.map((h) => h.id), metric);
        got.distances.forEach((d, i) => assert.ok(closeDistance(d, (want[i] as { distance: number }).distance), `${metric}: ${d} vs ${want[i]?.distance}`));
        // The graph's own distance: what its search reports for the same label.
        const searched = a.searchKnn(q, 1, bitsetOf([got.labels[0] as number], N));
        assert.equal(searched.distances[0], got.distances[0]);
      }
    }
  });

  it('native graph - the exact scan returns every tie at the k-th distance', () => {
    const g = newHnswGraph('l2', 2);
    g.initIndex(16, 4, 10, 1);
    const at = [[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1], [3, 3]];
    at.forEach((v, l) => g.addPoint(Float32Array.from(v), l));
    const r = g.exactKnn(Float32Array.from([0, 0]), 2, Uint32Array.from([5, 4, 3, 2, 1, 0]));
    assert.deepEqual(Array.from(r.labels), [0, 1, 2, 3, 4], 'the nearest, then the four at distance 1, by label');
    assert.deepEqual(Array.from(r.distances), [0, 1, 1, 1, 1]);
    assert.deepEqual(Array.from(g.exactKnn(Float32Array.from([0, 0]), 0, Uint32Array.from([1])).labels), []);
  });

  it('native graph - a distance that is NaN (ip of huge components) scores last in the exact scan, whatever the order of the labels', () => {
    const g = newHnswGraph('ip', 2);
    g.initIndex(64, 4, 10, 1);
    g.addPoint(Float32Array.from([1e20, -1e20]), 0);
    for (let l = 1; l < 40; l++) g.addPoint(Float32Array.from([1, l]), l);
    const labels = Uint32Array.from({ length: 40 }, (_, i) => (i * 7) % 40);
    const r = g.exactKnn(Float32Array.from([1e20, 1e20]), 40, labels);
    assert.equal(r.labels.length, 40);
    assert.equal(r.labels[39], 0, 'the NaN distance comes last');
    assert.equal(r.distances[39], Infinity);
    for (let i = 1; i < 39; i++) assert.ok((r.distances[i - 1] as number) <= (r.distances[i] as number), 'sorted');
  });

  it('native graph - bad input is an error naming the argument, never a crash', () => {
    const g = newHnswGraph('cosine', 4);
    assert.throws(() => g.searchKnn(Float32Array.from([1, 0, 0, 0]), 1), /searchKnn: the graph is not initialized/);
    g.initIndex(8, 4, 10, 1);
    g.addPoint(Float32Array.from([1, 0, 0, 0]), 0);
    const q = Float32Array.from([1, 1, 0, 0]);
    const cases: [() => unknown, RegExp][] = [
      [() => newHnswGraph('hamming' as Metric, 4), /metric must be "l2", "ip" or "cosine", got "hamming"/],
      [() => newHnswGraph('l2', 0), /dim must be an integer from 1/],
      [() => g.addPoint([1, 0, 0, 0] as unknown as Float32Array, 1), /addPoint: vector must be a Float32Array of 4 numbers, got an Array/],
      [() => g.addPoint(Float64Array.from([1, 0, 0, 0]) as unknown as Float32Array, 1), /addPoint: vector must be a Float32Array of 4 numbers, got a Float64Array/],
      [() => g.addPoint(Float32Array.from([1, 0, 0]), 1), /addPoint: vector must have 4 numbers, got 3/],
      [() => g.addPoint(q, -1), /addPoint: label must be an integer from 0 to 4294967295, got -1/],
      [() => g.addPoint(q, 1.5), /addPoint: label must be an integer/],
      [() => g.searchKnn(q.subarray(1), 1), /searchKnn: query must have 4 numbers, got 3/],
      [() => g.searchKnn(undefined as unknown as Float32Array, 1), /searchKnn: query must be a Float32Array of 4 numbers, got undefined/],
      [() => g.searchKnn(q, 9), /searchKnn: k must be an integer from 0 to 8, got 9/],
      [() => g.searchKnn(q, 1, [1] as unknown as Uint8Array), /searchKnn: allowed must be a Uint8Array bitset, got an Array/],
      [() => g.exactKnn(q, 1, [0] as unknown as Uint32Array), /exactKnn: labels must be a Uint32Array, got an Array/],
      [() => g.exactKnn(q, 1, Uint32Array.from([0, 3])), /exactKnn: labels\[1\] = 3 is not a point of the graph/],
      [() => g.markDelete(3), /markDelete: hnswlib: Label not found/],
      [() => g.getPoint(3), /getPoint: hnswlib: Label not found/],
      [() => g.readIndex(join(tmp, 'missing.hnsw')), /readIndex: .*missing.hnsw: hnswlib: Cannot open file/],
      [() => g.writeIndex(join(tmp, 'no-such-dir', 'g.hnsw')), /writeIndex: .*g.hnsw has -1 bytes after writing/],
    ];
    for (const [f, re] of cases) assert.throws(f, re);
    // a graph file of another dimension is refused, not read with the wrong element size
    const wide = newHnswGraph('l2', 8);
    wide.initIndex(4, 4, 10, 1);
    wide.addPoint(new Float32Array(8).fill(1), 0);
    wide.writeIndex(join(tmp, 'wide.hnsw'));
    assert.throws(() => g.readIndex(join(tmp, 'wide.hnsw')), /readIndex: .*wide.hnsw: the graph holds vectors of 8 dimensions, this index 4/);
    const full = newHnswGraph('l2', 4);
    full.initIndex(1, 4, 10, 1);
    full.addPoint(q, 0);
    assert.throws(() => full.addPoint(q, 1), /addPoint: hnswlib: The number of elements exceeds the specified limit/);
    // A failed read leaves the graph as it was, and it still works.
    assert.deepEqual(Array.from(g.searchKnn(q, 1).labels), [0]);
    assert.deepEqual(Array.from(g.getPoint(0)), [1, 0, 0, 0], 'the caller\'s array was not normalized in place');
    assert.deepEqual(Array.from(q), [1, 1, 0, 0], 'a cosine query is normalized in a copy');
  });
});
