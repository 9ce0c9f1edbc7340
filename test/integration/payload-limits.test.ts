/**
 * Byte limits end to end, against a nats-server with the default 1 MiB max payload: the client
 * splits gets, searches and upserts too large for one message and merges their replies; one raw
 * request of the same size gets the data or PAYLOAD_TOO_LARGE with what to do, never INTERNAL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import type { ShoalClient } from '../../src/client/client.js';
import { decodeCbor, encodeCbor } from '../../src/runtime/codec.js';
import { TestCluster } from '../helpers/cluster.js';

const DIM = 1536;
const N = 200;
const ids = Array.from({ length: N }, (_, i) => `w${i}`);

/** Point i's vector; `gen` tells apart versions of the same point. */
function vectorOf(i: number, gen = 0): Float32Array {
  return Float32Array.from({ length: DIM }, (_, d) => Math.sin(i * 12.9898 + d * 0.731 + gen) / 4);
}

let cluster: TestCluster;
let json: ShoalClient;
let cbor: ShoalClient;
let nc: NatsConnection;

before(async () => {
  cluster = await TestCluster.start({ nodes: 2 });
  json = await cluster.client();
  cbor = await cluster.client({ encoding: 'cbor' });
  nc = await connect({ servers: cluster.nats.url });
  await json.createCollection({ name: 'wide', dim: DIM, metric: 'l2', shards: 2, replicas: 1 });
});

after(async () => {
  await nc?.close();
  await cluster?.stop();
});

type Outcome = { data: Record<string, unknown> } | { error: { code: string; message: string }; status: string };

/** One NATS request, as any client would make it: no splitting. */
async function raw(subject: string, body: unknown, encoding: 'json' | 'cbor'): Promise<Outcome> {
  const h = headers();
  if (encoding === 'cbor') h.set('Content-Type', 'application/cbor');
  const data = encoding === 'cbor' ? encodeCbor(body) : new TextEncoder().encode(JSON.stringify(body));
  const res = await nc.request(subject, data, { timeout: 15_000, headers: h });
  const decoded = (encoding === 'cbor' ? decodeCbor(res.data) : JSON.parse(new TextDecoder().decode(res.data))) as Record<string, unknown>;
  const error = decoded['error'] as { code: string; message: string } | undefined;
  return error ? { error, status: res.headers?.get('Nats-Service-Error-Code') ?? '' } : { data: decoded };
}

function assertSameVector(got: ArrayLike<number> | undefined, want: Float32Array, what: string): void {
  assert.ok(got, `${what} has a vector`);
  assert.equal(got.length, want.length, what);
  for (let d = 0; d < want.length; d++) if (Math.fround(got[d] as number) !== want[d]) assert.fail(`${what}[${d}] is ${got[d]}, want ${want[d]}`);
}

describe('payload limits', () => {
  it('payload - the test server has the default max payload, and the client knows it', () => {
    assert.equal(nc.info?.max_payload, 1024 * 1024);
    assert.equal(json.maxPayload, 1024 * 1024);
  });

  it('payload - an upsert too large for one message is split, each part applied once: a retry with its requestId overwrites nothing newer', async () => {
    const points = ids.map((id, i) => ({ id, vector: Array.from(vectorOf(i)), metadata: { i } }));
    // 200 points of 1,536 numbers in JSON: about 6 MB, six requests or more
    assert.equal(await json.collection('wide').upsert(points, { requestId: 'load-1' }), N);
    await json.collection('wide').upsert([{ id: 'w0', vector: vectorOf(0, 1), metadata: { i: 0, gen: 1 } }]);
    assert.equal(await json.collection('wide').upsert(points, { requestId: 'load-1' }), N, 'the retry answers as the first time');
    const [w0] = await cbor.collection('wide').get(['w0'], { consistency: 'strong' });
    assert.deepEqual(w0?.metadata, { i: 0, gen: 1 }, 'the retry did not apply again over the newer w0');
    assertSameVector(w0?.vector, vectorOf(0, 1), 'w0');
    assert.equal(await json.collection('wide').count({ consistency: 'strong' }), N);
  });

  for (const encoding of ['json', 'cbor'] as const) {
    it(`payload - get of ${N} points of ${DIM} dimensions in ${encoding}: the client splits it; one raw request gets PAYLOAD_TOO_LARGE with what to do`, async () => {
      const client = encoding === 'json' ? json : cbor;
      const asked = [...ids].reverse().concat(['missing', 'w5']);
      const points = await client.collection('wide').get(asked, { consistency: 'strong' });
      assert.deepEqual(points.map((p) => p.id), [...ids].reverse(), 'request order, missing ids left out, a repeated id once');
      for (const p of points) {
        const i = Number(p.id.slice(1));
        assertSameVector(p.vector, vectorOf(i, p.id === 'w0' ? 1 : 0), p.id);
        assert.equal((p.metadata as { i: number }).i, i);
      }
      const r = await raw('shoal.v1.wide.get', { ids, withVector: true, consistency: 'strong' }, encoding);
      assert.ok('error' in r, `${N} × ${DIM} dimensions do not fit 1 MiB in ${encoding}`);
      assert.equal(r.error.code, 'PAYLOAD_TOO_LARGE', r.error.message);
      assert.equal(r.status, '413');
      assert.match(r.error.message, /max payload.*fewer ids.*withVector false.*CBOR/);
    });

    it(`payload - search with k 100 and vectors in ${encoding}: the client gets every hit with its vector; one raw request gets the hits or PAYLOAD_TOO_LARGE, never INTERNAL`, async () => {
      const client = encoding === 'json' ? json : cbor;
      const query = vectorOf(3);
      const thin = await client.collection('wide').search(query, { k: 100, consistency: 'strong', withMetadata: false });
      const full = await client.collection('wide').search(query, { k: 100, consistency: 'strong', withVector: true });
      assert.equal(full.hits.length, 100);
      assert.deepEqual(full.hits.map((h) => [h.id, h.distance]), thin.hits.map((h) => [h.id, h.distance]), 'the same hits, in the same order');
      assert.equal(full.hits[0]?.id, 'w3');
      assert.deepEqual(full.coverage, { shards: 2, answered: 2, failed: [] });
      for (const h of full.hits) {
        const i = Number(h.id.slice(1));
        assertSameVector(h.vector, vectorOf(i, h.id === 'w0' ? 1 : 0), h.id);
        assert.equal((h.metadata as { i: number }).i, i);
      }
      const r = await raw('shoal.v1.wide.search', { vector: Array.from(query), k: 100, withVector: true, consistency: 'strong' }, encoding);
      if ('error' in r) {
        assert.equal(r.error.code, 'PAYLOAD_TOO_LARGE', r.error.message);
        assert.match(r.error.message, /max payload.*smaller k.*withVector false/);
      } else {
        assert.deepEqual((r.data['hits'] as { id: string }[]).map((h) => h.id), thin.hits.map((h) => h.id));
      }
      // 100 vectors take ~600 KB in CBOR and ~2 MB in JSON: the raw CBOR request fits, the JSON one does not
      assert.equal('error' in r, encoding === 'json');
    });
  }

  it('payload - a delete of more ids than one request may carry is split by count too', async () => {
    const asked = ['w198', 'w199', ...Array.from({ length: 12_000 }, (_, i) => `gone-${i}`), 'w199'];
    assert.equal(await cbor.collection('wide').delete(asked, { requestId: 'del-1' }), 2);
    assert.equal(await cbor.collection('wide').count({ consistency: 'strong' }), N - 2);
  });
});
