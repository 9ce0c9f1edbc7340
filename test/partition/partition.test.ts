/**
 * A network partition on a real cluster: three hosts in network namespaces (needs root; without
 * the privilege the test fails and says so), the host of a shard's leader cut off from the others
 * and from the client, then healed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { waitFor } from '../helpers/cluster.js';
import { NetnsCluster } from '../helpers/netns-cluster.js';

let cluster: NetnsCluster;
let client: ShoalClient;

before(async () => {
  cluster = await NetnsCluster.start();
  client = await cluster.client({ timeoutMs: 3_000 });
});

after(async () => {
  await cluster?.stop();
});

describe('partition', () => {
  it("partition - a cut-off leader's shard gets a leader on the majority side and takes writes; its node is seen down, and up again once healed", async () => {
    await client.createCollection({ name: 'cut', dim: 4, metric: 'l2', shards: 1, replicas: 3 });
    const coll = client.collection('cut');
    await coll.upsert([{ id: 'before', vector: [1, 0, 0, 0] }]);
    const old = await cluster.leaderOf(client, 'cut', 0);
    const host = cluster.hostOf(old);

    cluster.cut(host);
    let leader = old;
    try {
      await waitFor(async () => {
        await coll.upsert([{ id: 'during', vector: [0, 1, 0, 0] }], { timeoutMs: 2_000 });
        leader = (await client.describeCollection('cut', 2_000)).shards[0]?.leader ?? old;
        return leader !== old;
      }, 'a write acknowledged under a leader on the majority side', 30_000);
      await waitFor(async () => (await client.clusterStatus(2_000)).nodes.find((n) => n.id === old)?.state !== 'up', `${old} not up while cut off`, 30_000);
    } finally {
      cluster.heal(host);
    }
    assert.notEqual(cluster.hostOf(leader), host);
    const got = await coll.get(['before', 'during'], { consistency: 'strong' });
    assert.deepEqual(got.map((p) => p.id).sort(), ['before', 'during']);

    await waitFor(async () => (await client.clusterStatus(2_000)).nodes.filter((n) => n.state === 'up').length === 3, 'all 3 nodes up after the heal', 60_000);
    await coll.upsert([{ id: 'after', vector: [0, 0, 1, 0] }]);
  });
});
