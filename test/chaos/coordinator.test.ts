/**
 * The rebalance coordinator on a real cluster of node processes, under writers and strong
 * readers: a node killed for good is replaced; a node that joins gets its share; a live node and
 * a dead one are removed; maintenance empties a node of leaderships; leadership moves by hand.
 * Through all of it no request fails, no search is partial and no acknowledged write is lost.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { OpsClient } from '../../src/client/ops.js';
import { InvalidArgumentError } from '../../src/runtime/errors.js';
import { TestCluster } from '../helpers/cluster.js';
import { checkNothingLost, startLoad, stopLoads } from '../helpers/ops-load.js';

let cluster: TestCluster;
let client: ShoalClient;
let ops: OpsClient;
const COLLECTIONS = ['ops-a', 'ops-b'];
const DIM = 8;
const preloaded = new Map<string, number>();

const NODE_ENV = { SHOAL_DOWN_AFTER_MS: '2000', SHOAL_REPLACE_AFTER_MS: '3000' };

before(async () => {
  cluster = await TestCluster.start({ nodes: 4, env: NODE_ENV });
  client = await cluster.client({ timeoutMs: 10_000 });
  ops = new OpsClient(client);
  for (const name of COLLECTIONS) {
    await client.createCollection({ name, dim: DIM, metric: 'l2', shards: 4, replicas: 3 });
    const points = Array.from({ length: 200 }, (_, i) => ({ id: `pre-${i}`, vector: Array.from({ length: DIM }, (_, d) => Math.cos(i + d)) }));
    await client.collection(name).upsert(points);
    preloaded.set(name, points.length);
  }
});

after(async () => {
  await stopLoads();
  await cluster?.stop();
});

/** Every shard of every collection has `replicas` members, all voters on up nodes, and a leader. */
async function fullyReplicated(): Promise<boolean> {
  const status = await client.clusterStatus();
  const up = new Set(status.nodes.filter((n) => n.state === 'up' || n.state === 'maintenance').map((n) => n.id));
  for (const name of COLLECTIONS) {
    const d = await client.describeCollection(name);
    for (const s of d.shards) {
      if (s.leader === null || s.replicas.length !== 3) return false;
      if (!s.replicas.every((r) => up.has(r.node) && (r.role === 'leader' || r.role === 'follower'))) return false;
    }
  }
  return (await client.clusterHealth()).healthy;
}

async function even(nodes: string[]): Promise<boolean> {
  const r = await ops.rebalanceStatus();
  if (r.moves.length > 0 || r.pending > 0) return false;
  // PROTOCOL.md: every up node within one replica of the mean, and within one leadership of it
  const up = (await client.clusterStatus()).nodes.filter((n) => n.state === 'up');
  if (up.map((n) => n.id).sort().join() !== nodes.join()) return false;
  const within = (xs: number[]) => xs.every((x) => Math.abs(x - xs.reduce((a, b) => a + b, 0) / xs.length) <= 1);
  return within(up.map((n) => n.replicas)) && within(up.map((n) => n.leaders));
}

describe('rebalance coordinator', () => {
  it('coordinator - shards.transfer-leader with and without `to`; a `to` that is not a voter is INVALID_ARGUMENT', async () => {
    const d = await client.describeCollection('ops-a');
    const s = d.shards[0]!;
    const follower = s.replicas.find((r) => r.role === 'follower')!.node;
    const moved = await ops.transferLeader('ops-a', 0, follower);
    assert.equal(moved.leader, follower);
    const again = await ops.transferLeader('ops-a', 0);
    assert.notEqual(again.leader, follower, 'without `to`, another voter leads');
    const outsider = (await client.clusterStatus()).nodes.map((n) => n.id).find((n) => !s.replicas.some((r) => r.node === n))!;
    await assert.rejects(ops.transferLeader('ops-a', 0, outsider), (err: unknown) => err instanceof InvalidArgumentError && /not a voter/.test(err.message));
  });

  it('coordinator - a node killed for good: its replicas are rebuilt on the live nodes; nothing lost, nothing failed, nothing partial', async () => {
    const load = startLoad(client, COLLECTIONS, DIM);
    await new Promise((r) => setTimeout(r, 1_000));
    const victim = 'n4';
    const held = (await client.clusterStatus()).nodes.find((n) => n.id === victim)!.replicas;
    const doneBefore = (await ops.rebalanceStatus()).done;
    await cluster.kill(victim);
    rmSync(cluster.nodes.get(victim)!.dataDir, { recursive: true, force: true });
    await cluster.waitFor(async () => (await client.clusterStatus()).nodes.find((n) => n.id === victim)?.state === 'dead', `${victim} dead`, 30_000);
    const gone = (await client.clusterStatus()).nodes.find((n) => n.id === victim)!;
    assert.equal(gone.leaders, 0, 'a dead node leads nothing in cluster.status');
    await cluster.waitFor(fullyReplicated, 'every shard back to 3 voters on live nodes', 120_000);
    assert.equal((await client.clusterStatus()).nodes.find((n) => n.id === victim)!.replicas, 0, 'once repaired, the dead node holds nothing');
    const report = await load.stop();
    assert.deepEqual(report.failures, [], 'no request failed');
    assert.deepEqual(report.partialWhy, [], 'no search was partial');
    assert.ok(report.writes > 10 && report.reads > 10, `load ran (${report.writes} writes, ${report.reads} reads)`);
    assert.deepEqual(await checkNothingLost(client, report, preloaded), []);
    for (const [c, ids] of report.acked) preloaded.set(c, (preloaded.get(c) ?? 0) + ids.length);
    await cluster.waitFor(async () => (await ops.rebalanceStatus()).moves.length === 0, 'the moves finished', 30_000);
    const r = await ops.rebalanceStatus();
    assert.ok(r.done - doneBefore >= held, `the ${held} repair moves are counted as done (${r.done - doneBefore})`);
    assert.equal(r.failed, 0);
  });

  it('coordinator - a node that joins gets replicas and leaderships until the cluster is even; no request failed', async () => {
    const load = startLoad(client, COLLECTIONS, DIM);
    await cluster.addNode('n5', NODE_ENV);
    await cluster.waitFor(async () => (await client.clusterStatus()).nodes.find((n) => n.id === 'n5')?.state === 'up', 'n5 up', 10_000);
    await cluster.waitFor(() => even(['n1', 'n2', 'n3', 'n5']), 'the cluster even with n5', 120_000);
    const n5 = (await client.clusterStatus()).nodes.find((n) => n.id === 'n5')!;
    assert.ok(n5.replicas >= 5, `n5 holds its share (${n5.replicas} replicas)`);
    const report = await load.stop();
    assert.deepEqual(report.failures, []);
    assert.deepEqual(report.partialWhy, [], 'no search was partial');
    assert.deepEqual(await checkNothingLost(client, report, preloaded), []);
    for (const [c, ids] of report.acked) preloaded.set(c, (preloaded.get(c) ?? 0) + ids.length);
  });

  it('coordinator - nodes.remove: a dead node leaves at once; a live one under load is drained, then leaves', async () => {
    const dead = await ops.removeNode('n4');
    assert.equal(dead.state, 'draining');
    await cluster.waitFor(async () => !(await client.clusterStatus()).nodes.some((n) => n.id === 'n4'), 'n4 gone from cluster.status', 30_000);
    await assert.rejects(ops.removeNode('never-was'), /not registered/);

    const load = startLoad(client, COLLECTIONS, DIM);
    const r = await ops.removeNode('n5');
    assert.equal(r.state, 'draining');
    assert.ok(r.moves > 0);
    await cluster.waitFor(async () => !(await client.clusterStatus()).nodes.some((n) => n.id === 'n5'), 'n5 drained and gone', 120_000);
    await cluster.waitFor(fullyReplicated, 'fully replicated without n5', 60_000);
    const report = await load.stop();
    assert.deepEqual(report.failures, []);
    assert.deepEqual(report.partialWhy, [], 'no search was partial');
    assert.deepEqual(await checkNothingLost(client, report, preloaded), []);
    for (const [c, ids] of report.acked) preloaded.set(c, (preloaded.get(c) ?? 0) + ids.length);
  });

  it('coordinator - maintenance: the node leads nothing until it is taken out again', async () => {
    const on = await ops.maintenance('n1', true, 20_000);
    assert.deepEqual(on, { node: 'n1', state: 'maintenance', leaders: 0 });
    for (const name of COLLECTIONS) {
      const d = await client.describeCollection(name);
      assert.ok(d.shards.every((s) => s.leader !== 'n1'), 'no shard led by n1');
    }
    const st = (await client.clusterStatus()).nodes.find((n) => n.id === 'n1')!;
    assert.equal(st.state, 'maintenance');
    const off = await ops.maintenance('n1', false);
    assert.equal(off.state, 'up');
    await cluster.waitFor(async () => ((await client.clusterStatus()).nodes.find((n) => n.id === 'n1')?.leaders ?? 0) > 0, 'n1 leads again', 30_000);
  });
});
