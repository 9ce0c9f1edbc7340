/**
 * `node dist/bench/ingest-probe.js`: where a bulk load's CPU goes, thread by thread. Fashion-MNIST's
 * first N points upserted through the API into a fresh 3-node cluster (2 shards × 3 replicas, HNSW m
 * 16, efConstruction 200, batches of 250, 4 in flight, majority), as bench:cluster loads them; CPU
 * per point from /proc of every node's main thread, its busiest other thread (the index worker),
 * its remaining threads together (V8's GC helpers, libuv's pool, LMDB's write thread), nats-server
 * and this client. In the same run, the anchor: raw hnswlib-node inserting the same points on one
 * thread, its CPU per point.
 *
 * A/B in one run: VARIANTS="a:;b:CLI=/path/to/other/dist" (as reads-probe.ts: name, then the node
 * environment after the colon, `,` between variables; CLI=<dist dir> runs that build's nodes;
 * ARGS=<flags> adds Node flags to the nodes, `+` between them, e.g. ARGS=--single-threaded-gc;
 * FLAGS=<flags> replaces the flags a node runs with, src/cli/node-flags.ts, `FLAGS=-` for none;
 * HEDGE=<ms> sets this client's hedgeAfterMs, 0 for no hedged copies). Each
 * round starts a fresh cluster per variant, the order alternating. N (default 20000), ROUNDS (3);
 * THREADS=1 prints every node thread's CPU; NODE_STDOUT=<path prefix> appends each node's standard
 * output (e.g. ARGS=--trace-gc) to <prefix>-<variant>-<node>.txt; PROF_DIR=<dir> writes the nodes' CPU profiles under <dir>/<variant>.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import hnswlib from 'hnswlib-node';
import { TestCluster } from '../test/helpers/cluster.js';
import { loadFashionMnist, row } from './lib/fashion-mnist.js';
import { cpuMs, threadCpuMs } from './lib/proc-cpu.js';
import { fmt, percentile } from './lib/stats.js';

const N = Number(process.env['N'] ?? 20_000);
const ROUNDS = Number(process.env['ROUNDS'] ?? 3);
const BATCH = 250;
const IN_FLIGHT = 4;
const VARIANTS = (process.env['VARIANTS'] ?? 'this:').split(';').map((v) => {
  const [name, env = ''] = v.split(/:(.*)/s) as [string, string?];
  return { name, env: Object.fromEntries(env.split(',').filter((x) => x.includes('=')).map((x) => x.split(/=(.*)/s).slice(0, 2) as [string, string])) };
});

const log = (s: string): void => void process.stderr.write(`${s}\n`);

interface Run {
  rate: number;
  /** CPU ms per point: main threads, index workers, other node threads, nats-server, client. */
  perPoint: Record<string, number>;
  /** Each node's anonymous resident memory at the end of the load, MiB. */
  rssAnonMb: number[];
}

const PARTS = ['main', 'worker', 'other', 'nats', 'client'] as const;

async function run(spec: { name: string; env: Record<string, string> }, ds: ReturnType<typeof loadFashionMnist>): Promise<Run> {
  const { CLI: dist, ARGS: args = '', FLAGS: flags, HEDGE: hedge, ...env } = spec.env;
  const prof = process.env['PROF_DIR'];
  const nodeArgs = [...args.split('+').filter((a) => a !== ''), ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}/${spec.name}`] : [])];
  const nodeFlags = flags === undefined ? {} : { nodeFlags: flags.split('+').filter((a) => a !== '' && a !== '-') };
  const cluster = await TestCluster.start({ nodes: 3, env, nodeArgs, ...nodeFlags, ...(dist ? { cli: `${dist}/src/cli/main.js` } : {}) });
  try {
    const client = await cluster.client({ encoding: 'cbor', timeoutMs: 30_000, ...(hedge !== undefined ? { hedgeAfterMs: Number(hedge) } : {}) });
    await client.createCollection({ name: 'fm', dim: ds.dim, metric: 'l2', shards: 2, replicas: 3, hnsw: { m: 16, efConstruction: 200, ef: 64 } });
    const coll = client.collection('fm');
    const pids = [...cluster.nodes.values()].map((n) => n.proc?.pid ?? 0);
    const stdoutTo = process.env['NODE_STDOUT'];
    if (stdoutTo) [...cluster.nodes.values()].forEach((n, i) => n.proc?.stdout?.on('data', (d: Buffer) => appendFileSync(`${stdoutTo}-${spec.name}-${i + 1}.txt`, d)));
    const before = pids.map(threadCpuMs);
    const nats0 = cpuMs(cluster.nats.pid);
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        for (let b = next++; b * BATCH < N; b = next++) {
          const pts = [];
          for (let i = b * BATCH; i < Math.min(N, (b + 1) * BATCH); i++) pts.push({ id: String(i), vector: row(ds.train, ds.dim, i) });
          await coll.upsert(pts, { timeoutMs: 60_000 });
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    // the third replica of each shard may still be applying: wait for it, counting its CPU too
    await cluster.waitFor(async () => {
      const d = await client.describeCollection('fm', 5_000);
      return d.count === N && d.shards.every((s) => s.replicas.every((r) => r.matchIndex >= s.commitIndex));
    }, 'replicas caught up', 600_000);
    const after = pids.map(threadCpuMs);
    const rssAnonMb = pids.map((pid) => Number(/RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN) / 1024);
    const self1 = process.cpuUsage(self0);
    const parts: Record<string, number> = { main: 0, worker: 0, other: 0, nats: cpuMs(cluster.nats.pid) - nats0, client: (self1.user + self1.system) / 1000 };
    pids.forEach((pid, i) => {
      const deltas = [...(after[i] as Map<number, number>)].map(([tid, ms]) => [tid, ms - ((before[i] as Map<number, number>).get(tid) ?? 0)] as const);
      const main = deltas.find(([tid]) => tid === pid)?.[1] ?? 0;
      const rest = deltas.filter(([tid]) => tid !== pid).map(([, ms]) => ms).sort((a, b) => b - a);
      if (process.env['THREADS']) log(`  node ${i + 1} threads, CPU ms/point: main ${(main / N).toFixed(3)}, others ${rest.filter((ms) => ms > 0).map((ms) => (ms / N).toFixed(3)).join(' ')}`);
      parts['main'] = (parts['main'] ?? 0) + main;
      parts['worker'] = (parts['worker'] ?? 0) + (rest[0] ?? 0);
      parts['other'] = (parts['other'] ?? 0) + rest.slice(1).reduce((s, x) => s + x, 0);
    });
    const perPoint = Object.fromEntries(Object.entries(parts).map(([k, ms]) => [k, ms / N]));
    return { rate: N / secs, perPoint, rssAnonMb };
  } finally {
    await cluster.stop();
  }
}

function rawInsert(ds: ReturnType<typeof loadFashionMnist>): { rate: number; cpuMsPerPoint: number } {
  const index = new hnswlib.HierarchicalNSW('l2', ds.dim);
  index.initIndex(N, 16, 200, 100);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) index.addPoint(Array.from(row(ds.train, ds.dim, i)), i);
  const secs = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { rate: N / secs, cpuMsPerPoint: (c.user + c.system) / 1000 / N };
}

async function main(): Promise<void> {
  const ds = loadFashionMnist();
  const results = new Map<string, Run[]>(VARIANTS.map((v) => [v.name, []]));
  const raws: { rate: number; cpuMsPerPoint: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const raw = rawInsert(ds);
    raws.push(raw);
    log(`round ${round + 1} raw hnswlib-node: ${fmt(raw.rate, 0)} inserts/s, ${raw.cpuMsPerPoint.toFixed(3)} ms CPU/point`);
    for (const spec of round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
      const r = await run(spec, ds);
      results.get(spec.name)?.push(r);
      log(`round ${round + 1} ${spec.name}: ${fmt(r.rate, 0)} points/s (${(r.rate / raw.rate).toFixed(2)}× raw); CPU ms/point ${PARTS.map((p) => `${p} ${(r.perPoint[p] ?? 0).toFixed(3)}`).join(', ')}; total ${Object.values(r.perPoint).reduce((s, x) => s + x, 0).toFixed(3)}; nodes' RssAnon ${r.rssAnonMb.map((m) => fmt(m, 0)).join('/')} MiB`);
    }
  }
  const med = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);
  log(`raw: median ${fmt(med(raws.map((r) => r.rate)), 0)} inserts/s, ${med(raws.map((r) => r.cpuMsPerPoint)).toFixed(3)} ms CPU/point`);
  for (const [name, runs] of results) {
    log(`${name}: median ${fmt(med(runs.map((r) => r.rate)), 0)} points/s; CPU ms/point medians ${PARTS.map((p) => `${p} ${med(runs.map((r) => r.perPoint[p] ?? 0)).toFixed(3)}`).join(', ')}`);
  }
}

main().catch((err: unknown) => {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
