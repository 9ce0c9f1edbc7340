/**
 * A leader paused (SIGSTOP) holds a read lease in its own count of ticks, which stop while it is
 * paused. Once a new leader has committed a write, no `leased` read may still show the value from
 * before it, whichever router takes the read: the paused leader's own router serves leased reads
 * from its own replica as soon as it is continued.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
let client: ShoalClient;

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  client = await cluster.client({ timeoutMs: 10_000 });
});

after(async () => {
  await cluster?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('leases across a pause', () => {
  it('lease - a leader paused past its lease serves no stale leased read when it is continued', async () => {
    const c = client.collection('lp');
    await client.createCollection({ name: 'lp', dim: 2, metric: 'l2', shards: 1, replicas: 3 });
    const stale: string[] = [];
    for (let round = 0; round < 3; round++) {
      await c.upsert([{ id: 'k', vector: [0, 0], metadata: { v: round * 2 + 1 } }]);
      const leader = await cluster.leaderOf(client, 'lp', 0);
      // Warm the lease: leased reads through every router.
      await Promise.all(Array.from({ length: 20 }, () => c.get(['k'], { consistency: 'leased' })));
      const pausedAt = performance.now();
      cluster.pause(leader);
      // A new leader commits the next value.
      const next = round * 2 + 2;
      for (;;) {
        try {
          await c.upsert([{ id: 'k', vector: [0, 0], metadata: { v: next } }]);
          break;
        } catch {
          await sleep(50);
        }
      }
      const ackedAt = performance.now() - pausedAt;
      // Reads begun after the ack: a third of them reach the paused node's router.
      const reads = Array.from({ length: 60 }, async () => {
        const p = await c.get(['k'], { consistency: 'leased' });
        const v = p[0]?.metadata?.['v'];
        if (v !== next) stale.push(`round ${round}: read ${String(v)} after ${next} was acknowledged (leader ${leader} paused)`);
      });
      await sleep(Math.max(0, 2_000 - (performance.now() - pausedAt)));
      cluster.resume(leader);
      await Promise.all(reads);
      console.log(`lease pause round ${round}: ${leader} paused; write acknowledged after ${ackedAt.toFixed(0)} ms; resumed at 2000 ms`);
      await sleep(1_000);
    }
    assert.deepEqual(stale, []);
  });
});
