/**
 * Backups through a real cluster (docs/backups.md): a backup taken while writers run holds every
 * write acknowledged before it began and none acknowledged after it ended; restored under a new
 * name it answers searches exactly as an exact search over its own points does, counts what the
 * manifest counts, and its replicas answer alike (same image, same graph); a dropped collection
 * restored by its old name serves again; and the errors of PROTOCOL.md.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import { BackupsClient, type BackupInfo } from '../../src/client/backups.js';
import type { ShoalClient, UpsertPoint } from '../../src/client/client.js';
import { BackupStore } from '../../src/cluster/backup-store.js';
import { FlatIndex } from '../../src/index/mod.js';
import { ShoalError } from '../../src/runtime/errors.js';
import { TestCluster } from '../helpers/cluster.js';
import { connectTo } from '../helpers/nats.js';

const DIM = 16;
const N = 20_000;
/** Small batches: each shard gets more than 1024 entries, so its image carries an index checkpoint and a journal after it. */
const BATCH = 9;

let cluster: TestCluster;
let client: ShoalClient;
let backups: BackupsClient;
let nc: NatsConnection;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}
const rand = rng(11);
const vec = (): number[] => Array.from({ length: DIM }, () => rand() * 2 - 1);

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  client = await cluster.client({ timeoutMs: 20_000 });
  backups = new BackupsClient(client);
  nc = await connectTo(cluster.nats);
});

after(async () => {
  await nc?.close();
  await cluster?.stop();
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ShoalError, String(err));
    return `${err.code}: ${err.message}`;
  }
  return 'OK';
}

async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++] as T);
  }));
}

it('backs up while writers run, restores under a new name and by the old name, and refuses what it must', async () => {
  const t0 = Date.now();
  await client.createCollection({ name: 'orig', dim: DIM, metric: 'l2', shards: 2, replicas: 2 });
  const coll = client.collection('orig');
  const points: UpsertPoint[] = Array.from({ length: N }, (_, i) => ({ id: `p${i}`, vector: vec(), metadata: { i } }));
  const batches = Array.from({ length: Math.ceil(N / BATCH) }, (_, b) => points.slice(b * BATCH, (b + 1) * BATCH));
  await inParallel(batches, 16, async (b) => void (await coll.upsert(b)));
  const loadedAt = Date.now();

  // writers add new points (w<n>) for as long as the backup runs
  const acked = new Map<string, number>(); // id -> when acknowledged
  const written = new Map<string, number[]>();
  let writing = true;
  let n = 0;
  const writers = Array.from({ length: 4 }, async () => {
    while (writing) {
      const batch = Array.from({ length: 10 }, () => ({ id: `w${n++}`, vector: vec() }));
      await coll.upsert(batch);
      const at = Date.now();
      for (const p of batch) {
        acked.set(p.id, at);
        written.set(p.id, p.vector);
      }
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  const began = Date.now();
  const backup: BackupInfo = await backups.create('orig', { name: 'b1' });
  const ended = Date.now();
  await new Promise((r) => setTimeout(r, 300));
  writing = false;
  await Promise.all(writers);
  assert.ok(acked.size > 0, 'the writers wrote during the backup');

  assert.equal(backup.name, 'b1');
  assert.equal(backup.collection, 'orig');
  assert.equal(backup.shards.length, 2);
  assert.deepEqual(backup.spec, { name: 'orig', dim: DIM, metric: 'l2', shards: 2, replicas: 2, sharding: backup.spec.sharding, hnsw: backup.spec.hnsw });
  assert.ok(backup.shards.every((s) => s.index > 1024 && s.bytes > 0), JSON.stringify(backup.shards));
  assert.equal(backup.points, backup.shards.reduce((k, s) => k + s.points, 0));
  assert.deepEqual((await backups.list({ collection: 'orig' })).map((b) => b.name), ['b1']);

  const restored = await backups.restore('b1', { as: 'copy' });
  assert.equal(restored.name, 'copy');
  assert.equal(restored.shards.length, 2);
  const copy = client.collection('copy');
  assert.equal(await copy.count(), backup.points, 'count matches the manifest');

  // which points the backup holds: every original, every write acknowledged before it began, none acknowledged after it ended
  const candidates = [...points.map((p) => p.id), ...acked.keys()];
  const got = new Map<string, Float32Array>();
  for (let i = 0; i < candidates.length; i += 2_000) {
    for (const p of await copy.get(candidates.slice(i, i + 2_000), { withVector: true, withMetadata: false })) got.set(p.id, Float32Array.from(p.vector as ArrayLike<number>));
  }
  assert.equal(got.size, backup.points, 'the restored points are as many as the backup counts');
  for (const p of points) assert.ok(got.has(p.id), `${p.id} (loaded before the backup) is restored`);
  for (const [id, at] of acked) {
    if (at < began) assert.ok(got.has(id), `${id}, acknowledged before the backup began, is restored`);
    if (at > ended) assert.ok(!got.has(id), `${id}, acknowledged after the backup ended, is not restored`);
  }
  for (const [id, v] of got) {
    const want = id.startsWith('p') ? points[Number(id.slice(1))]?.vector : written.get(id);
    assert.deepEqual(Array.from(v), Array.from(Float32Array.from(want as number[])), `vector of ${id}`);
  }

  // searches of the restored collection are those of an exact index over its points
  const flat = new FlatIndex({ dim: DIM, metric: 'l2' });
  flat.upsert([...got].map(([id, vector]) => ({ id, vector })));
  const queries = Array.from({ length: 100 }, vec);
  let exact = 0;
  for (const q of queries) {
    const hits = (await copy.search(q, { k: 10, ef: 400 })).hits;
    const want = flat.search({ vector: q, k: 10 });
    if (JSON.stringify(hits.map((h) => h.id)) === JSON.stringify(want.map((h) => h.id))) exact++;
  }
  assert.ok(exact >= 98, `${exact} of 100 searches of the restored collection return the exact top 10`);

  // the replicas of each restored shard answer alike: the same image, the same graph
  const answers: string[] = [];
  for (let i = 0; i < 6; i++) {
    answers.push(JSON.stringify(await Promise.all(queries.slice(0, 20).map(async (q) => (await copy.search(q, { k: 10, ef: 20, consistency: 'eventual' })).hits.map((h) => [h.id, h.distance])))));
  }
  assert.equal(new Set(answers).size, 1, 'eventual searches (any replica) answer identically');

  // writes to the restored collection work
  assert.equal(await copy.upsert([{ id: 'new', vector: vec() }]), 1);
  assert.equal(await copy.count(), backup.points + 1);

  // errors
  assert.match(await code(backups.restore('nope')), /^NOT_FOUND/);
  assert.match(await code(backups.restore('b1', { as: 'copy' })), /^ALREADY_EXISTS/);
  assert.match(await code(backups.restore('b1')), /^ALREADY_EXISTS: collection 'orig'/);
  assert.match(await code(backups.create('orig', { name: 'b1' })), /^ALREADY_EXISTS/);
  assert.match(await code(backups.create('orig', { name: 'bad name' })), /^INVALID_ARGUMENT: name/);
  assert.match(await code(backups.create('nope')), /^NOT_FOUND/);
  assert.match(await code(backups.restore('b1', { as: 'other', until: new Date().toISOString() })), /^INVALID_ARGUMENT: until needs change streams/);
  const store = await BackupStore.open(nc, cluster.prefix);
  const future = { ...(await store.getManifest('b1')) as BackupInfo, name: 'future', format: 99, shoalVersion: '9.0.0' };
  await store.putManifest(future as never);
  assert.match(await code(backups.restore('future', { as: 'f' })), /^INVALID_ARGUMENT: backup 'future' cannot be read by this version: its format is 99/);
  assert.equal((await client.listCollections()).some((c) => c.name === 'f'), false, 'nothing was created');

  // drop the original, restore it by its old name: it serves again
  assert.equal(await client.dropCollection('orig'), true);
  const again = await backups.restore('b1');
  assert.equal(again.name, 'orig');
  assert.equal(await client.collection('orig').count(), backup.points);
  const q0 = queries[0] as number[];
  assert.deepEqual((await client.collection('orig').search(q0, { k: 10, ef: 400 })).hits.map((h) => h.id), flat.search({ vector: q0, k: 10 }).map((h) => h.id));

  assert.equal(await backups.delete('b1'), true);
  assert.match(await code(backups.delete('b1')), /^NOT_FOUND/);
  assert.deepEqual((await backups.list({ collection: 'orig' })).map((b) => b.name), []);
  console.log(`load ${loadedAt - t0} ms, backup ${ended - began} ms (${backup.bytes} bytes, ${acked.size} points written meanwhile), total ${Date.now() - t0} ms`);
});
