/**
 * `npm run bench:scale`: how Shoal's costs grow with its data. Synthetic clustered 128-dimensional
 * vectors from a fixed seed (bench/lib/clustered-vectors.ts) are loaded through the public API
 * (upserts with a requestId, several in flight, write concern majority) into a real cluster of
 * three `shoal node` processes and one nats-server: one collection, 2 shards × 3 replicas, L2.
 * The collection grows step by step (default 50k, 100k, 200k, 400k points) and at each size:
 * - ingest rate of the step's points;
 * - recall@10 through the cluster (`leased`, the default) on an ef ladder, against exact ground
 *   truth by brute force over a sample of queries (bench/lib/ground-truth.ts); search QPS and
 *   latency with 32 concurrent clients at the smallest ef whose recall is ≥ 0.95;
 * - memory per point: each node's RssAnon (page cache, RssFile, apart), and its data directory
 *   on disk, du-style;
 * - a restart of one node: SIGTERM, start again, until its `/readyz` answers 200 (every replica
 *   on it loaded and caught up to its leader: what an orchestrator waits for before it restarts
 *   the next node).
 * The anchor, in the same run and at each size, over the same vectors: raw hnswlib-node on one
 * thread in a process of its own (its insert rate for the step's points, search QPS at the
 * smallest ef with at least the cluster's recall, RssAnon per point).
 *
 * Writes a section of bench/RESULTS.md and bench/scale.svg. BENCH_SCALE_SIZES (comma-separated
 * points), QUERIES (ground-truth sample, default 200), SEARCH_S (seconds of each QPS phase,
 * default 10) tune the run.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ShoalClient } from '../src/client/client.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { ClusteredVectors, DEFAULT_SPEC } from './lib/clustered-vectors.js';
import { groundTruth, recallAt } from './lib/ground-truth.js';
import { cpuMs, machineBusyMs } from './lib/proc-cpu.js';
import { diskUsage, procMemory } from './lib/proc-memory.js';
import { RawAnchor } from './lib/raw-anchor.js';
import { machine, today, writeSection } from './lib/report.js';
import { scaleSvg } from './lib/scale-plot.js';
import { scalePanels, scaleTable, type ScaleStep } from './lib/scale-report.js';
import { fmt, median, percentile, sortedCopy } from './lib/stats.js';
import { checkpointDirs, readyzWithin } from './lib/node-probe.js';

const SIZES = (process.env['BENCH_SCALE_SIZES'] ?? '50000,100000,200000,400000').split(',').map(Number);
const QUERIES = Number(process.env['QUERIES'] ?? 200);
const SEARCH_S = Number(process.env['SEARCH_S'] ?? 10);
const EFS = [10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512];
const K = 10;
const M = 16;
const EF_CONSTRUCTION = 200;
const SHARDS = 2;
const BATCH = 500; // 500 × 128 float32 ≈ 256 KB a request
const INGEST_IN_FLIGHT = 4;
const CLIENTS = 32;
const RECALL_IN_FLIGHT = 8;
const TARGET_RECALL = 0.95;
const RESTARTED = 'n3';
const COLLECTION = 'scale';

const log = (s: string): void => void process.stderr.write(`[${((performance.now() - T0) / 1000).toFixed(0)} s] ${s}\n`);
const T0 = performance.now();

for (const n of SIZES) if (!Number.isSafeInteger(n) || n < 1_000) throw new Error(`BENCH_SCALE_SIZES: each size must be an integer of at least 1000, got ${n}`);
for (let i = 1; i < SIZES.length; i++) if ((SIZES[i] as number) <= (SIZES[i - 1] as number)) throw new Error('BENCH_SCALE_SIZES must grow');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** CPU, % of one core, that processes other than ours used on this machine between two readings. */
class OthersCpu {
  private at = 0;
  private busy = 0;
  private ours = 0;
  constructor(private readonly pids: () => number[]) {}
  private read(): [number, number, number] {
    return [performance.now(), machineBusyMs(), this.pids().reduce((sum, p) => sum + (cpuMs(p) || 0), 0)];
  }
  start(): void {
    [this.at, this.busy, this.ours] = this.read();
  }
  /** Since start(); the pids must not change in between (no restart inside). */
  percent(): number {
    const [at, busy, ours] = this.read();
    return (((busy - this.busy) - (ours - this.ours)) / (at - this.at)) * 100;
  }
}

async function ingest(client: ShoalClient, gen: ClusteredVectors, from: number, to: number): Promise<number> {
  const coll = client.collection(COLLECTION);
  const dim = gen.spec.dim;
  const t0 = performance.now();
  let next = Math.floor(from / BATCH);
  const last = Math.ceil(to / BATCH);
  let done = 0;
  await Promise.all(
    Array.from({ length: INGEST_IN_FLIGHT }, async () => {
      for (let b = next++; b < last; b = next++) {
        const lo = Math.max(from, b * BATCH);
        const hi = Math.min(to, (b + 1) * BATCH);
        const vs = gen.points(lo, hi);
        const pts = Array.from({ length: hi - lo }, (_, i) => ({ id: String(lo + i), vector: vs.subarray(i * dim, (i + 1) * dim) }));
        const upserted = await coll.upsert(pts, { requestId: `scale-${lo}-${hi}`, timeoutMs: 60_000 });
        done += upserted;
        if (b % 100 === 0) log(`  ${from + done} points`);
      }
    }),
  );
  if (done !== to - from) throw new Error(`upserted ${done} points, expected ${to - from}`);
  return (to - from) / ((performance.now() - t0) / 1000);
}

async function clusterSearch(client: ShoalClient, queries: Float32Array[], ef: number): Promise<number[][]> {
  const coll = client.collection(COLLECTION);
  const found: number[][] = new Array(queries.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: RECALL_IN_FLIGHT }, async () => {
      for (let q = next++; q < queries.length; q = next++) {
        const r = await coll.search(queries[q] as Float32Array, { k: K, ef, withMetadata: false, timeoutMs: 30_000 });
        found[q] = r.hits.map((h) => Number(h.id));
      }
    }),
  );
  return found;
}

/** CLIENTS concurrent searches for SEARCH_S s at `ef`. */
async function searchPhase(client: ShoalClient, queries: Float32Array[], ef: number): Promise<{ qps: number; p50: number; p99: number; errors: number }> {
  const coll = client.collection(COLLECTION);
  const lat: number[] = [];
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  const end = t0 + SEARCH_S * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        const q = queries[next++ % queries.length] as Float32Array;
        const t = performance.now();
        try {
          await coll.search(q, { k: K, ef, withMetadata: false, timeoutMs: 30_000 });
          lat.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  const s = sortedCopy(lat);
  return { qps: lat.length / ((performance.now() - t0) / 1000), p50: percentile(s, 50), p99: percentile(s, 99), errors };
}

async function main(): Promise<void> {
  const spec = DEFAULT_SPEC;
  const gen = new ClusteredVectors(spec);
  const dim = spec.dim;
  const maxN = SIZES[SIZES.length - 1] as number;
  const qs = gen.queries(QUERIES);
  const queries = Array.from({ length: QUERIES }, (_, q) => qs.subarray(q * dim, (q + 1) * dim));
  log(`sizes ${SIZES.join(', ')}; raw anchor starting`);
  const raw = await RawAnchor.start({ spec, maxPoints: maxN, queries: QUERIES, m: M, efConstruction: EF_CONSTRUCTION });
  const ports = await Promise.all([1, 2, 3].map(() => freePort()));
  const nodeEnv = Object.fromEntries(ports.map((p, i) => [`n${i + 1}`, { SHOAL_METRICS_PORT: String(p) }]));
  const portOf = (id: string): number => ports[Number(id.slice(1)) - 1] as number;
  const cluster = await TestCluster.start({ nodes: 3, nodeEnv });
  const steps: ScaleStep[] = [];
  try {
    const client = await cluster.client({ encoding: 'cbor', timeoutMs: 30_000 });
    await client.createCollection({ name: COLLECTION, dim, metric: 'l2', shards: SHARDS, replicas: 3, hnsw: { m: M, efConstruction: EF_CONSTRUCTION, ef: 64 } });
    await new Promise((r) => setTimeout(r, 2_000));
    const pidOf = (id: string): number => cluster.nodes.get(id)?.proc?.pid ?? 0;
    const ids = [...cluster.nodes.keys()];
    const emptyAnon = new Map(ids.map((id) => [id, procMemory(pidOf(id)).rssAnon]));
    log(`empty collection: node RssAnon ${ids.map((id) => `${id} ${fmt((emptyAnon.get(id) as number) / 2 ** 20, 0)} MiB`).join(', ')}`);
    const others = new OthersCpu(() => [process.pid, cluster.nats.pid, ...ids.map(pidOf)]);
    let have = 0;
    for (const n of SIZES) {
      log(`--- ${n} points: ingesting ${n - have} through the API (batches of ${BATCH}, ${INGEST_IN_FLIGHT} in flight, majority)`);
      others.start();
      const ingestRate = await ingest(client, gen, have, n);
      const othersIngest = others.percent();
      log(`ingest ${fmt(ingestRate, 0)} points/s (others on the machine: ${fmt(othersIngest, 0)}% of a core)`);
      let commitIndexes: number[] = [];
      await cluster.waitFor(async () => {
        const d = await client.describeCollection(COLLECTION, 5_000);
        commitIndexes = d.shards.map((s) => s.commitIndex);
        return d.count === n && d.shards.every((s) => s.replicas.every((r) => r.matchIndex >= s.commitIndex));
      }, 'replicas caught up', 900_000);
      log(`replicas caught up; Raft log entries per shard ${commitIndexes.join(' / ')} for ${Math.ceil(n / BATCH)} upserts in all`);
      const grown = await raw.grow(n);
      log(`raw insert ${fmt(grown.insertRate, 0)} points/s; raw RssAnon ${fmt(grown.rssAnon / n, 0)} B/point`);
      const train = gen.points(0, n);
      const gt = await groundTruth({ name: `scale-s${spec.seed}-c${spec.clusters}-n${n}`, dim, k: K, train, test: qs, queries: QUERIES });

      // the cluster's operating point
      let ef = EFS[EFS.length - 1] as number;
      let recall = 0;
      const ladder: string[] = [];
      for (const e of EFS) {
        recall = recallAt(K, gt, await clusterSearch(client, queries, e));
        ladder.push(`ef ${e}: ${recall.toFixed(4)}`);
        ef = e;
        if (recall >= TARGET_RECALL) break;
      }
      log(`cluster recall ${ladder.join(', ')}`);
      // raw's: the smallest ef with at least that recall (binary search; recall grows with ef)
      const rawRecall = async (e: number): Promise<number> => recallAt(K, gt, await raw.search(e, K));
      let lo = K; // hnswlib searches at max(ef, k)
      let hi = 1024;
      while ((await rawRecall(hi)) < recall && hi < 8192) hi *= 2;
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        if ((await rawRecall(mid)) >= recall) hi = mid;
        else lo = mid + 1;
      }
      const rawEf = hi;
      const rawRecallAt = await rawRecall(rawEf);
      log(`raw at ef ${rawEf}: recall ${rawRecallAt.toFixed(4)}`);

      const rawBefore = await raw.qps(rawEf, K, SEARCH_S / 2);
      others.start();
      const phase = await searchPhase(client, queries, ef);
      const othersSearch = others.percent();
      const rawAfter = await raw.qps(rawEf, K, SEARCH_S / 2);
      log(`search ×${CLIENTS} at ef ${ef}: ${fmt(phase.qps, 0)} QPS, p50 ${fmt(phase.p50, 1)} ms, p99 ${fmt(phase.p99, 1)} ms, ${phase.errors} errors; raw ${fmt(rawBefore, 0)} / ${fmt(rawAfter, 0)} QPS; others ${fmt(othersSearch, 0)}%`);

      const mem = ids.map((id) => procMemory(pidOf(id)));
      const disk = ids.map((id) => diskUsage(cluster.nodes.get(id)?.dataDir as string));
      const ckpts = checkpointDirs(cluster.nodes.get(RESTARTED)?.dataDir as string);
      log(`nodes RssAnon ${mem.map((m) => fmt(m.rssAnon / 2 ** 20, 0)).join(' / ')} MiB, RssFile ${mem.map((m) => fmt(m.rssFile / 2 ** 20, 0)).join(' / ')} MiB, disk ${disk.map((d) => fmt(d / 2 ** 20, 0)).join(' / ')} MiB; ${ckpts} checkpoints on ${RESTARTED}`);

      // restart one node
      const t0 = performance.now();
      await cluster.stopNode(RESTARTED);
      const stopMs = performance.now() - t0;
      await cluster.startNode(RESTARTED);
      const processReadyMs = performance.now() - t0;
      await readyzWithin(portOf(RESTARTED), 1_800_000);
      const servingMs = performance.now() - t0;
      const reopenedRssAnon = procMemory(pidOf(RESTARTED)).rssAnon;
      log(`restart ${RESTARTED}: exited ${fmt(stopMs / 1000, 1)} s, process ready ${fmt(processReadyMs / 1000, 1)} s, /readyz 200 ${fmt(servingMs / 1000, 1)} s; RssAnon after ${fmt(reopenedRssAnon / 2 ** 20, 0)} MiB`);

      const growth = ids.map((id, i) => (mem[i]?.rssAnon as number) - (emptyAnon.get(id) as number));
      steps.push({
        points: n, ingestRate, rawInsertRate: grown.insertRate, ef, recall, rawEf, rawRecall: rawRecallAt,
        qps: phase.qps, p50: phase.p50, p99: phase.p99, searchErrors: phase.errors, rawQps: Math.max(rawBefore, rawAfter),
        rssAnon: median(mem.map((m) => m.rssAnon)), rssAnonGrowth: median(growth), rssFile: median(mem.map((m) => m.rssFile)),
        rawRssAnon: grown.rssAnon, disk: median(disk), logEntries: median(commitIndexes), checkpoints: ckpts, stopMs, processReadyMs, servingMs,
        reopenedRssAnon: reopenedRssAnon - (emptyAnon.get(RESTARTED) as number), othersIngestCpu: othersIngest, othersSearchCpu: othersSearch,
      });
      have = n;
      report(steps, false);
    }
  } finally {
    await raw.stop();
    await cluster.stop();
  }
  report(steps, true);
  log('done');
}

function report(steps: ScaleStep[], final: boolean): void {
  const svg = scaleSvg(steps.map((s) => s.points), scalePanels(steps), `bench:scale, ${today()}: ${SHARDS} shards × 3 replicas on 3 nodes, 128-d clustered vectors (seed ${DEFAULT_SPEC.seed}); dashed: raw hnswlib-node anchor, same run`);
  writeFileSync(new URL('../../bench/scale.svg', import.meta.url), svg);
  const body = [
    '## Scale: how costs grow with the data (`npm run bench:scale`)',
    '',
    `Run ${today()} on ${machine()}; elapsed ${fmt((performance.now() - T0) / 60_000, 1)} min${final ? '' : ' (partial: the run stopped before its last size)'}.`,
    `Three \`shoal node\` processes and one nats-server on this machine, shared with other work (its CPU share is in the table).`,
    `${DEFAULT_SPEC.clusters} gaussian clusters in ${DEFAULT_SPEC.dim} dimensions (seed ${DEFAULT_SPEC.seed}; bench/lib/clustered-vectors.ts), one collection, ${SHARDS} shards × 3 replicas, L2, HNSW m ${M}, efConstruction ${EF_CONSTRUCTION};`,
    `grown through the API in upserts of ${BATCH} points with a requestId, ${INGEST_IN_FLIGHT} in flight, write concern majority. At each size: ${QUERIES} queries from the same distribution,`,
    `exact ground truth by brute force (hnswlib's BruteforceSearch, worker threads); recall through the cluster at \`leased\` on the ladder ${EFS.join(', ')} until ≥ ${TARGET_RECALL};`,
    `${CLIENTS} clients for ${SEARCH_S} s at that ef; then each node's RssAnon and RssFile (/proc/<pid>/status) and data directory (du); then ${RESTARTED} is stopped (SIGTERM) and started again,`,
    'timed until its `/readyz` answers 200: every replica on it loaded and caught up to its leader, which is what an orchestrator waits for before it restarts the next node.',
    'The anchor, same run, same vectors: raw hnswlib-node on one thread in a process of its own, grown by the same steps; its search rate at the smallest ef (steps of 1) with at least the cluster\'s recall,',
    `measured ${SEARCH_S / 2} s before and after the cluster's phase (the faster is used); its RssAnon less the process's before the index was made, after a full GC.`,
    'Slopes are log-log between sizes: ~0 constant, ~1 linear, negative falling.',
    '',
    scaleTable(steps),
    '',
    `| size | Shoal ef (recall) | raw ef (recall) | p50 ms | search errors | upserts sent / Raft entries per shard | checkpoints on ${RESTARTED} | others' CPU, ingest / search (% of a core) |`,
    '|---:|---|---|---:|---:|---|---:|---|',
    ...steps.map((s) => `| ${fmt(s.points, 0)} | ${s.ef} (${s.recall.toFixed(4)}) | ${s.rawEf} (${s.rawRecall.toFixed(4)}) | ${fmt(s.p50, 1)} | ${s.searchErrors} | ${fmt(Math.ceil(s.points / BATCH), 0)} / ${fmt(s.logEntries, 0)} | ${s.checkpoints} | ${fmt(s.othersIngestCpu, 0)} / ${fmt(s.othersSearchCpu, 0)} |`),
    '',
    '![bench:scale](scale.svg)',
  ].join('\n');
  writeSection('scale', body);
  if (final) process.stdout.write(`${body}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:scale failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
