/**
 * A write's whole life in one trace, across three node processes: one upsert made inside a
 * client span gives router → shard leader → raft.propose → raft.append (with raft.flush) on
 * each follower → raft.commit → raft.apply on every replica, all in the client's trace with the
 * right parents. And an idle cluster writes no span of its own: heartbeats, ticks and lease
 * renewals start no trace, and no span name carries an id.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { ShoalClient } from '../../src/client/client.js';
import type { SpanRecord } from '../../src/cli/telemetry.js';
import { TestCluster } from '../helpers/cluster.js';

const NODES = ['n1', 'n2', 'n3'];
const exporter = new InMemorySpanExporter();
let cluster: TestCluster;
let client: ShoalClient;
let dir: string;

const fileOf = (node: string): string => join(dir, `${node}-spans.jsonl`);

/** Every span the node processes wrote so far. */
function nodeSpans(): SpanRecord[] {
  const out: SpanRecord[] = [];
  for (const n of NODES) {
    if (!existsSync(fileOf(n))) continue;
    for (const line of readFileSync(fileOf(n), 'utf8').split('\n')) if (line.trim()) out.push(JSON.parse(line) as SpanRecord);
  }
  return out;
}

const show = (spans: SpanRecord[]): string => spans.map((s) => `${String(s.attributes['shoal.node'] ?? s.service)}:${s.name}(${s.spanId}<-${s.parentSpanId ?? '-'})`).join(', ');

before(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  dir = mkdtempSync(join(tmpdir(), 'shoal-trace-tree-'));
  cluster = await TestCluster.start({ nodes: 3, nodeEnv: Object.fromEntries(NODES.map((n) => [n, { SHOAL_TRACE_FILE: fileOf(n) }])) });
  // No second copy of a slow request: the trace must hold exactly one router span.
  client = await cluster.client({ timeoutMs: 15_000, hedgeAfterMs: 0 });
});

after(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('trace tree', () => {
  it('tracing - one upsert on 3 replicas is one trace: router, leader, propose, append and flush on each follower, commit, apply on all three', async () => {
    await client.createCollection({ name: 'traced', dim: 4, metric: 'l2', shards: 1, replicas: 3 });
    const desc = await client.describeCollection('traced');
    const replicas = desc.shards[0]?.replicas.map((r) => r.node) ?? [];
    assert.deepEqual([...replicas].sort(), NODES, 'the shard has a replica on every node');
    const leader = await cluster.leaderOf(client, 'traced', 0);
    const followers = NODES.filter((n) => n !== leader);

    const tracer = trace.getTracer('test');
    let traceId = '';
    let clientSpanId = '';
    await tracer.startActiveSpan('client upsert', async (span) => {
      traceId = span.spanContext().traceId;
      clientSpanId = span.spanContext().spanId;
      try {
        assert.equal(await client.collection('traced').upsert([{ id: 'a', vector: [1, 2, 3, 4] }]), 1);
      } finally {
        span.end();
      }
    });

    // The followers apply once they hear of the commit, a little after the client's answer.
    const ofTrace = (): SpanRecord[] => nodeSpans().filter((s) => s.traceId === traceId);
    const byName = (spans: SpanRecord[], name: string, node?: string): SpanRecord[] => spans.filter((s) => s.name === name && (node === undefined || s.attributes['shoal.node'] === node));
    await cluster.waitFor(() => byName(ofTrace(), 'raft.apply').length >= 3, 'raft.apply on all three replicas', 10_000).catch((err: unknown) => {
      throw new Error(`${String(err)}; the trace holds: ${show(ofTrace())}`);
    });
    const spans = ofTrace();
    const one = (name: string, node: string | undefined, parent: SpanRecord | string, what: string): SpanRecord => {
      const found = byName(spans, name, node);
      assert.equal(found.length, 1, `${what}: one ${name}${node ? ` on ${node}` : ''}; the trace holds: ${show(spans)}`);
      const s = found[0] as SpanRecord;
      const parentId = typeof parent === 'string' ? parent : parent.spanId;
      assert.equal(s.parentSpanId, parentId, `${what}: ${name} is a child of ${typeof parent === 'string' ? 'the client span' : parent.name}; the trace holds: ${show(spans)}`);
      return s;
    };

    const router = one('shoal.upsert', undefined, clientSpanId, 'the router');
    assert.equal(router.attributes['shoal.collection'], 'traced');
    assert.equal(router.attributes['messaging.system'], 'nats');
    const write = one('shard.write', leader, router, 'the shard leader');
    assert.equal(write.attributes['shoal.shard'], 0);
    assert.equal(write.attributes['shoal.collection'], 'traced');
    const propose = one('raft.propose', leader, write, 'the proposal');
    const index = propose.attributes['shoal.raft.index'];
    assert.ok(typeof index === 'number' && index > 0, 'the proposal names its raft index');
    assert.ok(typeof propose.attributes['shoal.raft.term'] === 'number' && (propose.attributes['shoal.raft.term'] as number) > 0, 'and its term');
    one('raft.flush', leader, propose, "the leader's own write to disk");
    for (const f of followers) {
      const append = one('raft.append', f, propose, `follower ${f}`);
      assert.equal(append.pid !== propose.pid, true, 'the append span is made in the follower process');
      assert.equal(append.attributes['shoal.raft.leader'], leader);
      const flush = one('raft.flush', f, append, `follower ${f}`);
      assert.ok(flush.startMs >= append.startMs && flush.startMs + flush.durationMs <= append.startMs + append.durationMs + 1, `follower ${f}: the flush lies within its append`);
    }
    const commit = one('raft.commit', leader, propose, 'the commit');
    assert.equal(commit.attributes['shoal.raft.index'], index);
    for (const n of NODES) {
      const apply = one('raft.apply', n, propose, `replica ${n}`);
      assert.equal(apply.attributes['shoal.raft.index'], index, `replica ${n} applies the proposed entry`);
    }
    assert.equal(byName(spans, 'shoal.upsert').length, 1, 'one router span');

    // A search: the router's span and the shard's, in the client's trace.
    let searchTrace = '';
    let searchClient = '';
    await tracer.startActiveSpan('client search', async (span) => {
      searchTrace = span.spanContext().traceId;
      searchClient = span.spanContext().spanId;
      try {
        const hits = await client.collection('traced').search([1, 2, 3, 4], { k: 1 });
        assert.equal(hits.hits[0]?.id, 'a');
      } finally {
        span.end();
      }
    });
    await cluster.waitFor(() => nodeSpans().some((s) => s.traceId === searchTrace && s.name === 'shard.search'), 'the shard search span', 5_000);
    const searchSpans = nodeSpans().filter((s) => s.traceId === searchTrace);
    const search = searchSpans.find((s) => s.name === 'shoal.search');
    assert.ok(search, `the router's search span: ${show(searchSpans)}`);
    assert.equal(search.parentSpanId, searchClient);
    assert.ok(searchSpans.some((s) => s.name === 'shard.search' && s.parentSpanId === search.spanId), `a shard search under it: ${show(searchSpans)}`);
  });

  it('tracing - an idle cluster writes no span, and no span belongs to no client request or carries an id in its name', async () => {
    const before = nodeSpans();
    // Heartbeats (membership, Raft, node pings), health ticks, lease renewals, scrapes: a few seconds of them.
    await new Promise((r) => setTimeout(r, 3_000));
    const all = nodeSpans();
    const seen = new Set(before.map((s) => s.spanId));
    const idle = all.filter((s) => !seen.has(s.spanId));
    assert.deepEqual(idle.map((s) => s.name), [], `spans written while the cluster was idle: ${show(idle)}`);

    // Every trace starts at a client: a span of the test process, or the router's span of a request.
    const byId = new Map(all.map((s) => [s.spanId, s]));
    const clientSpans = new Set(exporter.getFinishedSpans().map((s) => s.spanContext().spanId));
    for (const s of all) {
      let root = s;
      while (root.parentSpanId !== null && byId.has(root.parentSpanId)) root = byId.get(root.parentSpanId) as SpanRecord;
      const fromClient = root.parentSpanId !== null ? clientSpans.has(root.parentSpanId) : root.name.startsWith('shoal.') && root.attributes['shoal.actor'] === 'router';
      assert.ok(fromClient, `span ${s.name} on ${String(s.attributes['shoal.node'])} belongs to a trace no client started (its root: ${root.name})`);
    }

    // The ids spans carry as attributes (Raft groups, actor names such as replica.<uid>.<shard>) are in no name.
    const ids = new Set<string>();
    for (const s of all) {
      const g = s.attributes['shoal.raft.group'];
      if (typeof g === 'string') ids.add(g);
      const actor = s.attributes['shoal.actor'];
      if (typeof actor === 'string') for (const part of actor.split('.').slice(1)) if (part.length > 2) ids.add(part);
    }
    assert.ok(ids.size > 0, 'spans name their raft group and actor in attributes');
    const names = [...new Set(all.map((s) => s.name))];
    for (const n of names) {
      assert.ok(!/\d/.test(n) && !n.includes(' ') && ![...ids].some((id) => n.includes(id)), `span name ${JSON.stringify(n)} is an operation, with no id (names: ${names.join(', ')})`);
    }
  });
});
