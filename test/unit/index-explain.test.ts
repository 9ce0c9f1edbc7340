/**
 * What an HNSW index tells of its plan (the search option `explain`): the plan switches from the
 * exact scan to the filtered graph as a filter matches more points, the match count is right, and
 * a declared numeric field is counted from its index — also after the index is saved and loaded
 * again with its declared indexes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FlatIndex, HnswIndex, parseFilter, type IndexedFields, type IndexPoint } from '../../src/index/mod.js';
import { rng } from '../helpers/shard-workload.js';

const DIM = 32;
const N = 5000;
const INDEXES: IndexedFields = { year: 'integer', cat: 'keyword' };


const rand = rng(11);
const points: IndexPoint[] = Array.from({ length: N }, (_, i) => ({
  id: `p${i}`,
  vector: Float32Array.from({ length: DIM }, () => rand() * 2 - 1),
  metadata: { cat: `c${i % 100}`, half: i % 2 === 0, year: 1975 + (i % 50) },
}));

function build(indexes?: IndexedFields): HnswIndex {
  const index = HnswIndex.create({ dim: DIM, metric: 'l2', hnsw: { m: 16, efConstruction: 100, ef: 16 }, indexes });
  index.upsert(points);
  return index;
}

describe('index explain', () => {
  it('index explain - the plan goes from exact at 1% of the points to the post-filtered graph at 50%, with the right match counts', () => {
    const index = build(INDEXES);
    const flat = new FlatIndex({ dim: DIM, metric: 'l2' });
    flat.upsert(points);
    const q = { vector: points[7]?.vector as Float32Array, k: 10, ef: 16 };
    const narrow = index.searchExplained({ ...q, filter: parseFilter({ cat: 'c5' }) });
    assert.deepEqual(narrow.explain, { plan: 'exact', matches: 50, points: N, indexed: true });
    assert.deepEqual(narrow.hits.map((h) => h.id), flat.search({ ...q, filter: parseFilter({ cat: 'c5' }) }).map((h) => h.id));
    const broad = index.searchExplained({ ...q, filter: parseFilter({ half: true }) });
    assert.equal(broad.explain.plan, 'hnsw-postfilter');
    assert.equal(broad.explain.matches, N / 2);
    assert.ok(broad.hits.every((h) => Number(h.id.slice(1)) % 2 === 0), 'graph hits match the filter');
    assert.deepEqual(index.searchExplained(q).explain, { plan: 'hnsw', matches: N, points: N, indexed: true });
    const range = index.searchExplained({ ...q, filter: parseFilter({ year: { $gte: 2000 } }) });
    assert.deepEqual([range.explain.matches, range.explain.indexed], [N / 2, true]);
    // plan() alone counts from the indexes and agrees with the search
    assert.equal(index.plan({ ...q, filter: parseFilter({ cat: 'c5' }) }), 'exact');
    assert.equal(index.plan({ ...q, filter: parseFilter({ half: true }) }), 'hnsw-postfilter');
  });

  it('index explain - a loaded index counts a range from its declared numeric index, and without the declaration by scanning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-explain-'));
    try {
      build(INDEXES).checkpoint(join(dir, 'ckpt'));
      const q = { vector: points[3]?.vector as Float32Array, k: 10, filter: parseFilter({ year: { $lt: 1980 } }) };
      const loaded = HnswIndex.load(join(dir, 'ckpt'), { dim: DIM, metric: 'l2', hnsw: { m: 16, efConstruction: 100, ef: 16 }, indexes: INDEXES });
      assert.deepEqual(loaded.searchExplained(q).explain, { plan: 'exact', matches: 500, points: N, indexed: true });
      const undeclared = HnswIndex.load(join(dir, 'ckpt'), { dim: DIM, metric: 'l2', hnsw: { m: 16, efConstruction: 100, ef: 16 } });
      const e = undeclared.searchExplained(q);
      assert.deepEqual(e.explain, { plan: 'exact', matches: 500, points: N, indexed: false });
      assert.deepEqual(e.hits, loaded.search(q), 'the same answer either way');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
