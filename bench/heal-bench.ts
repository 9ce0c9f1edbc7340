/**
 * `npm run bench:heal`: a cluster repairing itself after losing a node for good, as its clients
 * see it. Four `shoal node` processes and one nats-server on this machine; Fashion-MNIST (60,000 ×
 * 784, L2) in a collection of 4 shards × 3 replicas; nodes with SHOAL_DOWN_AFTER_MS 2000 and
 * SHOAL_REPLACE_AFTER_MS 3000, so that the repair starts ~5 s after a node falls silent.
 *
 * Each round: 4 search clients (k 10, the default consistency and ef) run a window before the
 * fault; a node that is not the coordinator is SIGKILLed and its data deleted; the same clients
 * keep going until every shard has 3 voters on live nodes and cluster.health is healthy. The
 * rebalance coordinator does the repair by itself: each replica the dead node held is rebuilt on a
 * live node from a snapshot streamed in chunks. Then the anchor, and a fresh empty node joins
 * (the coordinator evens the cluster out, unthrottled and unmeasured) before the next round.
 * Rounds alternate maxBytesPerSec 0 (unthrottled: the copy rate) and the default 50 MiB/s (the
 * search latency during a repair), ABBA, ROUNDS of each; figures are medians over rounds.
 *
 * The anchor, in the same run, on the same nats-server: the bytes the round copied, sent over raw
 * NATS request-reply in chunks of the snapshot stream's size, each answered before the next
 * (bench/chunk-sink.ts, its own process), with the cluster idle and under the same search load.
 *
 * After each repair every replica must have applied its leader's commit index and hold its count
 * of points (cluster.health looks at Raft progress only); if one does not, the run stops there
 * and the report says so.
 *
 * Goals: copy at least 50% of the raw NATS rate; search p99 during a repair at the default throttle
 * at most 2× the p99 before it. About 10 minutes here.
 *
 * N (points, default 60000), ROUNDS (of each throttle, default 3), WINDOW_S (the window before,
 * default 15) and INGEST_BATCH (points per upsert, default 12) tune the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_REBALANCE } from '../src/actors/coordinator/coordinator.js';
import type { ShoalClient } from '../src/client/client.js';
import { OpsClient } from '../src/client/ops.js';
import { MetadataStore } from '../src/cluster/metadata.js';
import { DEFAULT_SNAPSHOT_CHUNK_BYTES } from '../src/replication/raft-options.js';
import { ActorSystem, NATS_CONNECTION_DEFAULTS } from '../src/runtime/actor-system.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { loadFashionMnist, row } from './lib/fashion-mnist.js';
import { report, type Round } from './lib/heal-report.js';
import { CpuSampler } from './lib/proc-cpu.js';
import { minus, union, type Interval } from './lib/intervals.js';
import { fullyReplicated, laggingReplicas, watchRepair } from './lib/repair-watch.js';
import { SearchLoad } from './lib/search-load.js';
import { writeSection } from './lib/report.js';

const N = Number(process.env['N'] ?? 60_000);
const ROUNDS = Number(process.env['ROUNDS'] ?? 3);
const WINDOW_S = Number(process.env['WINDOW_S'] ?? 15);
/**
 * Small upserts, so that every shard's log passes the state machine's checkpoint interval (1,024
 * entries) and a snapshot carries index checkpoint files, as a long-lived shard's does: 60,000
 * points in upserts of 12 are ~4,800 entries per shard. In upserts of 250 a shard gets ~60 entries,
 * no checkpoint, and a new replica must build its whole index from the journal.
 */
const INGEST_BATCH = Number(process.env['INGEST_BATCH'] ?? 12);
const INGEST_IN_FLIGHT = 32;
const CLIENTS = 4;
const K = 10;
const QUERIES = 1_000;
const WARMUP_MS = 2_000;
const REPAIR_TIMEOUT_MS = 600_000;
const COLLECTION = 'fmnist';
const NODE_ENV = { SHOAL_DOWN_AFTER_MS: '2000', SHOAL_REPLACE_AFTER_MS: '3000' };
const DEFAULT_RATE = DEFAULT_REBALANCE.maxBytesPerSec;
/** What a snapshot stream sends per request: its chunk size (the server's max payload allows up to half of it). */
const CHUNK = DEFAULT_SNAPSHOT_CHUNK_BYTES;
/** For reference: requests near the server's default max payload (1 MiB). */
const BIG_CHUNK = 1000 * 1024;

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `bytes` sent as requests of `size` bytes, one at a time, each answered before the next: bytes per second. */
async function rawRate(nc: NatsConnection, bytes: number, size = CHUNK): Promise<number> {
  const chunk = new Uint8Array(size).fill(0x5a);
  const t = performance.now();
  for (let sent = 0; sent < bytes; sent += size) await nc.request('bench.heal.chunk', chunk, { timeout: 10_000 });
  return bytes / ((performance.now() - t) / 1000);
}

async function startSink(url: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, [new URL('./chunk-sink.js', import.meta.url).pathname, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    p.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    p.once('exit', (code) => reject(new Error(`chunk-sink exited (${code})`)));
  });
  return p;
}

async function ingest(client: ShoalClient, train: Float32Array, dim: number): Promise<number> {
  const coll = client.collection(COLLECTION);
  const t0 = performance.now();
  let next = 0;
  let sent = 0;
  await Promise.all(
    Array.from({ length: INGEST_IN_FLIGHT }, async () => {
      for (let b = next++; b * INGEST_BATCH < N; b = next++) {
        const pts = [];
        for (let i = b * INGEST_BATCH; i < Math.min(N, (b + 1) * INGEST_BATCH); i++) pts.push({ id: String(i), vector: row(train, dim, i) });
        sent += await coll.upsert(pts, { timeoutMs: 60_000 });
        if (b % 500 === 0) log(`  ${sent} points`);
      }
    }),
  );
  return N / ((performance.now() - t0) / 1000);
}

/** No moves running or pending, every up node within one replica and one leadership of the mean. */
async function even(client: ShoalClient, ops: OpsClient, nodes: number): Promise<boolean> {
  const r = await ops.rebalanceStatus(2_000);
  if (r.moves.length > 0 || r.pending > 0) return false;
  const up = (await client.clusterStatus(2_000)).nodes.filter((n) => n.state === 'up');
  if (up.length !== nodes) return false;
  const within = (xs: number[]): boolean => xs.every((x) => Math.abs(x - xs.reduce((a, b) => a + b, 0) / xs.length) <= 1);
  return within(up.map((n) => n.replicas)) && within(up.map((n) => n.leaders)) && (await fullyReplicated(client, COLLECTION, 3));
}

interface Ctx {
  cluster: TestCluster;
  client: ShoalClient;
  ops: OpsClient;
  probe: ActorSystem;
  nc: NatsConnection;
  uid: string;
  queries: Float32Array[];
  sinkPid: number;
}

async function round(c: Ctx, throttle: number, index: number): Promise<Round> {
  await c.ops.configureRebalance({ maxBytesPerSec: throttle });
  const st = await c.client.clusterStatus(2_000);
  const coordinator = (await c.ops.rebalanceStatus(2_000)).coordinator;
  const victimNode = st.nodes.filter((n) => n.state === 'up' && n.id !== coordinator).sort((a, b) => a.id.localeCompare(b.id))[0];
  if (!victimNode) throw new Error('no node to kill');
  const victim = victimNode.id;
  const cpu = new CpuSampler();
  cpu.watch('client', process.pid);
  cpu.watch('nats-server', c.cluster.nats.pid);
  cpu.watch('sink', c.sinkPid);
  for (const n of c.cluster.nodes.values()) if (n.proc?.pid && n.proc.exitCode === null && n.proc.signalCode === null) cpu.watch(n.id, n.proc.pid);
  const sampling = setInterval(() => cpu.sample(), 200);
  cpu.sample();

  const load = new SearchLoad(c.client, COLLECTION, c.queries, CLIENTS, K, 10_000);
  await sleep(WARMUP_MS);
  const beforeAt = performance.now();
  await sleep(WINDOW_S * 1000);
  const killAt = performance.now();
  log(`round ${index + 1}: maxBytesPerSec ${throttle}; killing ${victim} (${victimNode.replicas} replicas, ${victimNode.leaders} leaderships; coordinator ${coordinator ?? '?'})`);
  await c.cluster.kill(victim);
  rmSync(c.cluster.nodes.get(victim)?.dataDir ?? '/nonexistent', { recursive: true, force: true });
  cpu.unwatch(victim);
  const deps = { client: c.client, ops: c.ops, probe: c.probe, collection: COLLECTION, uid: c.uid, replicas: 3 };
  const repair = await watchRepair(deps, victim, killAt, REPAIR_TIMEOUT_MS);
  if (repair.redundantAt === null) throw new Error(`round ${index + 1}: no full redundancy within ${REPAIR_TIMEOUT_MS} ms after killing ${victim}`);
  const bytes = repair.moves.reduce((s, m) => s + (m.bytes > 0 ? m.bytes : (m.bytesTotal ?? 0)), 0);
  log(`  dead after ${((repair.deadAt ?? killAt) - killAt).toFixed(0)} ms, redundant after ${(repair.redundantAt - killAt).toFixed(0)} ms; ${repair.moves.length} moves, ${(bytes / 1e6).toFixed(1)} MB`);

  const lagging = await laggingReplicas(deps, 15_000);
  if (lagging.length > 0) log(`  replicas that did not catch up: ${lagging.join('; ')}`);
  const loadedAt = performance.now();
  const anchorLoaded = await rawRate(c.nc, bytes);
  const loadedEnd = performance.now();
  await load.stop();
  const idleAt = performance.now();
  const anchorIdle = await rawRate(c.nc, bytes);
  const idleEnd = performance.now();
  const anchorIdleBig = await rawRate(c.nc, bytes, BIG_CHUNK);
  cpu.sample();
  clearInterval(sampling);
  log(`  anchor: ${(anchorIdle / 1e6).toFixed(0)} MB/s idle, ${(anchorLoaded / 1e6).toFixed(0)} MB/s under the search load; ${(anchorIdleBig / 1e6).toFixed(0)} MB/s idle in chunks of ${BIG_CHUNK} B`);
  for (const m of repair.moves) {
    const at = (t: number | null | undefined): string => (t === null || t === undefined ? '-' : ((t - killAt) / 1000).toFixed(1));
    log(`  move ${m.id} shard ${m.shard} ${m.from ?? '-'} → ${m.to} (${m.reason}): seen ${at(m.seenAt)} s, ${Object.entries(m.phaseAt).map(([p, t]) => `${p} ${at(t)}`).join(', ')}; bytes ${at(m.firstByteAt)}–${at(m.lastByteAt)}, restored ${at(m.restoredAt)}, done ${at(m.doneAt)}; ${m.bytes} B counted, ${m.bytesTotal ?? '-'} estimated, ${m.wastedBytes} wasted`);
  }
  if (load.errorSamples.length > 0) log(`  search errors, e.g.: ${load.errorSamples.join(' | ')}`);

  // the streams, and the restores after their last byte (install, index load, journal replay)
  const transfers = repair.moves.map((m): Interval => [m.firstByteAt ?? 0, m.lastByteAt ?? 0]);
  const restores = union(repair.moves.map((m): Interval => [m.lastByteAt ?? 0, m.restoredAt ?? 0]));
  const firstByte = Math.min(...repair.moves.map((m) => m.firstByteAt ?? Infinity));
  const lastByte = Math.max(...repair.moves.map((m) => m.lastByteAt ?? -Infinity));
  const out: Round = {
    throttle,
    victim,
    victimLeaders: victimNode.leaders,
    repair,
    bytes,
    before: load.window(beforeAt, killAt),
    during: load.window(killAt, repair.redundantAt),
    afterDead: load.window(repair.deadAt ?? killAt, repair.redundantAt),
    detect: load.window(killAt, repair.deadAt ?? killAt),
    transfers: load.during(minus(transfers, restores)),
    restores: load.during(restores),
    lagging,
    anchorIdle,
    anchorLoaded,
    anchorIdleBig,
    cpu: {
      before: cpu.between(beforeAt, killAt),
      repair: cpu.between(killAt, repair.redundantAt),
      transfer: Number.isFinite(firstByte) && lastByte > firstByte ? cpu.between(firstByte, lastByte) : new Map(),
      anchorLoaded: cpu.between(loadedAt, loadedEnd),
      anchorIdle: cpu.between(idleAt, idleEnd),
    },
  };

  if (lagging.length > 0) return out; // the run stops here (main): no refill of a broken cluster
  // Back to four nodes: a fresh one joins and takes its share (unthrottled, to save time).
  await c.ops.configureRebalance({ maxBytesPerSec: 0 });
  const fresh = `n${5 + index}`;
  await c.cluster.addNode(fresh);
  await c.cluster.waitFor(() => even(c.client, c.ops, 4), `the cluster even again with ${fresh}`, REPAIR_TIMEOUT_MS);
  log(`  ${fresh} joined; the cluster is even again`);
  return out;
}

async function main(): Promise<void> {
  const ds = loadFashionMnist();
  const dim = ds.dim;
  const queries = Array.from({ length: QUERIES }, (_, q) => new Float32Array(row(ds.test, dim, q)));
  const cluster = await TestCluster.start({ nodes: 4, env: NODE_ENV });
  let sink: ChildProcess | undefined;
  let probe: ActorSystem | undefined;
  let nc: NatsConnection | undefined;
  try {
    const client = await cluster.client({ encoding: 'cbor', timeoutMs: 30_000 });
    const ops = new OpsClient(client);
    await client.createCollection({ name: COLLECTION, dim, metric: 'l2', shards: 4, replicas: 3 });
    log(`ingesting ${N} points in upserts of ${INGEST_BATCH}, ${INGEST_IN_FLIGHT} in flight`);
    const ingestRate = await ingest(client, ds.train, dim);
    log(`ingest: ${ingestRate.toFixed(0)} points/s`);
    await cluster.waitFor(async () => {
      const d = await client.describeCollection(COLLECTION, 5_000);
      return d.count === N && d.shards.every((s) => s.replicas.every((r) => r.matchIndex >= s.commitIndex));
    }, 'replicas caught up', REPAIR_TIMEOUT_MS);
    await cluster.waitFor(() => even(client, ops, 4), 'the cluster even', REPAIR_TIMEOUT_MS);
    probe = await ActorSystem.connect(cluster.nats.url, { name: 'heal-probe' });
    const uid = (await (await MetadataStore.open(probe.nc, 'shoal')).getCollection(COLLECTION))?.value.uid;
    if (!uid) throw new Error(`collection ${COLLECTION} has no record`);
    const entries = (await client.describeCollection(COLLECTION)).shards.map((s) => s.commitIndex);
    sink = await startSink(cluster.nats.url);
    nc = await connect({ servers: cluster.nats.url, ...NATS_CONNECTION_DEFAULTS });
    const ctx: Ctx = { cluster, client, ops, probe, nc, uid, queries, sinkPid: sink.pid as number };
    const rounds: Round[] = [];
    for (let i = 0; i < 2 * ROUNDS; i++) {
      const pair = Math.floor(i / 2);
      const first = pair % 2 === 0 ? 0 : DEFAULT_RATE;
      const r = await round(ctx, i % 2 === 0 ? first : DEFAULT_RATE - first, i);
      rounds.push(r);
      if (r.lagging.length > 0) break; // a replica that stopped applying: later rounds would measure a broken cluster
    }
    const body = report({ rounds, n: N, dim, ingestBatch: INGEST_BATCH, ingestRate, entries, windowS: WINDOW_S, clients: CLIENTS, k: K, chunk: CHUNK, bigChunk: BIG_CHUNK, nodeEnv: NODE_ENV, defaultRate: DEFAULT_RATE });
    process.stdout.write(`${body}\n`);
    writeSection('heal', body);
  } finally {
    sink?.kill('SIGTERM');
    await nc?.close().catch(() => undefined);
    await probe?.shutdown().catch(() => undefined);
    await cluster.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:heal failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
