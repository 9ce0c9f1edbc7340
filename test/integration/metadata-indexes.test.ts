/**
 * Metadata indexes declared at create, through a real cluster (nats-server, node processes,
 * LMDB): describe shows them, an idempotent create compares them, a filtered search with
 * `explain` reports per shard the plan its own index chose — the exact scan at 1% of the points,
 * the filtered graph at 50% — with answers that match a brute force over the matches, and a
 * restart of every node keeps the indexes (a declared range is still counted from its index). A
 * post-filtered search whose candidates hold too few matches says it fell back, and the node
 * counts it (shoal_search_postfilter_fallbacks_total).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SearchReply, ShoalClient, UpsertPoint } from '../../src/client/client.js';
import { FlatIndex, parseFilter } from '../../src/index/mod.js';
import { AlreadyExistsError } from '../../src/runtime/errors.js';
import { TestCluster } from '../helpers/cluster.js';
import { freePort, parseMetrics } from '../helpers/prom-text.js';

const DIM = 64;
const N = 8000;
const LATENT = 6;
const NAME = 'indexed';
const INDEXES = { tenant: 'keyword', year: 'integer' } as const;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

// Points near a 6-dimensional subspace: a graph search finds their neighbours reliably.
const rand = rng(22);
const basis = Array.from({ length: LATENT }, () => Array.from({ length: DIM }, () => rand() * 2 - 1));
function vector(): number[] {
  const z = Array.from({ length: LATENT }, () => rand() * 2 - 1);
  return Array.from({ length: DIM }, (_, d) => basis.reduce((s, b, j) => s + (b[d] as number) * (z[j] as number), 0) + (rand() - 0.5) * 0.05);
}
const points: UpsertPoint[] = Array.from({ length: N }, (_, i) => ({
  id: `p${String(i).padStart(5, '0')}`,
  vector: vector(),
  metadata: { tenant: `t${i % 100}`, half: i % 2 === 0, year: 1975 + (i % 50), score: i % 50 },
}));
const queries = Array.from({ length: 10 }, () => vector());

let cluster: TestCluster;
let client: ShoalClient;
const ports: Record<string, number> = {};
const flat = new FlatIndex({ dim: DIM, metric: 'l2' });
flat.upsert(points.map((p) => ({ id: p.id, vector: Float32Array.from(p.vector), metadata: p.metadata })));

before(async () => {
  for (const id of ['n1', 'n2']) ports[id] = await freePort();
  cluster = await TestCluster.start({ nodes: 2, nodeEnv: Object.fromEntries(Object.entries(ports).map(([id, p]) => [id, { SHOAL_METRICS_PORT: String(p) }])) });
  client = await cluster.client({ timeoutMs: 30_000 });
});

after(async () => {
  await cluster?.stop();
});

function truth(q: number[], filter: Record<string, unknown>): string[] {
  return flat.search({ vector: q, k: 10, filter: parseFilter(filter) }).map((h) => h.id);
}

async function explained(q: number[], filter: Record<string, unknown>): Promise<SearchReply & { explain: NonNullable<SearchReply['explain']> }> {
  const r = await client.collection(NAME).search(q, { k: 10, ef: 16, filter, explain: true, consistency: 'strong', withMetadata: false });
  assert.equal(r.partial, false);
  assert.ok(r.explain, 'explain is in the reply');
  assert.deepEqual(r.explain.map((e) => e.shard), [0, 1], 'one entry per shard, in shard order');
  return r as SearchReply & { explain: NonNullable<SearchReply['explain']> };
}

describe('metadata indexes', () => {
  it('indexes - create and describe show them; a create with other indexes is ALREADY_EXISTS', async () => {
    const d = await client.createCollection({ name: NAME, dim: DIM, metric: 'l2', shards: 2, replicas: 1, hnsw: { m: 16, efConstruction: 100, ef: 16 }, indexes: INDEXES });
    assert.deepEqual(d.indexes, INDEXES);
    assert.deepEqual((await client.describeCollection(NAME)).indexes, INDEXES);
    await client.createCollection({ name: NAME, dim: DIM, metric: 'l2', shards: 2, replicas: 1, hnsw: { m: 16, efConstruction: 100, ef: 16 }, indexes: { year: 'integer', tenant: 'keyword' } });
    await assert.rejects(
      client.createCollection({ name: NAME, dim: DIM, metric: 'l2', shards: 2, replicas: 1, hnsw: { m: 16, efConstruction: 100, ef: 16 }, indexes: { year: 'float', tenant: 'keyword' } }),
      (e: unknown) => e instanceof AlreadyExistsError && /indexes/.test(e.message),
    );
    const coll = client.collection(NAME);
    for (let i = 0; i < N; i += 500) await coll.upsert(points.slice(i, i + 500));
    assert.equal(await coll.count({ consistency: 'strong' }), N);
  });

  it('indexes - each shard plans for itself: exact at 1% of the points, the filtered graph at 50%, answers right either way', async () => {
    for (const q of queries) {
      const narrow = await explained(q, { tenant: 't7' });
      assert.ok(narrow.explain.every((e) => e.plan === 'exact' && e.indexed), JSON.stringify(narrow.explain));
      assert.equal(narrow.explain.reduce((n, e) => n + e.matches, 0), N / 100);
      assert.equal(narrow.explain.reduce((n, e) => n + e.points, 0), N);
      assert.deepEqual(narrow.hits.map((h) => h.id), truth(q, { tenant: 't7' }), 'the exact plan answers exactly');
    }
    let found = 0;
    for (const q of queries) {
      const broad = await explained(q, { half: true });
      assert.ok(broad.explain.every((e) => e.plan !== 'exact'), `a graph plan at 50%: ${JSON.stringify(broad.explain)}`);
      assert.equal(broad.explain.reduce((n, e) => n + e.matches, 0), N / 2);
      assert.ok(broad.hits.every((h) => Number(h.id.slice(1)) % 2 === 0), 'every hit matches');
      const want = new Set(truth(q, { half: true }));
      found += broad.hits.filter((h) => want.has(h.id)).length;
    }
    assert.ok(found / (10 * queries.length) >= 0.9, `recall@10 of the graph plan ${found / (10 * queries.length)}`);
  });

  it('indexes - a declared numeric field is counted from its index, an undeclared one is not, and a restart keeps that', async () => {
    const check = async (when: string): Promise<void> => {
      const q = queries[0] as number[];
      const declared = await explained(q, { year: { $gte: 2020 } });
      assert.ok(declared.explain.every((e) => e.indexed), `${when}: ${JSON.stringify(declared.explain)}`);
      assert.equal(declared.explain.reduce((n, e) => n + e.matches, 0), N / 10);
      const undeclared = await explained(q, { score: { $gte: 45 } });
      assert.ok(undeclared.explain.every((e) => !e.indexed), `${when}: ${JSON.stringify(undeclared.explain)}`);
      assert.deepEqual(declared.hits.map((h) => h.id), truth(q, { year: { $gte: 2020 } }), when);
      assert.deepEqual(undeclared.hits.map((h) => h.id), declared.hits.map((h) => h.id), `${when}: the same points either way`);
    };
    await check('before the restart');
    for (const id of cluster.nodes.keys()) await cluster.stopNode(id);
    for (const id of cluster.nodes.keys()) await cluster.startNode(id);
    assert.deepEqual((await client.describeCollection(NAME)).indexes, INDEXES);
    await check('after every node restarted');
  });

  it('indexes - a post-filtered search whose nearest candidates hold too few matches falls back, says so in explain, and is counted', async () => {
    // Half of the points match (x > 0); a query far on the other side finds none among its nearest.
    const far = 'far';
    await client.createCollection({ name: far, dim: DIM, metric: 'l2', shards: 1, replicas: 1, hnsw: { m: 16, efConstruction: 100, ef: 16 } });
    const r = rng(5);
    const pts: UpsertPoint[] = Array.from({ length: 3000 }, (_, i) => {
      const v = Array.from({ length: DIM }, () => r() * 2 - 1);
      return { id: `f${i}`, vector: v, metadata: { pos: (v[0] as number) > 0 } };
    });
    for (let i = 0; i < pts.length; i += 500) await client.collection(far).upsert(pts.slice(i, i + 500));
    const fallbacks = async (): Promise<number> => {
      let n = 0;
      for (const id of Object.keys(ports)) {
        const res = await fetch(`http://127.0.0.1:${ports[id]}/metrics`);
        for (const s of parseMetrics(await res.text()).get('shoal_search_postfilter_fallbacks_total') ?? []) n += s.value;
      }
      return n;
    };
    const before = await fallbacks();
    const q = { k: 10, ef: 16, filter: { pos: true }, explain: true, consistency: 'strong' as const, withMetadata: false };
    const away: number[] = Array.from({ length: DIM }, (_, d) => (d === 0 ? -30 : 0));
    const fell = await client.collection(far).search(away, q);
    assert.deepEqual(fell.explain?.map((e) => [e.plan, e.matches, e.fellBack]), [['hnsw-filtered', fell.explain?.[0]?.matches, true]], JSON.stringify(fell.explain));
    assert.equal(fell.hits.length, 10);
    const dist = (v: ArrayLike<number>): number => away.reduce((s: number, a, d) => s + ((v[d] as number) - a) ** 2, 0);
    const want = new Set(pts.filter((p) => p.metadata?.['pos'] === true).sort((a, b) => dist(a.vector) - dist(b.vector)).slice(0, 10).map((p) => p.id));
    assert.ok(fell.hits.filter((h) => want.has(h.id)).length >= 8, 'the fallback finds the nearest matches');
    const near = await client.collection(far).search(away.map((x) => -x), q);
    assert.deepEqual(near.explain?.map((e) => [e.plan, e.fellBack]), [['hnsw-postfilter', undefined]], `a query on the matching side keeps the post-filter plan: ${JSON.stringify(near.explain)}`);
    assert.equal(await fallbacks(), before + 1, 'the node counted the one fallback');
  });
});
