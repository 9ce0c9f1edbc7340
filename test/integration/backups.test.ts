/**
 * Backups through a real cluster (docs/backups.md): a backup taken while writers run holds every
 * write acknowledged before it began and none acknowledged after it ended; restored under a new
 * name it answers searches exactly as an exact search over its own points does, counts what the
 * manifest counts, and its replicas answer alike (same image, same graph); a dropped collection
 * restored by its old name serves again; and the errors of PROTOCOL.md.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, it } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import { BackupsClient, type BackupInfo } from '../../src/client/backups.js';
import type { ShoalClient, UpsertPoint } from '../../src/client/client.js';
import { BackupStore } from '../../src/cluster/backup-store.js';
import { FlatIndex } from '../../src/index/mod.js';
import { ShoalError } from '../../src/runtime/errors.js';
import { TestCluster } from '../helpers/cluster.js';
import { connectTo } from '../helpers/nats.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;
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

function shoal(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '--nats', cluster.nats.url], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

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
  const during = [...acked.values()].filter((at) => at > began && at < ended).length;
  assert.ok(during > 0, `writes were acknowledged while the backup ran (${ended - began} ms): it does not block applies`);

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
  assert.match(await code(backups.restore('b1', { as: 'other', until: new Date().toISOString() })), /^INVALID_ARGUMENT: backup 'b1': collection 'orig' had no change stream/);
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
  console.log(`load ${loadedAt - t0} ms, backup ${ended - began} ms (${backup.bytes} bytes; ${during} points acknowledged while it ran), total ${Date.now() - t0} ms`);
});

/** Waits until the collection's change stream stops growing (its leaders have published what they applied). */
async function streamSettled(collection: string): Promise<number> {
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const jsm = await jetstreamManager(nc);
  let last = -1;
  for (let i = 0; i < 100; i++) {
    const n = (await jsm.streams.info(`SHOAL_CHANGES_${collection}`)).state.messages;
    if (n === last && n > 0) return n;
    last = n;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`the change stream of ${collection} kept growing`);
}

it('point-in-time restore: the backup plus the change stream up to `until` (writes after it left out); bad `until` refused', async () => {
  await client.createCollection({ name: 'pit', dim: DIM, metric: 'l2', shards: 2, replicas: 2, changeStream: true });
  const pit = client.collection('pit');
  const v = new Map<string, number[]>();
  const put = async (ids: string[]): Promise<void> => {
    const pts = ids.map((id) => ({ id, vector: vec() }));
    for (const p of pts) v.set(p.id, p.vector);
    await pit.upsert(pts);
  };
  const range = (p: string, a: number, b: number): string[] => Array.from({ length: b - a }, (_, i) => `${p}${a + i}`);
  await put(range('p', 0, 200));
  await backups.create('pit', { name: 'pb' });
  // before `until`: new points, replaced vectors, deletes (each its own request: several entries per shard)
  for (const ids of [range('a', 0, 25), range('a', 25, 50), range('p', 0, 10)]) await put(ids);
  assert.equal(await pit.delete(range('p', 10, 20)), 10);
  const kept = new Map(v);
  await streamSettled('pit');
  const until = new Date();
  await new Promise((r) => setTimeout(r, 50));
  // after `until`: none of this may be in the restore
  await put(range('b', 0, 50));
  await put(['p30', 'a0']);
  assert.equal(await pit.delete(range('p', 20, 30)), 10);
  await streamSettled('pit');

  assert.match(await code(backups.restore('pb', { as: 'x', until: 'yesterday' })), /^INVALID_ARGUMENT: until 'yesterday' is not an RFC 3339 time/);
  assert.match(await code(backups.restore('pb', { as: 'x', until: '2000-01-01T00:00:00Z' })), /^INVALID_ARGUMENT: until \(2000-01-01T00:00:00.000Z\) is before backup 'pb' was complete/);
  const restored = await backups.restore('pb', { as: 'pit2', until: until.toISOString() });
  assert.equal(restored.name, 'pit2');
  const pit2 = client.collection('pit2');
  const want = [...range('p', 0, 10), ...range('p', 20, 200), ...range('a', 0, 50)];
  assert.equal(await pit2.count({ consistency: 'strong' }), want.length, '200 backed up - 10 deleted + 50 added before until');
  const got = await pit2.get([...want, ...range('p', 10, 20), ...range('b', 0, 50)], { withVector: true, consistency: 'strong' });
  assert.deepEqual(got.map((p) => p.id).sort(), [...want].sort(), 'the points as they were at until: deletes before it applied, points written after it absent');
  for (const p of got) {
    const w = kept.get(p.id) as number[];
    assert.ok(p.vector && p.vector.every((x, i) => Math.abs(x - (w[i] as number)) < 1e-6), `${p.id} has its vector as of until (p0-p9 replaced before it, p30 and a0 after it)`);
  }
  // the same through the CLI
  const cli = await shoal('backup', 'restore', 'pb', '--as', 'pit3', '--until', until.toISOString(), '--json');
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal((JSON.parse(cli.stdout) as { collection: { name: string } }).collection.name, 'pit3');
  assert.equal(await client.collection('pit3').count({ consistency: 'strong' }), want.length);
  // the original goes on with everything
  assert.equal(await pit.count({ consistency: 'strong' }), 200 - 20 + 100);
});

it('shoal backup: create, list, restore and delete with --json; errors with their exit codes', async () => {
  await client.createCollection({ name: 'small', dim: 2, metric: 'l2', shards: 1, replicas: 2 });
  await client.collection('small').upsert([{ id: 'a', vector: [1, 0] }, { id: 'b', vector: [0, 1] }]);
  const created = await shoal('backup', 'create', 'small', '--json');
  assert.equal(created.code, 0, created.stderr);
  const b = (JSON.parse(created.stdout) as { backup: BackupInfo }).backup;
  assert.match(b.name, /^small-\d{8}T\d{6}Z$/, 'the default name: the collection and the UTC time');
  assert.equal(b.points, 2);
  const listed = await shoal('backup', 'list', 'small', '--json');
  assert.deepEqual((JSON.parse(listed.stdout) as { backups: BackupInfo[] }).backups.map((x) => x.name), [b.name]);
  const text = await shoal('backup', 'list');
  assert.match(text.stdout, new RegExp(`${b.name}\\s+small\\s`));
  const restored = await shoal('backup', 'restore', b.name, '--as', 'small2', '--json');
  assert.equal(restored.code, 0, restored.stderr);
  assert.equal((JSON.parse(restored.stdout) as { collection: { name: string; count: number } }).collection.count, 2);
  const again = await shoal('backup', 'restore', b.name, '--as', 'small2', '--json');
  assert.equal((JSON.parse(again.stdout) as { error: { code: string } }).error.code, 'ALREADY_EXISTS');
  assert.notEqual(again.code, 0);
  const missing = await shoal('backup', 'delete', 'nope');
  assert.match(missing.stderr, /NOT_FOUND: backup 'nope' does not exist/);
  assert.equal((await shoal('backup', 'delete', b.name)).code, 0);
  const usage = await shoal('backup', 'restore');
  assert.equal(usage.code, 2, 'a usage mistake');
});
