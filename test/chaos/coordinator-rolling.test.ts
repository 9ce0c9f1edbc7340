/**
 * Moves at the operator's pace, on real node processes: the copy rate held to maxBytesPerSec, and
 * a rolling restart of every node through maintenance under writers and strong readers (no
 * request fails, no acknowledged write is lost).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { OpsClient } from '../../src/client/ops.js';
import { TestCluster } from '../helpers/cluster.js';
import { bigShard, checkNothingLost, drained, startLoad, stopLoads, voterOf } from '../helpers/ops-load.js';

let cluster: TestCluster;
let client: ShoalClient;
let ops: OpsClient;
const DIM = 128;
const points = new Map<string, number>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  cluster = await TestCluster.start({ nodes: 4, env: { SHOAL_DOWN_AFTER_MS: '2000', SHOAL_REPLACE_AFTER_MS: '60000' } });
  client = await cluster.client({ timeoutMs: 15_000 });
  ops = new OpsClient(client);
  points.set('big', await bigShard(client, 'big'));
});

after(async () => {
  await stopLoads();
  await cluster?.stop();
});

describe('coordinator at the operator\'s pace', () => {
  it('coordinator - the copy rate stays within 20% of maxBytesPerSec', async () => {
    const rate = 500_000;
    await ops.configureRebalance({ maxBytesPerSec: rate, maxConcurrentMoves: 1 });
    // four nodes are left, three of them voters: draining one copies its replica to the fourth
    const x = await voterOf(client, 'big', []);
    await ops.removeNode(x);
    const samples: { t: number; bytes: number; total: number }[] = [];
    for (let i = 0; i < 400; i++) {
      const m = (await ops.rebalanceStatus()).moves[0];
      if (m?.phase === 'copy' && m.bytesCopied > 0) samples.push({ t: Date.now(), bytes: m.bytesCopied, total: m.bytesTotal ?? 0 });
      if (samples.length > 0 && m?.phase !== 'copy') break;
      await sleep(100);
    }
    const inner = samples.filter((s) => s.bytes < s.total);
    assert.ok(inner.length >= 3, `enough progress samples during the copy (${inner.length})`);
    const first = inner[0]!;
    const last = inner[inner.length - 1]!;
    const measured = ((last.bytes - first.bytes) / (last.t - first.t)) * 1_000;
    assert.ok(Math.abs(measured - rate) <= rate * 0.2, `copy rate ${Math.round(measured)} B/s, limit ${rate} B/s`);
    await cluster.waitFor(() => drained(client, x), `${x} drained`, 90_000);
    await cluster.stopNode(x);
  });

  it('coordinator - a rolling restart through maintenance, one node at a time, under load: no request fails, no write is lost', async () => {
    await ops.configureRebalance({ maxBytesPerSec: 0 });
    const load = startLoad(client, ['big'], DIM, { timeoutMs: 15_000 });
    const nodes = (await client.clusterStatus()).nodes.filter((n) => n.state === 'up').map((n) => n.id);
    for (const n of nodes) {
      const on = await ops.maintenance(n, true, 30_000);
      assert.equal(on.leaders, 0);
      await cluster.stopNode(n);
      await cluster.startNode(n);
      await ops.maintenance(n, false);
      await cluster.waitFor(async () => (await client.clusterHealth()).healthy, `healthy after restarting ${n}`, 60_000);
    }
    const report = await load.stop();
    assert.deepEqual(report.failures, []);
    assert.deepEqual(report.partialWhy, []);
    assert.deepEqual(await checkNothingLost(client, report, points), []);
  });
});
