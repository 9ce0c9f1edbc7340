/**
 * `npm run bench:reshard`: online resharding (docs/resharding.md) as its clients see it. Three
 * `shoal node` processes and one nats-server on this machine; Fashion-MNIST (60,000 × 784, L2) in a
 * collection of 2 shards × 3 replicas, `consistent-hash`; 32 search clients run throughout, and
 * the collection is resharded to 4 shards under them.
 *
 * The anchor, in the same run, on the same cluster: the points that change owner (computed exactly
 * with both maps' sharders, src/cluster/shard-map.ts) upserted through the API into a fresh
 * collection of 4 shards × 3 replicas, with the same batching as the first ingest: once with the
 * cluster idle, once under the same 32 search clients (searching the 2-shard collection). That is
 * the work a reshard does (each node inserts every moving point into an empty shard's index) done
 * the ordinary way; the fresh collection is dropped before the reshard.
 *
 * A reshard is timed from the `collections.reshard` request to the first describe whose
 * `resharding` is null; describe is polled every {@link POLL_MS} for the phase timeline and the
 * shards' commit indexes. CPU per process is sampled from /proc every 200 ms.
 *
 * At the end: `count` (strong) must be exactly N, each shard's count what the new map gives it,
 * and a sample of gets (half of them moved points) must return the dataset's vectors.
 *
 * Goals: reshard duration ≤ the idle anchor; search QPS during the reshard ≥ 50% of before.
 *
 * SHOAL_BENCH_POINTS (default 60000; 6000 for development), WINDOW_S (the windows before and after,
 * default 15) and SAMPLE_GETS (default 1000) tune the run.
 */
import { performance } from 'node:perf_hooks';
import type { ShardingConfig } from '../src/api/types.js';
import type { ShoalClient } from '../src/client/client.js';
import { OpsClient } from '../src/client/ops.js';
import { sharderOf, type ShardMap } from '../src/cluster/shard-map.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { loadFashionMnist, row } from './lib/fashion-mnist.js';
import { CpuSampler } from './lib/proc-cpu.js';
import { writeSection } from './lib/report.js';
import { report, type Poll } from './lib/reshard-report.js';
import { SearchLoad } from './lib/search-load.js';

const N = Number(process.env['SHOAL_BENCH_POINTS'] ?? 60_000);
const WINDOW_S = Number(process.env['WINDOW_S'] ?? 15);
const SAMPLE_GETS = Number(process.env['SAMPLE_GETS'] ?? 1_000);
const CLIENTS = 32;
const K = 10;
const QUERIES = 1_000;
const M = 16;
const EF_CONSTRUCTION = 200;
const BATCH = 250; // as bench:cluster: 250 × 784 float32 ≈ 784 KB, under NATS's default 1 MiB max payload
const INGEST_IN_FLIGHT = 4;
const FROM_SHARDS = 2;
const TO_SHARDS = 4;
const POLL_MS = 100;
const WARMUP_MS = 2_000;
const SETTLE_MS = 5_000;
const RESHARD_TIMEOUT_MS = 1_800_000;
const COLLECTION = 'fmnist';
const SHARDING: ShardingConfig = { strategy: 'consistent-hash', vnodes: 128 };

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Upserts the points `ids` (dataset rows) into `name`, BATCH per upsert, INGEST_IN_FLIGHT in flight; the time it took, ms. */
async function ingest(client: ShoalClient, name: string, ids: number[], train: Float32Array, dim: number): Promise<number> {
  const coll = client.collection(name);
  const t0 = performance.now();
  let next = 0;
  let sent = 0;
  await Promise.all(
    Array.from({ length: INGEST_IN_FLIGHT }, async () => {
      for (let b = next++; b * BATCH < ids.length; b = next++) {
        const pts = ids.slice(b * BATCH, (b + 1) * BATCH).map((i) => ({ id: String(i), vector: row(train, dim, i) }));
        sent += await coll.upsert(pts, { timeoutMs: 60_000 });
        if (b % 40 === 0) log(`  ${name}: ${sent} of ${ids.length} points`);
      }
    }),
  );
  return performance.now() - t0;
}

async function caughtUp(cluster: TestCluster, client: ShoalClient, name: string, count: number): Promise<void> {
  await cluster.waitFor(async () => {
    const d = await client.describeCollection(name, 5_000);
    return d.count === count && d.shards.every((s) => s.replicas.every((r) => r.matchIndex >= s.commitIndex));
  }, `${name}: every replica caught up`, RESHARD_TIMEOUT_MS);
}

/** A seeded pick of `n` of `xs` (mulberry32), so that runs check the same points. */
function sample<T>(xs: T[], n: number, seed: number): T[] {
  let a = seed >>> 0;
  const rnd = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const copy = [...xs];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy.slice(0, n);
}

async function main(): Promise<void> {
  const ds = loadFashionMnist();
  const dim = ds.dim;
  const queries = Array.from({ length: QUERIES }, (_, q) => new Float32Array(row(ds.test, dim, q)));
  const all = Array.from({ length: N }, (_, i) => i);
  // which points change owner 2 -> 4: the same sharders the routers and shards use (groups do not matter to ownership)
  const map = (shards: number): ShardMap => ({ epoch: 0, shards, groups: [] });
  const before = sharderOf(SHARDING, map(FROM_SHARDS));
  const after = sharderOf(SHARDING, map(TO_SHARDS));
  const moving = all.filter((i) => before.shardOf(String(i)) !== after.shardOf(String(i)));
  const expectedPerShard = Array.from({ length: TO_SHARDS }, (_, s) => all.filter((i) => after.shardOf(String(i)) === s).length);
  log(`${moving.length} of ${N} points change owner ${FROM_SHARDS} -> ${TO_SHARDS}; per shard after: ${expectedPerShard.join(' / ')}`);

  const cluster = await TestCluster.start({ nodes: 3 });
  const cpu = new CpuSampler();
  let sampling: NodeJS.Timeout | undefined;
  let load: SearchLoad | undefined;
  try {
    const client = await cluster.client({ encoding: 'cbor', timeoutMs: 30_000 });
    const ops = new OpsClient(client);
    cpu.watch('client', process.pid);
    cpu.watch('nats-server', cluster.nats.pid);
    for (const n of cluster.nodes.values()) if (n.proc?.pid) cpu.watch(n.id, n.proc.pid);
    sampling = setInterval(() => cpu.sample(), 200);
    cpu.sample();
    const spec = { dim, metric: 'l2' as const, replicas: 3, sharding: SHARDING, hnsw: { m: M, efConstruction: EF_CONSTRUCTION, ef: 64 } };

    await client.createCollection({ name: COLLECTION, shards: FROM_SHARDS, ...spec });
    log(`ingesting ${N} points into ${COLLECTION} (${FROM_SHARDS} shards), upserts of ${BATCH}, ${INGEST_IN_FLIGHT} in flight`);
    const ingestMs = await ingest(client, COLLECTION, all, ds.train, dim);
    await caughtUp(cluster, client, COLLECTION, N);
    log(`ingest: ${(N / (ingestMs / 1000)).toFixed(0)} points/s`);

    // the anchor, idle: the moving points into a fresh collection of TO_SHARDS shards
    const anchorIdle = { name: 'anchor-idle', at: 0, ms: 0 };
    await client.createCollection({ name: anchorIdle.name, shards: TO_SHARDS, ...spec });
    anchorIdle.at = performance.now();
    anchorIdle.ms = await ingest(client, anchorIdle.name, moving, ds.train, dim);
    log(`anchor (idle): ${moving.length} points in ${(anchorIdle.ms / 1000).toFixed(1)} s`);
    await caughtUp(cluster, client, anchorIdle.name, moving.length);
    await client.dropCollection(anchorIdle.name);

    load = new SearchLoad(client, COLLECTION, queries, CLIENTS, K, 30_000);
    await sleep(WARMUP_MS);
    const beforeAt = performance.now();
    await sleep(WINDOW_S * 1000);
    const beforeEnd = performance.now();

    // the anchor under the same search load
    const anchorLoaded = { name: 'anchor-loaded', at: 0, ms: 0 };
    await client.createCollection({ name: anchorLoaded.name, shards: TO_SHARDS, ...spec });
    anchorLoaded.at = performance.now();
    anchorLoaded.ms = await ingest(client, anchorLoaded.name, moving, ds.train, dim);
    log(`anchor (under the search load): ${moving.length} points in ${(anchorLoaded.ms / 1000).toFixed(1)} s`);
    await caughtUp(cluster, client, anchorLoaded.name, moving.length);
    await client.dropCollection(anchorLoaded.name);
    await sleep(SETTLE_MS);

    log(`resharding ${COLLECTION} ${FROM_SHARDS} -> ${TO_SHARDS} under ${CLIENTS} search clients`);
    const polls: Poll[] = [];
    const reshardAt = performance.now();
    const reply = await ops.reshard(COLLECTION, TO_SHARDS);
    polls.push({ at: performance.now(), phase: reply.resharding?.phase ?? null, commits: reply.shards.map((s) => s.commitIndex) });
    let doneAt = 0;
    while (doneAt === 0) {
      if (performance.now() - reshardAt > RESHARD_TIMEOUT_MS) throw new Error(`no end of the reshard within ${RESHARD_TIMEOUT_MS} ms`);
      await sleep(POLL_MS);
      const d = await client.describeCollection(COLLECTION, 5_000).catch(() => undefined);
      if (!d) continue;
      const at = performance.now();
      const phase = d.resharding?.phase ?? null;
      if (phase !== polls[polls.length - 1]?.phase) log(`  ${((at - reshardAt) / 1000).toFixed(1)} s: ${phase ?? 'done'}`);
      polls.push({ at, phase, commits: d.shards.map((s) => s.commitIndex) });
      if (d.resharding === null || d.resharding === undefined) doneAt = at;
    }
    log(`reshard: ${((doneAt - reshardAt) / 1000).toFixed(1)} s`);
    const afterAt = performance.now();
    await sleep(WINDOW_S * 1000);
    const afterEnd = performance.now();
    await load.stop();
    cpu.sample();
    clearInterval(sampling);
    sampling = undefined;
    if (load.errorSamples.length > 0) log(`search errors, e.g.: ${load.errorSamples.join(' | ')}`);

    // correctness: the count, each shard's count, and a sample of gets (half moved, half stayed)
    const coll = client.collection(COLLECTION);
    const count = await coll.count({ consistency: 'strong' });
    const desc = await client.describeCollection(COLLECTION);
    const perShard = desc.shards.map((s) => s.count);
    const movingSet = new Set(moving);
    const half = Math.floor(SAMPLE_GETS / 2);
    const ids = [...sample(moving, half, 1), ...sample(all.filter((i) => !movingSet.has(i)), SAMPLE_GETS - half, 2)];
    const got = new Map((await coll.get(ids.map(String), { consistency: 'strong', withVector: true })).map((p) => [p.id, p]));
    let badGets = 0;
    for (const i of ids) {
      const v = got.get(String(i))?.vector;
      const want = row(ds.train, dim, i);
      if (!v || v.length !== dim || Array.from(v).some((x, j) => x !== want[j])) badGets++;
    }
    log(`count ${count} (want ${N}); per shard ${perShard.join(' / ')} (want ${expectedPerShard.join(' / ')}); ${badGets} of ${ids.length} gets wrong`);

    const body = report({
      n: N,
      dim,
      clients: CLIENTS,
      k: K,
      batch: BATCH,
      inFlight: INGEST_IN_FLIGHT,
      fromShards: FROM_SHARDS,
      toShards: TO_SHARDS,
      vnodes: SHARDING.strategy === 'consistent-hash' ? SHARDING.vnodes : 0,
      windowS: WINDOW_S,
      pollMs: POLL_MS,
      moving: moving.length,
      ingestMs,
      anchorIdleMs: anchorIdle.ms,
      anchorLoadedMs: anchorLoaded.ms,
      reshardAt,
      doneAt,
      polls,
      load,
      windows: { anchorIdle: [anchorIdle.at, anchorIdle.at + anchorIdle.ms], before: [beforeAt, beforeEnd], anchorLoaded: [anchorLoaded.at, anchorLoaded.at + anchorLoaded.ms], after: [afterAt, afterEnd] },
      cpu,
      check: { count, perShard, expectedPerShard, gets: ids.length, badGets },
    });
    process.stdout.write(`${body}\n`);
    writeSection('reshard', body);
    if (count !== N || badGets > 0 || perShard.some((c, s) => c !== expectedPerShard[s])) throw new Error('the collection is not what was written (see the report)');
  } finally {
    if (sampling) clearInterval(sampling);
    await load?.stop();
    await cluster.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:reshard failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
