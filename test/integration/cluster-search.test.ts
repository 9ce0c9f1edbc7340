/**
 * Searches through a real cluster return exactly what an exact index over the same points
 * returns, for every sharding strategy, with and without filters; and the replicas of a shard,
 * read at `eventual` once caught up, answer identically.
 */
import { OpsClient } from '../../src/client/ops.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient, UpsertPoint } from '../../src/client/client.js';
import { MetadataStore } from '../../src/cluster/metadata.js';
import { FlatIndex, parseFilter, type Hit } from '../../src/index/mod.js';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import { replicaActorName, type SearchResult, type ShardStatus } from '../../src/actors/shard-protocol.js';
import { TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
let client: ShoalClient;

const DIM = 8;
const N = 400;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const rand = rng(7);
const points: UpsertPoint[] = Array.from({ length: N }, (_, i) => ({
  id: `p${String(i).padStart(4, '0')}`,
  vector: Array.from({ length: DIM }, () => rand() * 2 - 1),
  metadata: { color: ['red', 'green', 'blue'][i % 3] as string, size: i % 10, tags: i % 4 === 0 ? ['a', 'b'] : ['c'], tenant: i % 20 },
  shardKey: `tenant-${i % 20}`,
}));
const queries = Array.from({ length: 12 }, () => Array.from({ length: DIM }, () => rand() * 2 - 1));
const filters: (Record<string, unknown> | undefined)[] = [undefined, { color: 'red' }, { $and: [{ size: { $gte: 3 } }, { tags: 'a' }] }, { $or: [{ color: 'blue' }, { size: { $in: [1, 2] } }] }];

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  client = await cluster.client({ timeoutMs: 15_000 });
});

after(async () => {
  await cluster?.stop();
});

function oracle(metric: 'l2' | 'cosine' | 'ip'): FlatIndex {
  const flat = new FlatIndex({ dim: DIM, metric });
  flat.upsert(points.map((p) => ({ id: p.id, vector: Float32Array.from(p.vector), metadata: p.metadata })));
  return flat;
}

function sameHits(got: { id: string; distance: number }[], want: Hit[], what: string): void {
  assert.deepEqual(got.map((h) => h.id), want.map((h) => h.id), what);
  got.forEach((h, i) => assert.ok(Math.abs(h.distance - (want[i] as Hit).distance) < 1e-4, `${what}: distance of ${h.id}`));
}

const strategies = [
  { name: 'ring', metric: 'l2' as const, sharding: { strategy: 'consistent-hash' as const, vnodes: 64 } },
  { name: 'modulo', metric: 'cosine' as const, sharding: { strategy: 'hash' as const } },
  { name: 'ranges', metric: 'ip' as const, sharding: { strategy: 'range' as const, boundaries: ['p0130', 'p0270'] } },
  { name: 'tenants', metric: 'l2' as const, sharding: { strategy: 'custom' as const, vnodes: 64 } },
];

describe('cluster search', () => {
  for (const s of strategies) {
    it(`search - ${s.sharding.strategy} over 3 shards equals an exact index, with and without filters`, async () => {
      await client.createCollection({ name: s.name, dim: DIM, metric: s.metric, shards: 3, replicas: 2, sharding: s.sharding, hnsw: { m: 16, efConstruction: 200, ef: 400 } });
      const coll = client.collection(s.name);
      const withKeys = s.sharding.strategy === 'custom' ? points : points.map(({ shardKey: _k, ...p }) => p);
      for (let i = 0; i < withKeys.length; i += 100) await coll.upsert(withKeys.slice(i, i + 100));
      assert.equal(await coll.count({ consistency: 'strong' }), N);
      const d = await client.describeCollection(s.name);
      assert.ok(d.shards.every((sh) => sh.count > 0), `every shard holds points: ${d.shards.map((sh) => sh.count).join(', ')}`);
      const flat = oracle(s.metric);
      for (const [qi, q] of queries.entries()) {
        for (const filter of filters) {
          const got = await coll.search(q, { k: 10, ef: 400, consistency: 'strong', ...(filter ? { filter } : {}) });
          assert.equal(got.partial, false);
          const want = flat.search({ vector: q, k: 10, ...(filter ? { filter: parseFilter(filter) } : {}) });
          sameHits(got.hits, want, `${s.name} query ${qi} filter ${JSON.stringify(filter)}`);
        }
      }
      if (s.sharding.strategy === 'custom') {
        // shardKeys narrows the search to the keys' shards, and still finds every match there
        const got = await coll.search(queries[0] as number[], { k: 5, shardKeys: ['tenant-2'], filter: { tenant: 2 }, consistency: 'strong' });
        assert.equal(got.coverage.shards, 1, 'only the key\'s shard is asked');
        const want = flat.search({ vector: queries[0] as number[], k: 5, filter: parseFilter({ tenant: 2 }) });
        sameHits(got.hits, want, 'custom shardKeys');
      }
    });
  }

  it('search - a follower serves strong and leased reads, and they see every write acknowledged before them', async () => {
    await client.createCollection({ name: 'follower-reads', dim: DIM, metric: 'l2', shards: 1, replicas: 3 });
    const coll = client.collection('follower-reads');
    const probe = await ActorSystem.connect(cluster.nats.url, { name: 'probe-fr' });
    try {
      const record = (await (await MetadataStore.open(probe.nc, 'shoal')).getCollection('follower-reads'))?.value;
      assert.ok(record);
      const replicas = (record.placement[0] as { replicas: string[] }).replicas;
      const statusOf = (node: string): Promise<ShardStatus> =>
        probe.request<ShardStatus>(probe.subjects.actor(node, replicaActorName(record.uid, 0)), { type: 'status' }, { timeoutMs: 2_000 });
      await coll.upsert([{ id: 'seed', vector: points[0]?.vector as number[] }]);
      // The coordinator evens leaderships out by itself; the reads below must not meet a handover.
      await new OpsClient(client).pauseRebalance();
      await cluster.waitFor(async () => (await Promise.all(replicas.map(statusOf))).some((st) => st.role === 'leader'), 'a replica leads');
      const followers = (await Promise.all(replicas.map(statusOf))).filter((st) => st.role === 'follower').map((st) => st.node);
      assert.equal(followers.length, 2, 'two of the three replicas follow');
      for (let i = 0; i < 40; i++) {
        const p = points[i] as UpsertPoint;
        await coll.upsert([{ id: p.id, vector: p.vector }]);
        // Straight to a follower, the moment the write is acknowledged: the leader has applied
        // it, the follower may not even know yet that it is committed.
        const node = followers[i % 2] as string;
        const consistency = i % 4 < 2 ? 'strong' : 'leased';
        const got: { points: { id: string }[] } = await probe.request<{ points: { id: string }[] }>(
          probe.subjects.actor(node, replicaActorName(record.uid, 0)),
          { type: 'get', ids: [p.id], withVector: false, withMetadata: false, consistency, timeoutMs: 5_000 },
          { timeoutMs: 5_000 },
        );
        assert.deepEqual(got.points.map((x) => x.id), [p.id], `a ${consistency} read on follower ${node} sees the write acknowledged before it (write ${i})`);
        const found: SearchResult = await probe.request<SearchResult>(
          probe.subjects.actor(node, replicaActorName(record.uid, 0)),
          { type: 'search', queries: [{ vector: Float32Array.from(p.vector), k: 1, withVector: false, withMetadata: false }], consistency, timeoutMs: 5_000 },
          { timeoutMs: 5_000 },
        );
        assert.equal(found.results[0]?.[0]?.id, p.id, `a ${consistency} search on follower ${node} finds the point just written (write ${i})`);
      }
      for (const node of followers) {
        const st = await statusOf(node);
        assert.equal(st.role, 'follower', `${node} still follows (the reads were served by a follower)`);
        assert.equal(st.followerReads.reads + st.followerReads.leased, 40, `${node} served its 40 reads as a follower`);
        assert.ok(st.followerReads.requests >= 1 && st.followerReads.requests <= st.followerReads.reads, `${node} asked the leader for read indexes (${st.followerReads.requests})`);
      }
      // Leased reads on a follower: once it holds a read lease from the leader, they cost no
      // request at all, and still see every write acknowledged before them.
      const node = followers[0] as string;
      const before = await statusOf(node);
      for (let i = 70; i < 130; i++) {
        const p = points[i] as UpsertPoint;
        if (i % 10 === 0) await coll.upsert([{ id: p.id, vector: p.vector }]);
        const want = points[i - (i % 10)] as UpsertPoint;
        const got: { points: { id: string }[] } = await probe.request<{ points: { id: string }[] }>(
          probe.subjects.actor(node, replicaActorName(record.uid, 0)),
          { type: 'get', ids: [want.id], withVector: false, withMetadata: false, consistency: 'leased', timeoutMs: 5_000 },
          { timeoutMs: 5_000 },
        );
        assert.deepEqual(got.points.map((x) => x.id), [want.id], `a leased read on follower ${node} sees the write acknowledged before it (read ${i})`);
        await new Promise((r) => setTimeout(r, 5));
      }
      const after = await statusOf(node);
      const leased = after.followerReads.leased - before.followerReads.leased;
      const requests = after.followerReads.requests - before.followerReads.requests;
      assert.ok(leased >= 40, `most of 60 leased reads were served by the follower's read lease (${leased}, with ${requests} read-index requests)`);
      // The router sends strong and leased reads to its own node's replica, follower or not: every
      // read through the API sees the writes acknowledged before it, whichever router serves it.
      for (let i = 40; i < 70; i++) {
        const p = points[i] as UpsertPoint;
        await coll.upsert([{ id: p.id, vector: p.vector }]);
        const [got] = await coll.get([p.id], { consistency: i % 2 === 0 ? 'strong' : 'leased' });
        assert.equal(got?.id, p.id, `an API read right after write ${i} sees it`);
      }
    } finally {
      await new OpsClient(client).resumeRebalance().catch(() => undefined);
      await probe.shutdown();
    }
  });

  it('search - replicas of a shard, read at eventual once caught up, return identical hits', async () => {
    const name = 'ring';
    const probe = await ActorSystem.connect(cluster.nats.url, { name: 'probe' });
    try {
      const record = (await (await MetadataStore.open(probe.nc, 'shoal')).getCollection(name))?.value;
      assert.ok(record);
      for (const p of record.placement) {
        // wait until every replica applied what the leader committed
        await cluster.waitFor(async () => {
          const st = await Promise.all(p.replicas.map((node) => probe.request<ShardStatus>(probe.subjects.actor(node, replicaActorName(record.uid, p.shard)), { type: 'status' }, { timeoutMs: 2_000 })));
          return st.every((x) => x.appliedIndex === Math.max(...st.map((y) => y.commitIndex)));
        }, `replicas of shard ${p.shard} caught up`);
        for (const q of queries.slice(0, 5)) {
          const answers: SearchResult[] = await Promise.all(
            p.replicas.map((node) =>
              probe.request<SearchResult>(
                probe.subjects.actor(node, replicaActorName(record.uid, p.shard)),
                { type: 'search', queries: [{ vector: Float32Array.from(q), k: 10, ef: 50, withVector: false, withMetadata: false }], consistency: 'eventual', timeoutMs: 5_000 },
                { timeoutMs: 5_000 },
              ),
            ),
          );
          const [first, ...rest] = answers.map((a) => a.results[0]);
          assert.ok(first && first.length > 0);
          for (const other of rest) assert.deepEqual(other, first, `shard ${p.shard}: replicas answer hit for hit (ids and distances)`);
        }
      }
    } finally {
      await probe.shutdown();
    }
  });
});
