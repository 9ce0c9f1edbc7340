/**
 * The metrics port of a real 3-node cluster: every metric docs/metrics.md lists is served (and
 * nothing Shoal serves is missing from it), with values that agree with what the cluster did;
 * /healthz and /readyz answer as orchestrators expect, and /readyz holds a restarted node back
 * while its replica catches up.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { TestCluster } from '../helpers/cluster.js';
import { freePort, parseMetrics, type Series } from '../helpers/prom-text.js';
import type { ShoalClient } from '../../src/client/client.js';

const DIM = 16;
const DOC = new URL('../../../docs/metrics.md', import.meta.url);

/** The metric names docs/metrics.md lists under "Every metric": the first column of its tables, in backticks. */
function documentedNames(): string[] {
  const text = readFileSync(DOC, 'utf8');
  const from = text.indexOf('\n## Every metric');
  const to = text.indexOf('\n## ', from + 1);
  if (from < 0) throw new Error('docs/metrics.md has no section "Every metric"');
  const names = [...text.slice(from, to < 0 ? undefined : to).matchAll(/^\| `((?:shoal|process|nodejs)_[a-z0-9_]+)`/gm)].map((m) => m[1] as string);
  if (names.length === 0) throw new Error('docs/metrics.md lists no metric');
  return names;
}

/** The metrics docs/metrics.md says are served only while a move is in flight (none are here). */
function onlyWhileMoving(): string[] {
  const line = readFileSync(DOC, 'utf8').split('\n').find((l) => l.startsWith('Served only while a move is in flight'));
  if (!line) throw new Error('docs/metrics.md has no line "Served only while a move is in flight ..."');
  return [...line.matchAll(/`([a-z0-9_]+)`/g)].map((m) => m[1] as string);
}

const sum = (m: Map<string, Series[]>, name: string, where: (l: Record<string, string>) => boolean = () => true): number =>
  (m.get(name) ?? []).filter((s) => where(s.labels)).reduce((n, s) => n + s.value, 0);

let cluster: TestCluster;
let client: ShoalClient;
const ports: Record<string, number> = {};

async function scrape(id: string): Promise<Map<string, Series[]>> {
  const res = await fetch(`http://127.0.0.1:${ports[id]}/metrics`);
  assert.equal(res.status, 200);
  return parseMetrics(await res.text());
}

async function readyz(id: string): Promise<{ status: number; body: { ready: boolean; notReady: { group: string; reason: string }[] } }> {
  const res = await fetch(`http://127.0.0.1:${ports[id]}/readyz`);
  return { status: res.status, body: (await res.json()) as { ready: boolean; notReady: { group: string; reason: string }[] } };
}

function points(from: number, n: number): { id: string; vector: number[] }[] {
  return Array.from({ length: n }, (_, i) => ({ id: `p${from + i}`, vector: Array.from({ length: DIM }, (_, d) => Math.sin((from + i) * 31 + d)) }));
}

before(async () => {
  for (const id of ['n1', 'n2', 'n3']) ports[id] = await freePort();
  const nodeEnv = Object.fromEntries(Object.entries(ports).map(([id, p]) => [id, { SHOAL_METRICS_PORT: String(p), SHOAL_MAX_MEMORY: '8GiB' }]));
  cluster = await TestCluster.start({ nodes: 3, nodeEnv });
  client = await cluster.client();
});

after(async () => {
  await cluster?.stop();
});

describe('node metrics', () => {
  it('metrics - each node serves every documented metric, with values that agree with the writes and the errors made', async () => {
    // with a change stream, so that its metrics are served too
    await client.createCollection({ name: 'mx', dim: DIM, shards: 1, replicas: 3, changeStream: true });
    const coll = client.collection('mx');
    for (let i = 0; i < 4; i++) await coll.upsert(points(i * 50, 50));
    await coll.search(points(0, 1)[0]!.vector, { k: 3 });
    await assert.rejects(coll.upsert([{ id: 'bad', vector: [1, 2] }]), /INVALID_ARGUMENT|dimensions/);

    let all: Record<string, Map<string, Series[]>> = {};
    await cluster.waitFor(async () => {
      all = Object.fromEntries(await Promise.all(Object.keys(ports).map(async (id) => [id, await scrape(id)] as const)));
      const published = Object.values(all).reduce((n, m) => n + sum(m, 'shoal_changes_published_total'), 0);
      const outbox = Object.values(all).reduce((n, m) => n + sum(m, 'shoal_changes_outbox_entries'), 0);
      return Object.values(all).every((m) => sum(m, 'shoal_shard_points') === 200) && published === 4 && outbox === 0;
    }, 'every replica holds the 200 points; the 4 upserts are published and pruned from every outbox', 20_000);

    const served = new Set(Object.values(all).flatMap((m) => [...m.keys()].map((n) => n.replace(/_(bucket|sum|count)$/, ''))));
    const documented = documentedNames();
    const whileMoving = onlyWhileMoving();
    // those are checked during a move by test/integration/deploy-alerts.test.ts
    const missing = documented.filter((n) => !served.has(n) && !served.has(`${n}_bucket`) && !whileMoving.includes(n));
    assert.deepEqual(missing, [], `documented in docs/metrics.md but served by no node: ${missing.join(', ')}`);
    const undocumented = [...served].filter((n) => n.startsWith('shoal_') && !documented.includes(n));
    assert.deepEqual(undocumented, [], `served but not in docs/metrics.md: ${undocumented.join(', ')}`);

    const nodes = Object.values(all);
    const total = (name: string, where?: (l: Record<string, string>) => boolean): number => nodes.reduce((n, m) => n + sum(m, name, where), 0);
    assert.equal(total('shoal_raft_is_leader'), 1, 'one leader for the one group');
    assert.equal(total('shoal_coordinator_active'), 1, 'one active coordinator');
    assert.ok(total('shoal_requests_total', (l) => l['op'] === 'upsert' && l['code'] === 'OK') >= 4);
    assert.ok(total('shoal_requests_total', (l) => l['op'] === 'upsert' && l['code'] === 'INVALID_ARGUMENT') >= 1);
    assert.ok(total('shoal_requests_total', (l) => l['op'] === 'search' && l['code'] === 'OK') >= 1);
    assert.ok(total('shoal_request_duration_seconds_count', (l) => l['op'] === 'upsert') >= 5);
    const latencySum = total('shoal_request_duration_seconds_sum', (l) => l['op'] === 'upsert');
    assert.ok(latencySum > 0 && latencySum < 30, `upsert latency is in seconds: sum ${latencySum}`);
    for (const [id, m] of Object.entries(all)) {
      assert.ok(sum(m, 'shoal_raft_commit_index') >= 4, `${id}: commit index after 4 upserts`);
      assert.ok(sum(m, 'shoal_raft_applied_index') >= 4, `${id}: applied index`);
      assert.ok(sum(m, 'shoal_raft_term') >= 1, `${id}: term`);
      assert.ok(sum(m, 'shoal_raft_log_entries') >= 4, `${id}: raft log entries`);
      assert.equal(sum(m, 'shoal_node_replicas'), 1, `${id}: hosts one replica`);
      assert.equal(sum(m, 'shoal_node_state', (l) => l['state'] === 'up'), 1, `${id}: state up`);
      assert.equal(sum(m, 'shoal_node_ready'), 1, `${id}: ready`);
      assert.equal(sum(m, 'shoal_nats_connected'), 1, `${id}: connected`);
      assert.ok(sum(m, 'shoal_disk_free_bytes') > 0, `${id}: disk free`);
      assert.equal(sum(m, 'shoal_memory_limit_bytes'), 8 * 2 ** 30, `${id}: memory limit`);
      assert.equal(sum(m, 'shoal_writes_refused_total'), 0, `${id}: no write refused`);
      assert.ok(sum(m, 'shoal_storage_lmdb_bytes') > 0, `${id}: LMDB size`);
      assert.equal((m.get('shoal_shard_info') ?? [])[0]?.labels['collection'], 'mx', `${id}: shard info names the collection`);
    }
    const leader = Object.values(all).find((m) => sum(m, 'shoal_raft_is_leader') === 1)!;
    assert.equal((leader.get('shoal_raft_replication_lag_entries') ?? []).length, 2, 'the leader reports the lag of its two followers');
  });

  it('health - /healthz is 200 ok; /readyz is 503 while a restarted node\'s replica catches up, 200 once it has', async (t) => {
    const health = await fetch(`http://127.0.0.1:${ports['n1']}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');
    for (const id of Object.keys(ports)) assert.equal((await readyz(id)).status, 200, `${id} ready before the restart`);

    const leader = await cluster.leaderOf(client, 'mx', 0);
    const f = Object.keys(ports).find((id) => id !== leader)!;
    await cluster.stopNode(f);
    // Far more entries than the lag bound, each with enough points that applying them takes a while.
    const coll = client.collection('mx');
    const WRITES = 150;
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < WRITES) await coll.upsert(points(10_000 + next++ * 100, 100));
    }));
    const leaderCommit = sum(await scrape(leader), 'shoal_raft_commit_index');
    assert.ok(leaderCommit >= WRITES, `leader commit ${leaderCommit}`);

    await cluster.startNode(f);
    const seen503: string[] = [];
    let readyAt = -1;
    const t0 = Date.now();
    while (Date.now() - t0 < 60_000) {
      const r = await readyz(f);
      if (r.status === 200) {
        readyAt = Date.now() - t0;
        break;
      }
      assert.equal(r.status, 503);
      assert.equal(r.body.ready, false);
      seen503.push(...r.body.notReady.map((p) => p.reason));
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(readyAt >= 0, `node ${f} never became ready; last reasons: ${seen503.slice(-3).join(' | ')}`);
    assert.ok(seen503.length > 0, `node ${f} was ready at once, with ${leaderCommit} entries to catch up`);
    t.diagnostic(`${f} ready ${readyAt} ms after its restart; 503 before: ${[...new Set(seen503.map((r) => r.replace(/\d+/g, 'N')))].join(' | ')} (${seen503.length} times)`);
    const catchingUp = seen503.filter((r) => /catching up/.test(r));
    assert.ok(catchingUp.length > 0, `no 503 said the replica was catching up: ${[...new Set(seen503.map((r) => r.replace(/\d+/g, 'N')))].join(' | ')}`);
    // Ready means caught up: its replica has applied all but a few of what the leader committed.
    const applied = sum(await scrape(f), 'shoal_raft_applied_index');
    assert.ok(applied >= leaderCommit - 32, `${f} ready at ${readyAt} ms with applied ${applied}, leader commit ${leaderCommit}`);
    assert.equal(sum(await scrape(f), 'shoal_node_ready'), 1);
  });
});
