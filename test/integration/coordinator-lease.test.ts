/**
 * The coordinator's lease on a real JetStream KV bucket, with each node's clock in the test's
 * hands: one holder at a time; a standby takes over only once the holder's renewals stopped for
 * the lease's length; the epoch (the fencing token) grows with every takeover; a holder that could
 * not renew stops acting before anyone can take over; a node that may not coordinate gives it up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { LeaseKeeper } from '../../src/actors/coordinator/lease.js';
import { MetadataStore } from '../../src/cluster/metadata.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';

let server: NatsServer;
let nc: NatsConnection;

before(async () => {
  server = await startTestNats();
  nc = await connect({ servers: server.url });
});

after(async () => {
  await nc.close();
  await server.stop();
});

const LEASE = 5_000;

describe('coordinator lease', () => {
  it('lease - one holder; a standby takes over only after the lease length without renewals, with a higher epoch; the deposed one stops acting', async () => {
    const meta = await MetadataStore.open(nc, 'lease1');
    let t1 = 0;
    let t2 = 0;
    const a = new LeaseKeeper(meta, 'a', () => t1, LEASE);
    const b = new LeaseKeeper(meta, 'b', () => t2, LEASE);
    const e1 = await a.tick();
    assert.equal(e1, 1, 'the first node takes the free lease with epoch 1');
    assert.equal(await b.tick(), 0, 'the other stands by');
    // a renews every second; b, ten seconds later on its clock, still sees renewals
    for (let i = 0; i < 10; i++) {
      t1 += 1_000;
      t2 += 1_000;
      assert.equal(await a.tick(), 1);
      assert.equal(await b.tick(), 0);
    }
    // a stops renewing (paused, partitioned): after 4 s its own check says stop acting...
    t1 += 4_000;
    assert.equal(a.epoch(), 0, 'a holder that has not renewed for leaseMs - margin stops acting');
    // ...and b takes over only once a full lease length passed without a renewal
    t2 += 4_000;
    assert.equal(await b.tick(), 0, 'not yet: 4 s without a renewal');
    t2 += 1_100;
    const e2 = await b.tick();
    assert.equal(e2, 2, 'taken over with the epoch plus one');
    assert.equal(b.knownEpoch, 2);
    // a comes back: it finds it lost the lease and stays deposed
    t1 += 1_000;
    assert.equal(await a.tick(), 0);
    assert.equal(a.epoch(), 0);
    assert.equal(a.holder, 'b');
    assert.equal(a.knownEpoch, 2, 'the deposed node knows the new epoch (its leaders refuse changes from epoch 1)');
  });

  it('lease - two standbys racing for an expired lease: exactly one wins', async () => {
    const meta = await MetadataStore.open(nc, 'lease2');
    const dead = new LeaseKeeper(meta, 'dead', () => 0, LEASE);
    assert.equal(await dead.tick(), 1);
    let t = 0;
    const keepers = ['x', 'y', 'z'].map((id) => new LeaseKeeper(meta, id, () => t, LEASE));
    for (const k of keepers) assert.equal(await k.tick(), 0);
    t += LEASE + 100;
    const epochs = await Promise.all(keepers.map((k) => k.tick()));
    assert.deepEqual(epochs.filter((e) => e > 0), [2], `one winner (${epochs.join(', ')})`);
  });

  it('lease - released on a clean stop, taken at once; a node that may not coordinate (being removed) gives it up', async () => {
    const meta = await MetadataStore.open(nc, 'lease3');
    let draining = false;
    const a = new LeaseKeeper(meta, 'a', () => 0, LEASE, () => !draining);
    const b = new LeaseKeeper(meta, 'b', () => 0, LEASE);
    assert.equal(await a.tick(), 1);
    assert.equal(await b.tick(), 0);
    draining = true;
    assert.equal(await a.tick(), 0, 'a node being removed gives the lease up');
    assert.equal(await b.tick(), 2, 'and another takes it without waiting out the lease');
    await b.release();
    draining = false;
    assert.equal(await a.tick(), 3, 'a released lease is taken at once');
  });
});
