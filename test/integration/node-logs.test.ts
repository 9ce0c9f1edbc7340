/**
 * A real node's logs: every line on its standard error is JSON with a level, a time and the
 * node's id, and an upsert sent with a W3C `traceparent` leaves lines, on the router's node and
 * on each shard leader's, carrying that trace id and the request's id (the client's, or the id
 * the router gave it). Two nodes, one shard led by each, so the write crosses processes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import type { ShoalClient } from '../../src/client/client.js';
import { TestCluster, leaderOf } from '../helpers/cluster.js';

let cluster: TestCluster;
let client: ShoalClient;
let nc: NatsConnection;

before(async () => {
  cluster = await TestCluster.start({ nodes: 2, env: { SHOAL_LOG_LEVEL: 'debug' } });
  client = await cluster.client();
  nc = await connect({ servers: cluster.nats.url });
  await client.createCollection({ name: 'docs', dim: 2, metric: 'l2', shards: 2, replicas: 1 });
});

after(async () => {
  await nc?.close();
  await cluster?.stop();
});

type Line = Record<string, unknown>;

/** Every line node `id` wrote on standard error so far, each parsed (a line that is not JSON fails the test). */
function linesOf(id: string): Line[] {
  const text = (cluster.nodes.get(id)?.log ?? []).join('');
  return text.split('\n').filter((l) => l !== '').map((l) => {
    try {
      return JSON.parse(l) as Line;
    } catch {
      throw new Error(`node ${id} wrote a line that is not JSON: ${l}`);
    }
  });
}

/** An upsert of 20 points, as any NATS client would send it, in trace `traceId`. */
async function tracedUpsert(traceId: string, requestId?: string): Promise<void> {
  const h = headers();
  h.set('traceparent', `00-${traceId}-${randomBytes(8).toString('hex')}-01`);
  const points = Array.from({ length: 20 }, (_, i) => ({ id: `p${i}`, vector: [i, 1] }));
  const res = await nc.request('shoal.v1.docs.upsert', JSON.stringify({ points, ...(requestId ? { requestId } : {}) }), { timeout: 10_000, headers: h });
  assert.deepEqual(JSON.parse(new TextDecoder().decode(res.data)), { upserted: 20 });
}

function linesOfTrace(traceId: string): Line[] {
  return ['n1', 'n2'].flatMap((id) => linesOf(id)).filter((l) => l['trace_id'] === traceId);
}

describe('node logs', () => {
  it('logs - every line a node writes is JSON with a level label, an ISO time, a message and the node id', async () => {
    for (const id of ['n1', 'n2']) {
      const lines = linesOf(id);
      assert.ok(lines.some((l) => l['msg'] === 'node ready' && l['level'] === 'info'), `node ${id} logged "node ready": ${JSON.stringify(lines.slice(0, 5))}`);
      for (const l of lines) {
        assert.equal(l['node'], id, `a line of ${id} names it: ${JSON.stringify(l)}`);
        assert.ok(['debug', 'info', 'warn', 'error'].includes(String(l['level'])), `a level label: ${JSON.stringify(l)}`);
        assert.ok(!Number.isNaN(Date.parse(String(l['time']))), `an ISO time: ${JSON.stringify(l)}`);
        assert.equal(typeof l['msg'], 'string');
      }
    }
  });

  it('logs - an upsert in a trace leaves lines on the router and on both shard leaders with its trace id and request id', async () => {
    const leaders = [await leaderOf(client, 'docs', 0), await leaderOf(client, 'docs', 1)];
    assert.notEqual(leaders[0], leaders[1], `one shard led by each node, so that the write crosses processes: ${leaders.join(', ')}`);

    const traceId = randomBytes(16).toString('hex');
    await tracedUpsert(traceId, 'client-req-7');
    await cluster.waitFor(() => linesOfTrace(traceId).filter((l) => l['msg'] === 'write').length === 2, 'a write line from each shard leader');
    const lines = linesOfTrace(traceId);
    const writes = lines.filter((l) => l['msg'] === 'write');
    assert.deepEqual(writes.map((l) => l['node']).sort(), ['n1', 'n2'], 'each node logged its shard\'s write');
    for (const w of writes) {
      assert.equal(w['request_id'], 'client-req-7', `the client's requestId: ${JSON.stringify(w)}`);
      assert.match(String(w['span_id']), /^[0-9a-f]{16}$/);
      assert.equal(w['op'], 'upsert');
      assert.equal(w['collection'], 'docs');
    }
    const routed = lines.filter((l) => l['msg'] === 'request');
    assert.equal(routed.length, 1, `one router line: ${JSON.stringify(lines)}`);
    assert.equal(routed[0]?.['request_id'], 'client-req-7');
    assert.equal(routed[0]?.['op'], 'upsert');
  });

  it('logs - without a client requestId the lines carry the id the router gave the write, the same on both nodes', async () => {
    const traceId = randomBytes(16).toString('hex');
    await tracedUpsert(traceId);
    await cluster.waitFor(() => linesOfTrace(traceId).filter((l) => l['msg'] === 'write').length === 2, 'a write line from each shard leader');
    const writes = linesOfTrace(traceId).filter((l) => l['msg'] === 'write');
    const ids = new Set(writes.map((l) => l['request_id']));
    assert.equal(ids.size, 1, `one id: ${[...ids].join(', ')}`);
    assert.match(String([...ids][0]), /^auto-[0-9a-f-]{36}$/);
  });

  it('logs - lines logged outside a request carry no trace, span or request id', () => {
    const ready = ['n1', 'n2'].flatMap((id) => linesOf(id)).filter((l) => l['msg'] === 'node ready' || l['msg'] === 'replica started');
    assert.ok(ready.length >= 3, `node ready and replica started lines: ${ready.length}`);
    for (const l of ready) {
      assert.equal('trace_id' in l || 'span_id' in l || 'request_id' in l, false, JSON.stringify(l));
    }
  });
});
