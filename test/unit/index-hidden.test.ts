import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { after, describe, it } from 'node:test';
import { FlatIndex, HnswIndex, parseFilter, type Hit, type IndexPoint, type SearchPlan, type SearchQuery, type VectorIndex } from '../../src/index/mod.js';
import { assertSameHits } from '../helpers/same-hits.js';
import { randomVector, rng } from '../helpers/shard-workload.js';

const DIM = 8;
const PARAMS = { m: 12, efConstruction: 64, ef: 32 };
const tmp = mkdtempSync(join(tmpdir(), 'shoal-hidden-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Variant {
  name: string;
  make: () => VectorIndex;
  /** The plans of an unfiltered search and of a broad filtered one. */
  plans: [SearchPlan, SearchPlan];
}

const hnswOptions = { dim: DIM, metric: 'l2' as const, hnsw: PARAMS, seed: 3, initialCapacity: 8 };
const graph = (): HnswIndex => HnswIndex.create({ ...hnswOptions, exactBudget: 0, filteredGraphCost: 0, postfilterMaxCandidates: 0 });
const postfilter = (): HnswIndex => HnswIndex.create({ ...hnswOptions, exactBudget: 0, filteredGraphCost: 0 });
const VARIANTS: Variant[] = [
  { name: 'hnsw graph', make: graph, plans: ['hnsw', 'hnsw-filtered'] },
  { name: 'hnsw post-filter', make: postfilter, plans: ['hnsw', 'hnsw-postfilter'] },
  { name: 'hnsw exact', make: () => HnswIndex.create({ ...hnswOptions, exactBudget: 1 << 30 }), plans: ['exact', 'exact'] },
  { name: 'flat', make: () => new FlatIndex({ dim: DIM, metric: 'l2' }), plans: ['exact', 'exact'] },
];

function seededPoints(seed: number, n: number, prefix = 'p'): IndexPoint[] {
  const rand = rng(seed);
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, vector: Float32Array.from(randomVector(rand, DIM)), metadata: { c: i % 10, third: i % 3 === 0 } }));
}

function queries(seed: number, n: number): SearchQuery[] {
  const rand = rng(seed);
  const broad = parseFilter({ c: { $in: [1, 2, 3, 4, 5] } });
  return Array.from({ length: n }, (_, i) => ({ vector: randomVector(rand, DIM), k: 10, ...(i % 2 === 1 ? { filter: broad } : {}) }));
}

const ids = (hits: Hit[]): string[] => hits.map((h) => h.id);
const answers = (index: VectorIndex, qs: SearchQuery[]): string => JSON.stringify(qs.map((q) => index.search(q)));
const vectorOf = (index: VectorIndex, id: string): number[] | undefined => {
  const p = index.get(id);
  return p && Array.from(p.vector);
};

describe('hidden points', () => {
  it('hidden points - never returned by any plan, not got, not counted', () => {
    const points = seededPoints(1, 1500);
    const hidden = points.filter((_, i) => i % 3 === 0);
    const hiddenIds = new Set(hidden.map((p) => p.id));
    const oracle = new FlatIndex({ dim: DIM, metric: 'l2' });
    oracle.upsert(points.filter((p) => !hiddenIds.has(p.id)));
    for (const v of VARIANTS) {
      const index = v.make();
      index.upsert(points);
      assert.equal(index.hide(hidden.map((p) => p.id)), 500, v.name);
      assert.equal(index.count(), 1000, `${v.name}: hidden points are not counted`);
      assert.equal(index.get('p0'), undefined, `${v.name}: a hidden point is not got`);
      assert.deepEqual(vectorOf(index, 'p1'), Array.from(points[1]?.vector ?? []));
      let found = 0;
      for (const q of queries(2, 40)) {
        assert.equal(index.plan(q), q.filter ? v.plans[1] : v.plans[0], v.name);
        const hits = index.search(q);
        assert.equal(hits.length, 10, v.name);
        assert.ok(hits.every((h) => !hiddenIds.has(h.id)), `${v.name}: no hidden point comes back`);
        const truth = oracle.search(q);
        if (index.plan(q) === 'exact') assertSameHits(hits, truth, `${v.name}: exact answers are those of an index without the hidden points`);
        const t = new Set(ids(truth));
        found += ids(hits).filter((id) => t.has(id)).length;
      }
      assert.ok(found / 400 >= 0.9, `${v.name}: recall@10 ${found / 400} with a third of the points hidden`);
      for (const p of hidden.slice(0, 20)) {
        const own = ids(index.search({ vector: p.vector, k: 3 }));
        assert.ok(!own.includes(p.id), `${v.name}: a search at a hidden point's own vector does not return it`);
      }
      assert.deepEqual(index.search({ vector: points[0]?.vector ?? [], k: 5, filter: parseFilter({ third: true }) }), [], `${v.name}: a filter that only hidden points match`);
      assert.equal(index.hide(['p0', 'nope', 'p1', 'p1']), 1, `${v.name}: hiding a hidden or unknown id is a no-op, a repeated id counts once`);
      assert.equal(index.unhide(['p2', 'nope', 'p1']), 1, `${v.name}: unhiding a visible or unknown id is a no-op`);
      index.hide(points.map((p) => p.id));
      assert.equal(index.count(), 0);
      assert.deepEqual(index.search({ vector: points[5]?.vector ?? [], k: 5 }), [], `${v.name}: everything hidden, no hits`);
    }
  });

  it('hidden points - unhiding gives back the answers (and the files) of an index that never hid them', () => {
    const points = seededPoints(3, 1200);
    const qs = queries(4, 40);
    const hiddenIds = points.filter((_, i) => i % 4 !== 1).map((p) => p.id); // three quarters
    for (const v of VARIANTS) {
      const hid = v.make();
      const never = v.make();
      hid.upsert(points);
      never.upsert(points);
      hid.hide(hiddenIds);
      assert.notEqual(answers(hid, qs), answers(never, qs));
      assert.equal(hid.unhide(hiddenIds), hiddenIds.length);
      assert.equal(hid.count(), never.count());
      assert.equal(answers(hid, qs), answers(never, qs), v.name);
      if (hid instanceof HnswIndex && never instanceof HnswIndex) {
        hid.checkpoint(join(tmp, `unhid-${v.name}`));
        never.checkpoint(join(tmp, `never-${v.name}`));
        for (const f of ['graph.hnsw', 'table.v8']) {
          assert.ok(readFileSync(join(tmp, `unhid-${v.name}`, f)).equals(readFileSync(join(tmp, `never-${v.name}`, f))), `${v.name}: ${f} is byte-identical`);
        }
      }
    }
  });

  it('hidden points - points imported hidden into an empty index, with writes in between, make the graph of points never hidden', () => {
    // A reshard target: it imports batch after batch, hidden, while writes of its own go on. With
    // hnswlib's markDelete as the hiding, inserts would never link to the hidden nodes: recall 0.03.
    const points = seededPoints(12, 1500);
    const qs = queries(13, 40);
    const oracle = new FlatIndex({ dim: DIM, metric: 'l2' });
    for (const v of VARIANTS) {
      const hid = v.make();
      const never = v.make();
      const imported: string[] = [];
      for (let i = 0; i < points.length; i += 100) {
        const batch = points.slice(i, i + 100);
        for (const index of v === VARIANTS[0] ? [hid, never, oracle] : [hid, never]) index.upsert(batch);
        if ((i / 100) % 3 !== 2) {
          hid.hide(batch.map((p) => p.id));
          imported.push(...batch.map((p) => p.id));
        }
        if (i >= 300) {
          const gone = points.slice(i - 300, i - 290).map((p) => p.id); // hidden and visible ones, their labels reused
          for (const index of v === VARIANTS[0] ? [hid, never, oracle] : [hid, never]) index.delete(gone);
        }
      }
      assert.ok(hid.count() < never.count() / 2);
      hid.unhide(imported);
      assert.equal(hid.count(), never.count());
      assert.equal(answers(hid, qs), answers(never, qs), v.name);
      if (hid instanceof HnswIndex && never instanceof HnswIndex) {
        let found = 0;
        for (const q of qs) {
          const truth = new Set(ids(oracle.search(q)));
          found += ids(hid.search(q)).filter((id) => truth.has(id)).length;
        }
        assert.ok(found / 400 >= 0.9, `${v.name}: recall@10 ${found / 400} after unhiding`);
        hid.checkpoint(join(tmp, `imported-${v.name}`));
        never.checkpoint(join(tmp, `visible-${v.name}`));
        for (const f of ['graph.hnsw', 'table.v8']) {
          assert.ok(readFileSync(join(tmp, `imported-${v.name}`, f)).equals(readFileSync(join(tmp, `visible-${v.name}`, f))), `${v.name}: ${f} is byte-identical`);
        }
      }
    }
  });

  it('hidden points - an upsert of a hidden id replaces it and keeps it hidden; a delete deletes it', () => {
    for (const v of VARIANTS) {
      const index = v.make();
      index.upsert(seededPoints(5, 40));
      index.upsert([{ id: 'x', vector: Float32Array.from([9, 9, 9, 9, 9, 9, 9, 9]), metadata: { c: 1 } }, { id: 'y', vector: Float32Array.from([-9, -9, -9, -9, -9, -9, -9, -9]) }]);
      assert.equal(index.hide(['x', 'y']), 2);
      index.upsert([{ id: 'x', vector: Float32Array.from([7, 7, 7, 7, 7, 7, 7, 7]), metadata: { c: 2 } }]);
      assert.equal(index.count(), 40, `${v.name}: an upsert of a hidden id adds nothing visible`);
      assert.equal(index.get('x'), undefined, `${v.name}: still hidden`);
      assert.ok(!ids(index.search({ vector: [7, 7, 7, 7, 7, 7, 7, 7], k: 5 })).includes('x'), `${v.name}: still not searched`);
      assert.equal(index.unhide(['x']), 1);
      assert.deepEqual(index.get('x'), { id: 'x', vector: Float32Array.from([7, 7, 7, 7, 7, 7, 7, 7]), metadata: { c: 2 } }, `${v.name}: it comes back replaced`);
      assert.deepEqual(ids(index.search({ vector: [7, 7, 7, 7, 7, 7, 7, 7], k: 1 })), ['x']);
      assert.deepEqual(ids(index.search({ vector: [7, 7, 7, 7, 7, 7, 7, 7], k: 1, filter: parseFilter({ c: 2 }) })), ['x'], `${v.name}: its metadata was replaced too`);

      assert.equal(index.delete(['y']), 1, `${v.name}: a hidden id is deleted (and counted as existing)`);
      assert.equal(index.count(), 41);
      assert.equal(index.unhide(['y']), 0, `${v.name}: a deleted id is no longer hidden`);
      index.upsert([{ id: 'y', vector: Float32Array.from([-8, -8, -8, -8, -8, -8, -8, -8]) }]);
      assert.equal(index.count(), 42);
      assert.deepEqual(ids(index.search({ vector: [-8, -8, -8, -8, -8, -8, -8, -8], k: 1 })), ['y'], `${v.name}: upserted again after its delete, it is visible`);
    }
  });

  it('hidden points - labels freed by deletes are reused, a hidden point label never is', () => {
    const points = seededPoints(6, 300);
    const hidden = points.slice(0, 60);
    const deleted = points.slice(60, 120).map((p) => p.id);
    const fresh = seededPoints(7, 600, 'new');
    for (const v of VARIANTS) {
      const index = v.make();
      const oracle = new FlatIndex({ dim: DIM, metric: 'l2' });
      index.upsert(points);
      oracle.upsert(points);
      index.hide(hidden.map((p) => p.id));
      assert.equal(index.delete(deleted), 60);
      oracle.delete(deleted);
      index.upsert(fresh); // the first 60 take the deleted points' labels
      oracle.upsert(fresh);
      assert.equal(index.count(), 300 - 60 - 60 + 600);
      assert.equal(index.unhide(hidden.map((p) => p.id)), 60);
      assert.equal(index.count(), oracle.count());
      for (const p of hidden) {
        assert.deepEqual(index.get(p.id), p, `${v.name}: ${p.id} comes back intact`);
        const [top] = index.search({ vector: p.vector, k: 1, ef: 200 });
        assert.deepEqual([top?.id, top?.distance], [p.id, 0], `${v.name}: ${p.id} is found at its own vector`);
      }
      for (const p of fresh.slice(0, 60)) assert.deepEqual(index.get(p.id), p, `${v.name}: ${p.id}, in a reused label, is intact`);
      if (v.plans[0] === 'exact') queries(8, 20).forEach((q, i) => assertSameHits(index.search(q), oracle.search(q), `${v.name}: query ${i}`));
    }
  });

  it('hidden points - a checkpoint keeps the hidden set, and a reloaded index goes on like the live one', () => {
    const points = seededPoints(9, 900);
    const qs = queries(10, 40);
    const live = graph();
    live.upsert(points.slice(0, 700));
    live.hide(points.slice(0, 200).map((p) => p.id));
    live.delete(points.slice(150, 250).map((p) => p.id)); // fifty hidden ones among them
    live.checkpoint(join(tmp, 'ckpt'));
    // The live index's search options (graph() leaves post-filtering off): the same plans, so the same answers.
    const loaded = HnswIndex.load(join(tmp, 'ckpt'), { ...hnswOptions, exactBudget: 0, filteredGraphCost: 0, postfilterMaxCandidates: 0 });
    assert.equal(loaded.count(), 450);
    assert.equal(loaded.get('p0'), undefined);
    assert.equal(answers(loaded, qs), answers(live, qs));
    for (const index of [live, loaded]) {
      index.upsert(points.slice(700));
      index.upsert(points.slice(100, 120).map((p) => ({ ...p, metadata: { c: 0, again: true } }))); // hidden: stay hidden
      assert.equal(index.search({ vector: points[100]?.vector ?? [], k: 10, filter: parseFilter({ again: true }) }).length, 0);
      assert.equal(index.unhide(points.slice(0, 100).map((p) => p.id)), 100);
      assert.equal(index.hide(points.slice(300, 400).map((p) => p.id)), 100);
      assert.equal(index.hide(points.slice(150, 250).map((p) => p.id)), 0, 'deleted ids cannot be hidden');
      assert.equal(index.count(), 100 + 450 + 200 - 100);
    }
    assert.equal(answers(loaded, qs), answers(live, qs), 'the reloaded index answers like the live one');
    live.checkpoint(join(tmp, 'live-end'));
    loaded.checkpoint(join(tmp, 'loaded-end'));
    for (const f of ['graph.hnsw', 'table.v8']) {
      assert.ok(readFileSync(join(tmp, 'live-end', f)).equals(readFileSync(join(tmp, 'loaded-end', f))), `${f} of the reloaded index is byte-identical`);
    }
    const again = HnswIndex.load(join(tmp, 'loaded-end'), hnswOptions);
    assert.equal(again.unhide(points.slice(100, 200).map((p) => p.id)), 50, 'the fifty hidden and not deleted');
    assert.deepEqual(again.get('p110')?.metadata, { c: 0, again: true });
  });

  it('hidden points - a format 1 checkpoint (before hiding existed) loads with nothing hidden', () => {
    const index = graph();
    index.upsert(seededPoints(11, 50));
    index.checkpoint(join(tmp, 'v1'));
    const path = join(tmp, 'v1', 'table.v8');
    const file = deserialize(readFileSync(path)) as { format: number; table: { hidden?: unknown } };
    file.format = 1;
    delete file.table.hidden;
    writeFileSync(path, serialize(file));
    rmSync(join(tmp, 'v1', 'sums.json')); // written before checkpoints had checksums
    const loaded = HnswIndex.load(join(tmp, 'v1'), hnswOptions);
    assert.equal(loaded.count(), 50);
    assert.equal(loaded.hide(['p1']), 1);
    assert.equal(loaded.count(), 49);
  });

  it('hidden points - hiding and unhiding 20,000 points takes milliseconds', () => {
    const index = HnswIndex.create({ dim: 2, metric: 'l2', hnsw: { m: 4, efConstruction: 8, ef: 8 }, initialCapacity: 20_000 });
    const points = Array.from({ length: 20_000 }, (_, i) => ({ id: `p${i}`, vector: Float32Array.from([Math.sin(i), Math.cos(i * 1.3)]) }));
    index.upsert(points);
    const all = points.map((p) => p.id);
    const t = performance.now();
    assert.equal(index.hide(all), all.length);
    assert.equal(index.unhide(all), all.length);
    const ms = performance.now() - t;
    // ~4 ms measured (100,000 of each: ~18 ms); the bound only catches a per-id cost gone wrong.
    assert.ok(ms < 400, `hide + unhide of 20,000 points took ${ms.toFixed(0)} ms`);
  });
});
