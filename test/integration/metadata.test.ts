import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { MetadataStore, type CollectionRecord, type MetadataEvent } from '../../src/cluster/metadata.js';
import { AlreadyExistsError, ShoalError } from '../../src/runtime/errors.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';

let server: NatsServer;
let nc: NatsConnection;
let nc2: NatsConnection;

before(async () => {
  server = await startTestNats();
  nc = await connect({ servers: server.url });
  nc2 = await connect({ servers: server.url });
});

after(async () => {
  await nc.close();
  await nc2.close();
  await server.stop();
});

function summarize(events: MetadataEvent[]): string[] {
  return events.map((e) => (e.kind === 'collection' ? `${e.name}:${e.record ? e.record.uid : 'deleted'}` : e.kind === 'control' ? e.key : `${e.kind} ${e.id}`));
}

async function until(what: string, done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function record(name: string, uid: string): CollectionRecord {
  return {
    name, uid, dim: 4, metric: 'l2', shards: 2, replicas: 1, createdAt: new Date(0).toISOString(),
    sharding: { strategy: 'consistent-hash', vnodes: 128 }, hnsw: { m: 16, efConstruction: 200, ef: 64 },
    placement: [{ shard: 0, replicas: ['n1'] }, { shard: 1, replicas: ['n1'] }],
  };
}

describe('metadata store', () => {
  it('metadata - two concurrent creates of one collection: exactly one wins', async () => {
    const a = await MetadataStore.open(nc, 'shoal');
    const b = await MetadataStore.open(nc2, 'shoal');
    const results = await Promise.allSettled([a.createCollection(record('race', 'u-a')), b.createCollection(record('race', 'u-b'))]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(loser.reason instanceof AlreadyExistsError, String(loser.reason));
    const stored = await a.getCollection('race');
    const winner = results[0]?.status === 'fulfilled' ? 'u-a' : 'u-b';
    assert.equal(stored?.value.uid, winner);
  });

  it('metadata - updates and deletes are compare-and-set on the revision', async () => {
    const m = await MetadataStore.open(nc, 'shoal');
    const rev1 = await m.createCollection(record('cas', 'u1'));
    const rev2 = await m.updateCollection({ ...record('cas', 'u1'), replicas: 3 }, rev1);
    assert.ok(rev2 > rev1);
    await assert.rejects(m.updateCollection({ ...record('cas', 'u1'), replicas: 5 }, rev1), (e: unknown) => {
      // the caller must tell "someone changed it since you read it" (re-read, retry) from "it exists"
      assert.ok(!(e instanceof AlreadyExistsError), `a stale update is a conflict, not ALREADY_EXISTS: ${String(e)}`);
      assert.ok(e instanceof ShoalError && e.name === 'RevisionConflictError', String(e));
      assert.equal(e.code, 'UNAVAILABLE', 'a conflict surfaces as UNAVAILABLE (PROTOCOL.md: conflicts with a change in progress)');
      assert.match(e.message, /'cas' changed concurrently/);
      return true;
    }, 'a stale revision loses');
    assert.equal((await m.getCollection('cas'))?.value.replicas, 3);
    assert.equal(await m.deleteCollection('cas', rev1), false, 'delete at a stale revision is refused');
    assert.ok(await m.getCollection('cas'));
    assert.equal(await m.deleteCollection('cas', rev2), true);
    assert.equal(await m.getCollection('cas'), undefined);
    // a dropped name can be created again (a new uid)
    await m.createCollection(record('cas', 'u2'));
    assert.equal((await m.getCollection('cas'))?.value.uid, 'u2');
  });

  it('metadata - a watcher sees current records, then every change in order; the epoch grows', async () => {
    const m = await MetadataStore.open(nc, 'watched');
    await m.createCollection(record('first', 'f1'));
    const e0 = await m.epoch();
    const events: MetadataEvent[] = [];
    const stop = await m.watch((ev) => events.push(ev));
    const rev = await m.createCollection(record('second', 's1'));
    await m.registerNode('n7');
    await m.registerNode('n7');
    await m.deleteCollection('second', rev);
    for (let i = 0; i < 100 && events.length < 4; i++) await new Promise((r) => setTimeout(r, 20));
    stop();
    const summary = events.map((e) => (e.kind === 'collection' ? `${e.name}:${e.record ? e.record.uid : 'deleted'}` : e.kind === 'control' ? e.key : `${e.kind} ${e.id}`));
    assert.deepEqual(summary, ['first:f1', 'second:s1', 'node n7', 'second:deleted']);
    assert.ok(events.every((e, i) => i === 0 || e.revision > (events[i - 1] as MetadataEvent).revision), 'revision order');
    assert.ok((await m.epoch()) > e0);
    assert.deepEqual((await m.listNodes()).map((n) => n.id), ['n7']);
    assert.deepEqual((await m.listCollections()).map((c) => c.value.name), ['first']);
  });

  it('metadata - a watch whose consumer is deleted re-establishes itself, says so, and misses no change', async () => {
    const m = await MetadataStore.open(nc, 'rewatch');
    await m.createCollection(record('a', 'a1'));
    const events: MetadataEvent[] = [];
    const failures: unknown[] = [];
    const stop = await m.watch((ev) => events.push(ev), { onError: (err) => failures.push(err), checkEveryMs: 200 });
    await until('the watcher sees the first record', () => events.length === 1);
    // what an operator's `nats consumer rm`, or the server's cleanup of an idle consumer, does
    const jsm = await jetstreamManager(nc);
    for await (const ci of jsm.consumers.list(`KV_${m.bucket}`)) await jsm.consumers.delete(`KV_${m.bucket}`, ci.name);
    const revB = await m.createCollection(record('b', 'b1'));
    await m.registerNode('n3');
    await m.deleteCollection('b', revB);
    try {
      await until('the changes made after the consumer was deleted arrive', () => events.length >= 4);
    } finally {
      stop();
    }
    assert.deepEqual(summarize(events), ['a:a1', 'b:b1', 'node n3', 'b:deleted'], 'every change once, in order');
    assert.ok(failures.length >= 1, 'the caller is told the watch failed');
  });

  it('metadata - a change the watcher cannot read is reported and skipped; the changes after it still arrive', async () => {
    const m = await MetadataStore.open(nc, 'garbled');
    const events: MetadataEvent[] = [];
    const failures: unknown[] = [];
    const stop = await m.watch((ev) => events.push(ev), { onError: (err) => failures.push(err) });
    // a record this version cannot parse (a bug, or a newer writer)
    const kv = await new Kvm(nc).open(m.bucket);
    await kv.put('collections.broken', 'not json');
    await m.createCollection(record('after', 'x1'));
    try {
      await until('the change after the unreadable one arrives', () => events.length >= 1);
    } finally {
      stop();
    }
    assert.deepEqual(summarize(events), ['after:x1']);
    assert.equal(failures.length, 1);
    assert.match(String(failures[0]), /broken/, 'the failure names the key');
  });
});
