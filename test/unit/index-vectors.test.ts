/**
 * Issue 21: an HNSW index keeps no second copy of its vectors. `get` and `withVector` read them
 * from the graph (as given for l2 and ip, under every plan, after in-place updates and reused
 * labels); the table file carries none; a table file of an older format (vectors in it) still loads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { after, describe, it } from 'node:test';
import { FlatIndex, HnswIndex, parseFilter, type HnswIndexOptions, type IndexPoint, type Metric, type SearchQuery } from '../../src/index/mod.js';
import { randomVector, rng } from '../helpers/shard-workload.js';

const DIM = 12;
const PARAMS = { m: 12, efConstruction: 64, ef: 32 };
const tmp = mkdtempSync(join(tmpdir(), 'shoal-index-vectors-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function points(seed: number, n: number, prefix = 'p'): IndexPoint[] {
  const rand = rng(seed);
  // components of every magnitude: float32 values that no rounding leaves alone
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, vector: Float32Array.from(randomVector(rand, DIM), (x) => x * 10 ** ((i % 7) - 3)), metadata: { c: i % 10 } }));
}

const bytes = (v: Float32Array | undefined): string => Buffer.from((v ?? new Float32Array(0)).buffer, v?.byteOffset, v?.byteLength).toString('hex');

const PLANS: { name: string; opts: Partial<HnswIndexOptions> }[] = [
  { name: 'graph', opts: { exactBudget: 0, filteredGraphCost: 0, postfilterMaxCandidates: 0 } },
  { name: 'post-filter', opts: { exactBudget: 0, filteredGraphCost: 0 } },
  { name: 'exact', opts: { exactBudget: 1 << 30 } },
];

describe('index vectors', () => {
  for (const metric of ['l2', 'ip'] as const) {
    it(`index vectors - ${metric}: get and withVector return the bytes given, under every plan, after updates and reused labels`, () => {
      for (const plan of PLANS) {
        const index = HnswIndex.create({ dim: DIM, metric, hnsw: PARAMS, seed: 5, initialCapacity: 8, ...plan.opts });
        const first = points(1, 600);
        index.upsert(first);
        const latest = new Map(first.map((p) => [p.id, p]));
        // in-place updates, and deleted labels taken by new ids
        const updated = points(2, 100).map((p, i) => ({ ...p, id: `p${i * 3}` }));
        index.upsert(updated);
        for (const p of updated) latest.set(p.id, p);
        const gone = first.filter((_, i) => i % 5 === 1).map((p) => p.id);
        index.delete(gone);
        for (const id of gone) latest.delete(id);
        const fresh = points(3, 80, 'n');
        index.upsert(fresh);
        for (const p of fresh) latest.set(p.id, p);
        for (const [id, p] of latest) assert.equal(bytes(index.get(id)?.vector), bytes(p.vector), `${plan.name}: get(${id})`);
        assert.equal(index.get(gone[0] as string), undefined);
        const rand = rng(9);
        for (let i = 0; i < 30; i++) {
          const q: SearchQuery = { vector: randomVector(rand, DIM), k: 10, withVector: true, ...(i % 2 === 1 ? { filter: parseFilter({ c: { $in: [1, 2, 3, 4, 5, 6] } }) } : {}) };
          const hits = index.search(q);
          assert.equal(hits.length, 10);
          for (const h of hits) assert.equal(bytes(h.vector), bytes(latest.get(h.id)?.vector), `${plan.name}: hit ${h.id}'s vector`);
        }
        assert.ok(index.search({ vector: randomVector(rand, DIM), k: 3 }).every((h) => h.vector === undefined), 'no vector unless asked');
      }
    });
  }

  it('index vectors - cosine: the index returns the unit vector its graph holds', () => {
    const index = HnswIndex.create({ dim: DIM, metric: 'cosine', hnsw: PARAMS });
    const ps = points(4, 50);
    index.upsert(ps);
    for (const p of ps.slice(0, 10)) {
      const got = index.get(p.id)?.vector ?? new Float32Array(0);
      const n = Math.hypot(...p.vector);
      got.forEach((x, d) => assert.ok(Math.abs(x - (p.vector[d] as number) / n) < 1e-6, `${p.id}[${d}]`));
    }
  });

  it('index vectors - the table file carries no vectors; a format 2 file (vectors in it) loads and answers alike', () => {
    const opts = { dim: DIM, metric: 'l2' as Metric, hnsw: PARAMS, seed: 5 };
    const index = HnswIndex.create(opts);
    const ps = points(5, 2000);
    index.upsert(ps);
    index.hide(['p7']);
    const dir = join(tmp, 'v3');
    index.checkpoint(dir);
    const table = join(dir, 'table.v8');
    const file = deserialize(readFileSync(table)) as { format: number; table: { vectors?: Float32Array; next: number } };
    assert.equal(file.format, 3);
    assert.equal(file.table.vectors, undefined);
    // what is left: ids, metadata, free and hidden labels; far less than one vector a point
    assert.ok(statSync(table).size < ps.length * DIM * 4, `table.v8 is ${statSync(table).size} B for ${ps.length} points of ${DIM * 4} B`);

    // the same checkpoint as format 2 wrote it: every vector in the table
    file.format = 2;
    file.table.vectors = new Float32Array(file.table.next * DIM);
    ps.forEach((p, i) => file.table.vectors?.set(p.vector, i * DIM));
    writeFileSync(table, serialize(file));
    rmSync(join(dir, 'sums.json')); // its checksums are of the other bytes; a checkpoint without sums is read unchecked
    const old = HnswIndex.load(dir, opts);
    assert.equal(old.count(), ps.length - 1);
    assert.equal(old.get('p7'), undefined, 'hidden labels still read');
    const rand = rng(6);
    for (let i = 0; i < 20; i++) {
      const q = { vector: randomVector(rand, DIM), k: 5, withVector: true };
      assert.deepEqual(old.search(q), index.search(q));
    }
    old.checkpoint(join(tmp, 'v3-again'));
    assert.equal((deserialize(readFileSync(join(tmp, 'v3-again', 'table.v8'))) as { format: number }).format, 3, 'written back in format 3');
  });

  it('index vectors - a flat index still keeps its vectors', () => {
    const flat = new FlatIndex({ dim: DIM, metric: 'l2' });
    const ps = points(7, 100);
    flat.upsert(ps);
    assert.equal(bytes(flat.get('p3')?.vector), bytes(ps[3]?.vector));
    const hit = flat.search({ vector: ps[9]?.vector as Float32Array, k: 1, withVector: true })[0];
    assert.equal(bytes(hit?.vector), bytes(ps[9]?.vector));
  });
});
