/**
 * The public protocol end to end on a real three-node cluster: JSON and CBOR, every error code
 * provoked on purpose with its headers, micro service discovery, and the Python example client.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Svcm } from '@nats-io/services';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import type { ShoalClient } from '../../src/client/client.js';
import { decodeCbor, encodeCbor } from '../../src/runtime/codec.js';
import { TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
let json: ShoalClient;
let cbor: ShoalClient;
let nc: NatsConnection;

before(async () => {
  cluster = await TestCluster.start({ nodes: 3, env: { SHOAL_FAULTS: 'internal,shard-internal' } });
  json = await cluster.client();
  cbor = await cluster.client({ encoding: 'cbor' });
  nc = await connect({ servers: cluster.nats.url });
  await json.createCollection({ name: 'docs', dim: 3, metric: 'l2', shards: 2 });
});

after(async () => {
  await nc?.close();
  await cluster?.stop();
});

interface RawReply {
  body: Record<string, unknown>;
  code: string;
  message: string;
}

/** A raw request, as any NATS client would make it. */
async function raw(subject: string, body: unknown, encoding: 'json' | 'cbor' = 'json', bytes?: Uint8Array): Promise<RawReply> {
  const h = headers();
  if (encoding === 'cbor') h.set('Content-Type', 'application/cbor');
  const data = bytes ?? (encoding === 'cbor' ? encodeCbor(body) : new TextEncoder().encode(JSON.stringify(body)));
  const res = await nc.request(subject, data, { timeout: 10_000, headers: h });
  const decoded = (encoding === 'cbor' ? decodeCbor(res.data) : JSON.parse(new TextDecoder().decode(res.data))) as Record<string, unknown>;
  return { body: decoded, code: res.headers?.get('Nats-Service-Error-Code') ?? '', message: res.headers?.get('Nats-Service-Error') ?? '' };
}

async function expectError(subject: string, body: unknown, code: string, status: string, message: RegExp, encoding: 'json' | 'cbor' = 'json', bytes?: Uint8Array): Promise<void> {
  const r = await raw(subject, body, encoding, bytes);
  const err = r.body['error'] as { code: string; message: string } | undefined;
  assert.ok(err, `expected an error reply, got ${JSON.stringify(r.body)}`);
  assert.equal(err.code, code);
  assert.match(err.message, message);
  assert.equal(r.code, status, 'Nats-Service-Error-Code header');
  assert.equal(r.message, err.message, 'Nats-Service-Error header carries the message');
}

describe('cluster protocol', () => {
  it('protocol - upsert, get, search, search-batch, count and delete in JSON', async () => {
    const docs = json.collection('docs');
    assert.equal(await docs.upsert([
      { id: 'a', vector: [1, 0, 0], metadata: { tag: 'x' } },
      { id: 'b', vector: [0, 1, 0], metadata: { tag: 'y' } },
      { id: 'c', vector: [0, 0, 1] },
      { id: 'a', vector: [2, 0, 0], metadata: { tag: 'x2' } },
    ]), 3, 'a repeated id counts once; the last one wins');
    const got = await docs.get(['c', 'a', 'zz', 'a'], { consistency: 'strong' });
    assert.deepEqual(got.map((p) => p.id), ['c', 'a']);
    assert.deepEqual(got[1]?.vector, [2, 0, 0]);
    assert.deepEqual(got[1]?.metadata, { tag: 'x2' });
    const s = await docs.search([2, 0, 0.5], { k: 2, consistency: 'strong' });
    assert.deepEqual(s.hits.map((h) => h.id), ['a', 'c']);
    assert.ok(Math.abs((s.hits[0]?.distance ?? -1) - 0.25) < 1e-6, 'l2 is the squared distance');
    assert.deepEqual(s.coverage, { shards: 2, answered: 2, failed: [] });
    assert.equal(s.partial, false);
    const filtered = await docs.search([2, 0, 0.5], { k: 3, filter: { tag: 'y' } });
    assert.deepEqual(filtered.hits.map((h) => h.id), ['b']);
    const batch = await docs.searchBatch([{ vector: [0, 1, 0], k: 1 }, { vector: [0, 0, 1], k: 1, withVector: true }]);
    assert.deepEqual(batch.map((r) => r.hits[0]?.id), ['b', 'c']);
    assert.deepEqual(batch[1]?.hits[0]?.vector, [0, 0, 1]);
    assert.equal(await docs.count({ consistency: 'strong' }), 3);
    assert.equal(await docs.delete(['b', 'nope']), 1, 'deleted counts the ids that existed');
    assert.equal(await docs.count({ consistency: 'strong' }), 2);
    assert.deepEqual((await raw('shoal.v1.docs.upsert', { points: [] })).body, { upserted: 0 });
    assert.deepEqual((await raw('shoal.v1.docs.get', {})).body, { points: [] });
  });

  it('protocol - write concerns: all (every replica applied), leader (durable on the leader), majority', async () => {
    await json.createCollection({ name: 'concerns', dim: 2, metric: 'l2', shards: 1, replicas: 3 });
    const coll = json.collection('concerns');
    const replicas = (await json.describeCollection('concerns')).shards[0]?.replicas.map((r) => r.node) ?? [];
    assert.equal(replicas.length, 3);
    // `all`: once answered, every replica has applied it, so every replica's own read shows it
    assert.equal(await coll.upsert([{ id: 'w-all', vector: [1, 2] }], { writeConcern: 'all' }), 1);
    for (let i = 0; i < 12; i++) {
      const [p] = await coll.get(['w-all'], { consistency: 'eventual' });
      assert.deepEqual(p?.vector, [1, 2], 'an eventual read on any replica sees a write acknowledged with concern all');
    }
    // `leader`: answered once durable on the leader; committed shortly after
    assert.equal(await coll.upsert([{ id: 'w-leader', vector: [3, 4] }, { id: 'w-leader2', vector: [5, 6] }], { writeConcern: 'leader' }), 2);
    await cluster.waitFor(async () => (await coll.get(['w-leader', 'w-leader2'], { consistency: 'strong' })).length === 2, 'leader-concern write committed');
    assert.equal(await coll.delete(['w-leader', 'nope'], { writeConcern: 'leader' }), 2, 'with concern leader, deleted counts the ids asked');
    assert.equal(await coll.upsert([{ id: 'w-maj', vector: [7, 8] }], { writeConcern: 'majority' }), 1);
    assert.equal((await coll.get(['w-maj'], { consistency: 'strong' })).length, 1, 'majority: a strong read right after sees it');
  });

  it('protocol - CBOR both ways: typed float32 vectors in and out', async () => {
    const docs = cbor.collection('docs');
    assert.equal(await docs.upsert([{ id: 'f32', vector: new Float32Array([0.5, 0.25, 0]) }]), 1);
    const [p] = await docs.get(['f32'], { consistency: 'strong' });
    assert.ok(p?.vector instanceof Float32Array, 'a CBOR reply carries a Float32Array (tag 85)');
    assert.deepEqual([...(p?.vector as Float32Array)], [0.5, 0.25, 0]);
    const r = await raw('shoal.v1.docs.search', { vector: new Float32Array([0.5, 0.25, 0]), k: 1, withVector: true, consistency: 'strong' }, 'cbor');
    const hits = r.body['hits'] as { id: string; vector: Float32Array }[];
    assert.equal(hits[0]?.id, 'f32');
    assert.ok(hits[0]?.vector instanceof Float32Array);
  });

  it('protocol - a reply over the NATS server\'s max payload is PAYLOAD_TOO_LARGE with what to do, in JSON and CBOR, never INTERNAL', async () => {
    await json.createCollection({ name: 'big-vectors', dim: 1536, metric: 'l2', shards: 2, replicas: 1 });
    const big = cbor.collection('big-vectors');
    const ids = Array.from({ length: 200 }, (_, i) => `w${i}`);
    for (let b = 0; b < ids.length; b += 25) {
      await big.upsert(ids.slice(b, b + 25).map((id, j) => ({ id, vector: Float32Array.from({ length: 1536 }, (_, d) => ((b + j + d) % 13) / 7) })));
    }
    for (const encoding of ['json', 'cbor'] as const) {
      await expectError('shoal.v1.big-vectors.get', { ids, withVector: true, consistency: 'strong' }, 'PAYLOAD_TOO_LARGE', '413', /max payload.*fewer ids.*CBOR/, encoding);
      await expectError('shoal.v1.big-vectors.search', { vector: Array.from({ length: 1536 }, () => 1), k: 200, withVector: true, consistency: 'strong' }, 'PAYLOAD_TOO_LARGE', '413', /max payload.*smaller k/, encoding);
    }
    // Without the vectors it fits.
    const r = await raw('shoal.v1.big-vectors.get', { ids, withVector: false, consistency: 'strong' });
    assert.equal((r.body['points'] as unknown[]).length, 200);
    await json.dropCollection('big-vectors');
  });

  it('protocol - every error code, with its status and message headers', async () => {
    await expectError('shoal.v1.docs.upsert', { points: [{ id: 'x', vector: [1, 2] }] }, 'INVALID_ARGUMENT', '400', /points\[0\].vector has 2 dimensions; the collection has 3/);
    await expectError('shoal.v1.docs.search', null, 'INVALID_ARGUMENT', '400', /not valid JSON/, 'json', new TextEncoder().encode('{"vector": [1,'));
    await expectError('shoal.v1.docs.search', null, 'INVALID_ARGUMENT', '400', /not valid CBOR/, 'cbor', Uint8Array.from([0xff, 0xfe]));
    await expectError('shoal.v1.docs.search', { vector: [1, 0, 0], filter: { tag: { $regex: 'x' } } }, 'INVALID_ARGUMENT', '400', /filter\.tag\.\$regex/);
    await expectError('shoal.v1.docs.search', { vector: [1, 0, 0], k: 0 }, 'INVALID_ARGUMENT', '400', /k must be 1 to 1000, got 0/);
    await expectError('shoal.v1.nope.search', { vector: [1, 0, 0] }, 'NOT_FOUND', '404', /collection 'nope' does not exist/);
    await expectError('shoal.v1._reserved.count', {}, 'NOT_FOUND', '404', /does not exist/);
    await expectError('shoal.v1.admin.collections.describe', { name: 'nope' }, 'NOT_FOUND', '404', /collection 'nope' does not exist/);
    await expectError('shoal.v1.admin.collections.create', { name: 'docs', dim: 4 }, 'ALREADY_EXISTS', '409', /exists with different settings: dim 3 \(asked 4\)/);
    await expectError('shoal.v1.docs.get', { ids: Array.from({ length: 10_001 }, (_, i) => `${i}`) }, 'PAYLOAD_TOO_LARGE', '413', /ids has 10001 items; the limit is 10000/);
    await expectError('shoal.v1.admin.collections.create', { name: 'wide', dim: 3, replicas: 5 }, 'UNAVAILABLE', '503', /replicas 5 needs 5 nodes up; 3 are up \(n1, n2, n3\)/);
    await expectError('shoal.v1.docs.search', { vector: [1, 0, 0], timeoutMs: 1 }, 'TIMEOUT', '504', /deadline/);
    await json.createCollection({ name: 'fault-internal', dim: 3, replicas: 1 });
    await expectError('shoal.v1.fault-internal.search', { vector: [1, 0, 0] }, 'INTERNAL', '500', /injected fault/);
  });

  it('protocol - a bug on one shard makes a search INTERNAL, not a partial result with that shard UNAVAILABLE', async () => {
    // with SHOAL_FAULTS=shard-internal, shard 0 of 'fault-shard' fails every search as a bug would; shard 1 is fine
    const coll = json.collection('fault-shard');
    await json.createCollection({ name: 'fault-shard', dim: 3, metric: 'l2', shards: 2 });
    await coll.upsert(Array.from({ length: 20 }, (_, i) => ({ id: `p${i}`, vector: [i, 0, 0] })));
    for (const consistency of ['strong', 'eventual']) {
      await expectError('shoal.v1.fault-shard.search', { vector: [1, 0, 0], consistency }, 'INTERNAL', '500', /shard 0 of 'fault-shard'.*injected fault/);
    }
    const batch = await raw('shoal.v1.fault-shard.search-batch', { queries: [{ vector: [1, 0, 0] }] });
    assert.equal((batch.body['error'] as { code?: string } | undefined)?.code, 'INTERNAL', JSON.stringify(batch.body));
    assert.equal(await coll.count({ consistency: 'strong' }), 20, 'the shard itself is up');
  });

  it('protocol - create is idempotent with the same settings; drop removes the collection and its data', async () => {
    const again = await json.createCollection({ name: 'docs', dim: 3, metric: 'l2', shards: 2 });
    assert.equal(again.shards.length, 2);
    await json.createCollection({ name: 'temp', dim: 2, metric: 'l2', replicas: 2 });
    await json.collection('temp').upsert([{ id: 'p', vector: [1, 1] }]);
    assert.equal(await json.dropCollection('temp'), true);
    await assert.rejects(json.collection('temp').count(), /does not exist/);
    // same name, new collection: empty
    await json.createCollection({ name: 'temp', dim: 2, metric: 'l2', replicas: 2 });
    assert.equal(await json.collection('temp').count({ consistency: 'strong' }), 0);
    const list = await json.listCollections();
    assert.deepEqual(list.map((c) => c.name).sort(), ['concerns', 'docs', 'fault-internal', 'fault-shard', 'temp']);
    const d = await json.describeCollection('docs');
    assert.equal(d.shards.length, 2);
    for (const s of d.shards) {
      assert.ok(s.leader, `shard ${s.shard} has a leader`);
      assert.deepEqual(s.replicas.map((r) => r.role).sort(), ['follower', 'follower', 'leader']);
    }
  });

  it('protocol - discoverable as the NATS micro service shoal, one instance per node, with per-endpoint stats', async () => {
    const client = new Svcm(nc).client({ strategy: 'timer', maxWait: 1_000 });
    const infos = [];
    for await (const i of await client.info('shoal')) infos.push(i);
    assert.equal(infos.length, 3);
    assert.ok(infos[0]?.endpoints.some((e) => e.subject === 'shoal.v1.*.search' && e.queue_group === 'shoal-routers'));
    let searches = 0;
    for await (const st of await client.stats('shoal')) searches += st.endpoints?.find((e) => e.name === 'search')?.num_requests ?? 0;
    assert.ok(searches >= 8, `search requests counted across routers: ${searches}`);
  });

  it('protocol - the Python example (standard library only) speaks to the cluster', () => {
    const script = new URL('../../../examples/python/shoal_request.py', import.meta.url).pathname;
    const out = execFileSync('python3', [script, cluster.nats.url, 'shoal.v1.docs.search', JSON.stringify({ vector: [2, 0, 0], k: 1, consistency: 'strong' })], { encoding: 'utf8' });
    assert.equal((JSON.parse(out) as { hits: { id: string }[] }).hits[0]?.id, 'a');
    let failed: { status: number; stdout: string; stderr: string } | undefined;
    try {
      execFileSync('python3', [script, cluster.nats.url, 'shoal.v1.docs.search', JSON.stringify({ vector: [1] })], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      failed = err as { status: number; stdout: string; stderr: string };
    }
    assert.equal(failed?.status, 1);
    assert.match(failed?.stdout ?? '', /INVALID_ARGUMENT/);
    assert.match(failed?.stderr ?? '', /status 400: vector has 1 dimensions/);
  });
  it('placement - with writes from the first moment, leaderships end up spread: no node leads two more shards than another', async () => {
    await json.createCollection({ name: 'spread', dim: 4, metric: 'l2', shards: 3, replicas: 3 });
    const coll = json.collection('spread');
    // Writes while the groups elect: a new leader's followers are often a few entries behind it.
    const end = Date.now() + 3_000;
    let n = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < end) {
          const base = n;
          n += 20;
          await coll.upsert(Array.from({ length: 20 }, (_, i) => ({ id: `s${base + i}`, vector: [base + i, 1, 2, 3] })));
        }
      }),
    );
    await cluster.waitFor(async () => {
      const d = await json.describeCollection('spread');
      if (d.shards.some((s) => s.leader === null)) return false;
      const leads = (await json.clusterStatus()).nodes.map((x) => x.leaders);
      return Math.max(...leads) - Math.min(...leads) <= 1;
    }, 'leaderships spread over the nodes (the coordinator evens them out)', 40_000);
    assert.equal(await coll.count({ consistency: 'strong' }), n);
  });
});
