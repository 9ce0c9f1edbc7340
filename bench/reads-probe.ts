/**
 * `node dist/bench/reads-probe.js`: what a `strong` search costs against an `eventual` one, from
 * the nodes' own counters (docs/metrics.md: shoal_raft_frames_sent_total, shoal_raft_read_rounds_total,
 * shoal_raft_read_requests_total) and the CPU of every process (three nodes, nats-server, this
 * client) from /proc. Fashion-MNIST's first N points in a 2-shard × 3-replica collection; 32
 * clients at ef 10; after a warm-up pair, ROUNDS rounds of PHASE_S seconds of each consistency,
 * the order alternating. The figures that do not depend on the load (frames and rounds per
 * search) settle what changed; QPS and CPU are for the same run only.
 *
 * A/B in one run: VARIANTS="a:;b:SHOAL_RAFT_READ_PIPELINE=0" starts one cluster per variant
 * (name, then `;`-separated node environment after the colon; `,` separates variables) and
 * alternates them phase by phase, the idle one quiesced. `CLI=<dir>` among a variant's variables runs
 * the nodes of the build in that dist directory instead (main's, say: an A/B of two builds in one run). N (default 20000), ROUNDS (6), PHASE_S
 * (6), CLIENTS (32), EF (10).
 */
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Consistency } from '../src/api/types.js';
import type { ShoalClient } from '../src/client/client.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { loadFashionMnist, row } from './lib/fashion-mnist.js';
import { cpuMs } from './lib/proc-cpu.js';
import { fmt, percentile } from './lib/stats.js';

const N = Number(process.env['N'] ?? 20_000);
const ROUNDS = Number(process.env['ROUNDS'] ?? 6);
const PHASE_S = Number(process.env['PHASE_S'] ?? 6);
const CLIENTS = Number(process.env['CLIENTS'] ?? 32);
const EF = Number(process.env['EF'] ?? 10);
const VARIANTS = (process.env['VARIANTS'] ?? 'this:').split(';').map((v) => {
  const [name, env = ''] = v.split(/:(.*)/s) as [string, string?];
  return { name, env: Object.fromEntries(env.split(',').filter((x) => x.includes('=')).map((x) => x.split('=') as [string, string])) };
});
const BASE_PORT = 19_400 + Math.floor(Math.random() * 400) * 8;

const log = (s: string): void => void process.stderr.write(`${s}\n`);

function scrape(port: number): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', method: 'GET', timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const out = new Map<string, number>();
        for (const line of body.split('\n')) {
          if (line.startsWith('#') || line === '') continue;
          const i = line.lastIndexOf(' ');
          out.set(line.slice(0, i), Number(line.slice(i + 1)));
        }
        resolve(out);
      });
    });
    req.once('error', reject);
    req.end();
  });
}

const COUNTERS: [string, (m: Map<string, number>) => number][] = [
  ['searches', (m) => [...m].filter(([k]) => k.startsWith('shoal_requests_total{') && k.includes('op="search"')).reduce((s, [, v]) => s + v, 0)],
  ['requests', (m) => m.get('shoal_raft_frames_sent_total{kind="request"}') ?? 0],
  ['replies', (m) => m.get('shoal_raft_frames_sent_total{kind="reply"}') ?? 0],
  ['publishes', (m) => m.get('shoal_raft_frames_sent_total{kind="publish"}') ?? 0],
  ['rounds', (m) => m.get('shoal_raft_read_rounds_total') ?? 0],
  ['readReqs', (m) => m.get('shoal_raft_read_requests_total') ?? 0],
];

interface Variant {
  name: string;
  cluster: TestCluster;
  client: ShoalClient;
  ports: number[];
  pids: number[];
  phases: Map<Consistency, Phase[]>;
}

interface Phase {
  qps: number;
  cpuUs: number;
  /** CPU per search of nats-server, the nodes together, and this client, µs. */
  split: [number, number, number];
  per: Record<string, number>;
}

async function counters(v: Variant): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const port of v.ports) {
    const m = await scrape(port);
    for (const [name, f] of COUNTERS) out[name] = (out[name] ?? 0) + f(m);
  }
  return out;
}

/** CPU ms so far of nats-server (the first pid), the nodes, and this process. */
function cpuSplit(pids: number[]): [number, number, number] {
  const self = process.cpuUsage();
  return [cpuMs(pids[0] as number), pids.slice(1).reduce((s, p) => s + cpuMs(p), 0), (self.user + self.system) / 1000];
}

async function phase(v: Variant, queries: Float32Array[], consistency: Consistency, seconds: number): Promise<Phase> {
  const coll = v.client.collection('fm');
  const c0 = await counters(v);
  const cpu0 = cpuSplit(v.pids);
  let done = 0;
  let next = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        await coll.search(queries[next++ % queries.length] as Float32Array, { k: 10, ef: EF, consistency, withMetadata: false, timeoutMs: 30_000 });
        done++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu1 = cpuSplit(v.pids);
  const c1 = await counters(v);
  const searches = (c1['searches'] ?? 0) - (c0['searches'] ?? 0);
  const per: Record<string, number> = {};
  for (const [name] of COUNTERS) if (name !== 'searches') per[name] = ((c1[name] ?? 0) - (c0[name] ?? 0)) / Math.max(1, searches);
  const split = cpu1.map((x, i) => ((x - (cpu0[i] as number)) * 1000) / Math.max(1, done)) as [number, number, number];
  return { qps: done / secs, cpuUs: split[0] + split[1] + split[2], split, per };
}

async function main(): Promise<void> {
  const ds = loadFashionMnist();
  const dim = ds.dim;
  const queries = Array.from({ length: 1000 }, (_, i) => ds.test.slice(i * dim, (i + 1) * dim));
  const variants: Variant[] = [];
  for (const [k, spec] of VARIANTS.entries()) {
    const ports = [1, 2, 3].map((i) => BASE_PORT + k * 4 + i);
    const nodeEnv = Object.fromEntries(ports.map((p, i) => [`n${i + 1}`, { SHOAL_METRICS_PORT: String(p) }]));
    const prof = process.env['PROF_DIR'];
    // `CLI=<dist dir>` in a variant runs that build's nodes (an A/B against another build's dist in one run).
    const { CLI: dist, ...env } = spec.env;
    const cli = dist ? `${dist}/src/cli/main.js` : undefined;
    const cluster = await TestCluster.start({ nodes: 3, env, nodeEnv, ...(cli ? { cli } : {}), ...(prof ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${prof}/${spec.name}`] } : {}) });
    const client = await cluster.client({ encoding: 'cbor', timeoutMs: 30_000 });
    await client.createCollection({ name: 'fm', dim, metric: 'l2', shards: 2, replicas: 3, hnsw: { m: 16, efConstruction: 100, ef: 64 } });
    const coll = client.collection('fm');
    const t0 = performance.now();
    let nextBatch = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let b = nextBatch++; b * 250 < N; b = nextBatch++) {
          const pts = [];
          for (let i = b * 250; i < Math.min(N, (b + 1) * 250); i++) pts.push({ id: String(i), vector: row(ds.train, dim, i) });
          await coll.upsert(pts, { timeoutMs: 60_000 });
        }
      }),
    );
    log(`${spec.name}: ${N} points in ${fmt((performance.now() - t0) / 1000, 1)} s (env ${JSON.stringify(spec.env)})`);
    await cluster.waitFor(async () => {
      const d = await client.describeCollection('fm', 5_000);
      return d.count === N && d.shards.every((s) => s.replicas.every((r) => r.matchIndex >= s.commitIndex));
    }, 'replicas caught up', 600_000);
    const d = await client.describeCollection('fm', 5_000);
    log(`${spec.name}: leaders ${d.shards.map((s) => s.leader).join(', ')}`);
    const pids = [cluster.nats.pid, ...[...cluster.nodes.values()].map((n) => n.proc?.pid ?? 0)];
    variants.push({ name: spec.name, cluster, client, ports, pids, phases: new Map([['strong', []], ['eventual', []]]) });
  }
  try {
    for (const v of variants) {
      await phase(v, queries, 'strong', 2);
      await phase(v, queries, 'eventual', 2);
    }
    const modes = (process.env['MODES'] ?? 'strong,eventual').split(',') as Consistency[];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [vi, v] of (round % 2 === 0 ? variants : [...variants].reverse()).entries()) {
        for (let k = 0; k < modes.length; k++) {
          const mode = modes[(round + vi + k) % modes.length] as Consistency;
          const r = await phase(v, queries, mode, PHASE_S);
          v.phases.get(mode)?.push(r);
          log(`round ${round + 1} ${v.name} ${mode}: ${fmt(r.qps, 0)} QPS, ${fmt(r.cpuUs, 0)} µs CPU/search (nats ${fmt(r.split[0], 0)}, nodes ${fmt(r.split[1], 0)}, client ${fmt(r.split[2], 0)}), per search ${Object.entries(r.per).map(([n, x]) => `${n} ${x.toFixed(3)}`).join(', ')}`);
        }
      }
    }
    for (const v of variants) {
      const s = v.phases.get('strong') ?? [];
      const e = v.phases.get('eventual') ?? [];
      const ratios = s.map((p, i) => p.qps / (e[i]?.qps ?? Number.NaN));
      const med = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);
      log(`${v.name}: strong/eventual by round ${ratios.map((x) => x.toFixed(2)).join(', ')}; median ${med(ratios).toFixed(2)}×; QPS medians ${fmt(med(s.map((p) => p.qps)), 0)} / ${fmt(med(e.map((p) => p.qps)), 0)}; CPU/search medians ${fmt(med(s.map((p) => p.cpuUs)), 0)} / ${fmt(med(e.map((p) => p.cpuUs)), 0)} µs`);
      for (const name of Object.keys(s[0]?.per ?? {})) log(`  ${name} per search: strong ${med(s.map((p) => p.per[name] ?? 0)).toFixed(3)}, eventual ${med(e.map((p) => p.per[name] ?? 0)).toFixed(3)}`);
    }
  } finally {
    for (const v of variants) await v.cluster.stop();
  }
}

main().catch((err: unknown) => {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
