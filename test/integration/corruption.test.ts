/**
 * Damaged data on a real node (docs/operations.md, Corruption): a node stopped, one shard's index
 * checkpoint file and one point's value in another shard's LMDB data file overwritten behind its
 * back, restarted. Before this, the flipped checkpoint bytes loaded without a word (hnswlib checks
 * nothing) and the flipped vector was served by `get` as it was. Now each damaged replica finds
 * it, says so in a log line and in its status (the file, what was wrong), serves no reads, and is
 * rebuilt from its peers, after which it holds every point again; the node's third shard serves
 * throughout. Then a value damaged while another node runs is found by the read that meets it.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient, UpsertPoint } from '../../src/client/client.js';
import { MetadataStore, type CollectionRecord } from '../../src/cluster/metadata.js';
import { groupOf } from '../../src/cluster/shard-map.js';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import { openNodeEnv } from '../../src/storage/node-env.js';
import { PointsStore } from '../../src/storage/points-store.js';
import { replicaActorName, type SearchResult, type ShardStatus } from '../../src/actors/shard-protocol.js';
import { TestCluster } from '../helpers/cluster.js';

const DIM = 8;
/** Points of shard 0 (ids a…), one per request: it passes its first index checkpoint (at entry 1024). */
const ROUNDS = 1_040;
/** Points of shards 1 and 2 (ids b…, c…): no checkpoint needed there, and the cluster does a third of the work. */
const FEW = 40;
const SHARDS = ['a', 'b', 'c'];
const VICTIM = 'n2';

let cluster: TestCluster;
let client: ShoalClient;
let probe: ActorSystem;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const rand = rng(11);
const points = new Map<string, number[]>();
for (let i = 0; i < ROUNDS; i++) {
  for (const p of i < FEW ? SHARDS : ['a']) points.set(`${p}${String(i).padStart(4, '0')}`, Array.from({ length: DIM }, () => Math.fround(rand() * 2 - 1)));
}

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  client = await cluster.client({ timeoutMs: 15_000 });
  probe = await ActorSystem.connect(cluster.nats.url, { name: 'probe-corrupt' });
});

after(async () => {
  await probe?.shutdown().catch(() => undefined);
  await cluster?.stop();
});

/** Overwrites `bytes` at `offset` of `path` with their complement. */
function flip(path: string, offset: number, length: number): void {
  const fd = openSync(path, 'r+');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    for (let i = 0; i < length; i++) buf[i] = ~(buf[i] as number) & 0xff;
    writeSync(fd, buf, 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Every offset of `pattern` in `path`. */
function find(path: string, pattern: Buffer): number[] {
  const data = readFileSync(path);
  const out: number[] = [];
  for (let at = data.indexOf(pattern); at >= 0; at = data.indexOf(pattern, at + 1)) out.push(at);
  return out;
}

function vectorBytes(id: string): Buffer {
  return Buffer.from(Float32Array.from(points.get(id) as number[]).buffer);
}

describe('corruption', () => {
  it('corruption - a damaged index checkpoint and a damaged point value are found at restart, reported, never served, and rebuilt from the peers; the node\'s other shard serves throughout', async () => {
    await client.createCollection({ name: 'docs', dim: DIM, metric: 'l2', shards: 3, replicas: 3, sharding: { strategy: 'range', boundaries: ['b', 'c'] } });
    const coll = client.collection('docs');
    const ids = [...points.keys()];
    const batches: UpsertPoint[][] = [];
    for (let i = 0; i < ROUNDS; i++) {
      batches.push((i < FEW ? SHARDS : ['a']).map((p) => ({ id: `${p}${String(i).padStart(4, '0')}`, vector: points.get(`${p}${String(i).padStart(4, '0')}`) as number[] })));
    }
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < batches.length) await coll.upsert(batches[next++] as UpsertPoint[]);
    }));
    assert.equal(await coll.count({ consistency: 'strong' }), ids.length);

    const record = (await (await MetadataStore.open(probe.nc, 'shoal')).getCollection('docs'))?.value as CollectionRecord;
    const dirOf = (shard: number): string => join(cluster.root, VICTIM, 'shards', groupOf(record, shard));
    const statusOf = (shard: number, node = VICTIM): Promise<ShardStatus> =>
      probe.request<ShardStatus>(probe.subjects.actor(node, replicaActorName(record.uid, shard)), { type: 'status' }, { timeoutMs: 2_000 });
    // shard 0's replica on the victim has written its first checkpoint
    const ckpt = (): string | undefined => readdirSync(dirOf(0)).find((n) => n.startsWith('ckpt-'));
    await cluster.waitFor(() => ckpt() !== undefined && existsSync(join(dirOf(0), ckpt() as string, 'sums.json')), `a checkpoint of shard 0 on ${VICTIM}`);
    // Every replica has applied every write before the victim stops: a follower behind (or one
    // that has not heard the last commit index) serves stale `eventual` reads until it catches
    // up, which is allowed and not what this test is about.
    await cluster.waitFor(async () => {
      for (const shard of [0, 1, 2]) {
        const leader = (await statusOf(shard)).leader;
        if (leader === null) throw new Error(`shard ${shard} has no leader`);
        const lead = await statusOf(shard, leader);
        for (const node of ['n1', 'n2', 'n3']) {
          const st = await statusOf(shard, node);
          if ((shard === 0 && st.appliedIndex < 1_024) || st.appliedIndex < lead.commitIndex) throw new Error(`${node}/${shard} applied ${st.appliedIndex} of ${lead.commitIndex}`);
        }
      }
      return true;
    }, 'every replica applied every write');

    await cluster.stopNode(VICTIM);
    // (a) 64 bytes in the middle of shard 0's HNSW graph file, its size unchanged
    const graph = join(dirOf(0), ckpt() as string, 'graph.hnsw');
    flip(graph, Math.floor(statSync(graph).size / 2), 64);
    // (b) one float of point b0007's vector (shard 1) in the LMDB data file, wherever its bytes are (stale page copies too)
    const mdb = join(cluster.root, VICTIM, 'lmdb', 'data.mdb');
    const at = find(mdb, vectorBytes('b0007'));
    assert.ok(at.length >= 1, 'the vector of b0007 is in data.mdb');
    for (const o of at) flip(mdb, o + 12, 1);
    const logFrom = cluster.nodes.get(VICTIM)?.log.length ?? 0;
    await cluster.startNode(VICTIM);

    // Reads through the cluster while the victim repairs: always every point, never the damaged vector.
    const reading = (async () => {
      let reads = 0;
      const until = Date.now() + 4_000;
      while (Date.now() < until) {
        const got = await coll.get(['a0001', 'b0007', 'c0003'], { consistency: 'eventual', withVector: true });
        assert.deepEqual(got.map((p) => p.id), ['a0001', 'b0007', 'c0003'], 'an eventual get finds every point');
        for (const p of got) assert.deepEqual(Array.from(p.vector ?? []), points.get(p.id), `the vector of ${p.id} as written`);
        const n = await coll.count({ consistency: 'eventual' });
        if (n !== ids.length) {
          // which replica answered short: every replica's health, applied index and count now
          const all = await Promise.all(['n1', 'n2', 'n3'].flatMap((node) => [0, 1, 2].map((shard) =>
            statusOf(shard, node).then((st) => `${node}/${shard}: ${st.health} ${st.role} applied ${st.appliedIndex} commit ${st.commitIndex} count ${st.count}`, (e: Error) => `${node}/${shard}: ${e.message}`))));
          assert.fail(`an eventual count gave ${n}, not ${ids.length}; replicas now: ${all.join('; ')}`);
        }
        reads++;
      }
      return reads;
    })();

    // The victim says what it found: in its log, naming shard, file and problem, and in each replica's status.
    const log = (): string => (cluster.nodes.get(VICTIM)?.log ?? []).slice(logFrom).join('');
    await cluster.waitFor(() => /replica data is damaged/.test(log()) && log().includes('graph.hnsw') && log().includes('data.mdb'), 'log lines naming the damaged files');
    const lines = log().split('\n').filter((l) => l.includes('replica data is damaged')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const graphLine = lines.find((l) => String(l['file']).endsWith('graph.hnsw'));
    assert.ok(graphLine, `a line names the graph file: ${JSON.stringify(lines)}`);
    assert.equal(graphLine['shard'], 0);
    assert.match(String(graphLine['problem']), /fails its checksum/);
    const pointLine = lines.find((l) => String(l['file']).endsWith('data.mdb'));
    assert.ok(pointLine, `a line names data.mdb: ${JSON.stringify(lines)}`);
    assert.equal(pointLine['shard'], 1);
    // the first damaged record met when it opened: the index journal entry that carries b0007 (shard 1 has no checkpoint), or the point itself
    assert.match(String(pointLine['problem']), /(point "b0007"|index journal entry \d+) of .* is damaged: its CRC-32/);

    // Rebuilt from the peers: both damaged replicas serve again, holding every point of their shard.
    await cluster.waitFor(async () => {
      const st = await Promise.all([0, 1].map((s) => statusOf(s)));
      // (the coordinator may hand it a leadership as soon as it votes again)
      if (st.every((x, i) => x.health === 'ok' && (x.role === 'follower' || x.role === 'leader') && x.appliedIndex >= (i === 0 ? 1_024 : FEW))) return true;
      throw new Error(st.map((x, i) => `shard ${i}: ${x.health} ${x.role} applied ${x.appliedIndex} commit ${x.commitIndex} last ${x.lastIndex}`).join('; '));
    }, `${VICTIM}'s damaged replicas rebuilt`, 30_000);
    const [s0, s1, s2] = await Promise.all([0, 1, 2].map((s) => statusOf(s)));
    assert.equal(s0?.damage?.file, graph, 'shard 0\'s status names the graph file');
    assert.equal(s1?.damage?.file, mdb, 'shard 1\'s status names data.mdb');
    assert.equal(s2?.health, 'ok');
    assert.equal(s2?.damage, null, 'shard 2 was never damaged');
    assert.ok(await reading > 0);

    // Straight to the victim's replicas: every id, its exact vector; the counts; a search like the leader's.
    for (const [shard, prefix] of SHARDS.entries()) {
      const mine = ids.filter((id) => id.startsWith(prefix));
      const subject = probe.subjects.actor(VICTIM, replicaActorName(record.uid, shard));
      const got = await probe.request<{ points: { id: string; vector?: Float32Array }[] }>(subject, { type: 'get', ids: mine, withVector: true, withMetadata: false, consistency: 'strong', timeoutMs: 10_000 }, { timeoutMs: 10_000 });
      assert.equal(got.points.length, mine.length, `shard ${shard} on ${VICTIM} holds all ${mine.length} points`);
      for (const p of got.points) assert.deepEqual(Array.from(p.vector ?? []), points.get(p.id), `vector of ${p.id} on ${VICTIM}`);
      const n = await probe.request<{ count: number }>(subject, { type: 'count', consistency: 'strong', timeoutMs: 5_000 }, { timeoutMs: 5_000 });
      assert.equal(n.count, mine.length);
      const q = { vector: Float32Array.from(points.get(`${prefix}0020`) as number[]), k: 10, withVector: false, withMetadata: false };
      const here = await probe.request<SearchResult>(subject, { type: 'search', queries: [q], consistency: 'strong', timeoutMs: 5_000 }, { timeoutMs: 5_000 });
      const leader = (await statusOf(shard)).leader ?? (await cluster.leaderOf(client, 'docs', shard));
      const there = await probe.request<SearchResult>(probe.subjects.actor(leader, replicaActorName(record.uid, shard)), { type: 'search', queries: [q], consistency: 'strong', timeoutMs: 5_000 }, { timeoutMs: 5_000 });
      assert.equal(here.results[0]?.[0]?.id, `${prefix}0020`, `a search on ${VICTIM}'s shard ${shard} finds the point itself first`);
      assert.deepEqual(here.results[0]?.map((h) => h.id), there.results[0]?.map((h) => h.id), `shard ${shard}: ${VICTIM} answers like the leader ${leader}`);
    }
  });

  it('corruption - a value damaged while the node runs is found by the read that meets it: refused, never served, and the replica rebuilt', async () => {
    const record = (await (await MetadataStore.open(probe.nc, 'shoal')).getCollection('docs'))?.value as CollectionRecord;
    const node = 'n3';
    const subject = probe.subjects.actor(node, replicaActorName(record.uid, 1));
    const get = (id: string): Promise<{ points: { id: string; vector?: Float32Array }[] }> =>
      probe.request(subject, { type: 'get', ids: [id], withVector: true, withMetadata: false, consistency: 'eventual', timeoutMs: 5_000 }, { timeoutMs: 5_000 });
    assert.deepEqual(Array.from((await get('b0010')).points[0]?.vector ?? []), points.get('b0010'));
    // behind the running node's back, into the pages LMDB has mapped
    const mdb = join(cluster.root, node, 'lmdb', 'data.mdb');
    const at = find(mdb, vectorBytes('b0010'));
    assert.ok(at.length >= 1, 'the vector of b0010 is in data.mdb');
    for (const o of at) flip(mdb, o + 4, 1);
    await assert.rejects(get('b0010'), (err: Error & { code?: string }) => err.code === 'UNAVAILABLE' && /point "b0010".*damaged/.test(err.message), 'the read that meets the damage is refused, naming the point');
    const coll = client.collection('docs');
    const got = await coll.get(['b0010'], { consistency: 'eventual', withVector: true });
    assert.deepEqual(Array.from(got[0]?.vector ?? []), points.get('b0010'), 'the cluster answers from another replica');
    await cluster.waitFor(async () => {
      const st = await probe.request<ShardStatus>(subject, { type: 'status' }, { timeoutMs: 2_000 });
      if (st.health === 'ok' && st.damage !== null && (await get('b0010')).points.length === 1) return true;
      throw new Error(`${st.health} ${st.role} applied ${st.appliedIndex} commit ${st.commitIndex} last ${st.lastIndex}`);
    }, `${node}'s replica of shard 1 rebuilt`, 30_000);
    const st = await probe.request<ShardStatus>(subject, { type: 'status' }, { timeoutMs: 2_000 });
    assert.equal(st.damage?.file, mdb);
    assert.deepEqual(Array.from((await get('b0010')).points[0]?.vector ?? []), points.get('b0010'), 'the rebuilt replica serves the vector as written');
    const n = await probe.request<{ count: number }>(subject, { type: 'count', consistency: 'strong', timeoutMs: 5_000 }, { timeoutMs: 5_000 });
    assert.equal(n.count, FEW);
  });

  it('corruption - a damaged replica of a one-replica shard has nobody to be rebuilt from: it is failed, serves nothing, keeps its data, and cluster.status names it', async () => {
    await client.createCollection({ name: 'solo', dim: DIM, metric: 'l2', shards: 1, replicas: 1 });
    const coll = client.collection('solo');
    await coll.upsert(['a0001', 'a0002', 'a0003'].map((id) => ({ id, vector: points.get(id) as number[] })));
    const record = (await (await MetadataStore.open(probe.nc, 'shoal')).getCollection('solo'))?.value as CollectionRecord;
    const node = record.placement[0]?.replicas[0] as string;
    await cluster.stopNode(node);
    const mdb = join(cluster.root, node, 'lmdb', 'data.mdb');
    // docs holds a0002 too: flip only solo's copy, the occurrence whose record key names solo's group
    const group = groupOf(record, 0);
    const data = readFileSync(mdb);
    const at = find(mdb, vectorBytes('a0002')).filter((o) => data.subarray(Math.max(0, o - 200), o).includes(Buffer.from(group)));
    assert.ok(at.length >= 1, `solo's copy of a0002 is in ${node}'s data.mdb`);
    for (const o of at) flip(mdb, o + 8, 1);
    await cluster.startNode(node);
    await cluster.waitFor(async () => {
      const st = await client.clusterStatus(2_000);
      const d = st.nodes.find((x) => x.id === node)?.damaged ?? [];
      // the first damaged record met: the index journal entry that carries a0002 (no checkpoint yet), or its point
      return d.some((x) => x.collection === 'solo' && x.shard === 0 && x.health === 'failed' && x.file === mdb && /(point "a0002"|index journal entry \d+) of .* is damaged/.test(x.problem));
    }, `cluster.status names ${node}'s damaged replica of solo`);
    // nothing answers for the shard (the router retries until the deadline), and the replica itself refuses, naming the file
    await assert.rejects(coll.count({ consistency: 'eventual', timeoutMs: 1_500 }), (err: Error & { code?: string }) => ['UNAVAILABLE', 'TIMEOUT'].includes(err.code ?? ''));
    const replica = probe.subjects.actor(node, replicaActorName(record.uid, 0));
    await assert.rejects(probe.request(replica, { type: 'get', ids: ['a0001'], withVector: true, withMetadata: false, consistency: 'eventual', timeoutMs: 2_000 }, { timeoutMs: 2_000 }),
      (err: Error & { code?: string }) => err.code === 'UNAVAILABLE' && /serves no reads: its replica is failed .*no other replica.*data\.mdb/.test(err.message));
    const st = await probe.request<ShardStatus>(replica, { type: 'status' }, { timeoutMs: 2_000 });
    assert.equal(st.health, 'failed');
    assert.equal(st.damage?.file, mdb);
    // nothing was deleted: the node's LMDB still holds solo's three points
    await cluster.stopNode(node);
    const env = openNodeEnv({ path: join(cluster.root, node, 'lmdb') });
    try {
      assert.deepEqual([...new PointsStore(env).ids(group)], ['a0001', 'a0002', 'a0003']);
    } finally {
      await env.close();
    }
  });
});
