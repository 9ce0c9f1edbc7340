/**
 * `npm run bench:memory` (issue 21): what a point costs a node's replica, and what churn does.
 *
 * 1. Memory per point: raw hnswlib-node against a shard state machine (LMDB + the index in its
 *    worker), on Fashion-MNIST's first BENCH_N vectors (784 dims), each in a process of its own
 *    (test/fixtures/memory-child.ts): anonymous resident memory (RssAnon) after a build, and after
 *    a reopen from the checkpoint; and the speed of the paths that read vectors outside the
 *    graph. With BENCH_BASE_DIST (the `dist` of a build before issue 21), the same shard figures
 *    of that build in the same run.
 * 2. Churn: one real node (`shoal node`), BENCH_CHURN_N points of 784 dims (seeded), then
 *    BENCH_CHURN_ROUNDS rounds each replacing half of them (a quarter upserted again, a quarter
 *    deleted and as many new ids upserted): the node's RssAnon, its data directory, recall@10
 *    against exact search over the live points, and `count`, after each round.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { UpsertPoint } from '../src/client/client.js';
import { FlatIndex } from '../src/index/mod.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { diskBytes, rssAnonOf } from '../test/helpers/proc-memory.js';
import { machine, today, writeSection } from './lib/report.js';
import { fmt } from './lib/stats.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('../test/fixtures/memory-child.js', import.meta.url));
const DIST = fileURLToPath(new URL('../', import.meta.url));
const N = Number(process.env.BENCH_N ?? 59_904);
const BASE = process.env.BENCH_BASE_DIST;
const CHURN_N = Number(process.env.BENCH_CHURN_N ?? 20_000);
const ROUNDS = Number(process.env.BENCH_CHURN_ROUNDS ?? 10);
const log = (s: string): void => console.log(s);

async function child(...args: string[]): Promise<Record<string, number>> {
  const { stdout } = await run(process.execPath, ['--expose-gc', CHILD, ...args], { maxBuffer: 1 << 20 });
  const out = JSON.parse(stdout.trim().split('\n').at(-1) as string) as Record<string, number>;
  log(`${args.slice(0, 1).join(' ')}: ${JSON.stringify(out)}`);
  return out;
}

// ---- 1. memory per point ----
const raw = await child('raw', String(N), '784', '--fmnist');
const shoal: Record<string, { build: Record<string, number>; reopen: Record<string, number>; rawLoad: Record<string, number> }> = {};
for (const [name, dist] of [['after', DIST], ...(BASE ? [['before', BASE]] : [])] as [string, string][]) {
  const root = mkdtempSync(join(tmpdir(), 'shoal-bench-memory-'));
  try {
    const build = await child('build', dist, root, String(N), '784', '--fmnist');
    const rawLoad = await child('raw-load', root);
    const reopen = await child('reopen', dist, root, '--speed');
    shoal[name] = { build, reopen, rawLoad };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

// ---- 2. churn on a real node ----
const DIM = 784;
let s = 21;
const rand = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const centres = Array.from({ length: 64 }, () => Array.from({ length: DIM }, () => rand()));
const vector = (): number[] => (centres[Math.floor(rand() * centres.length)] as number[]).map((x) => Math.fround(x + (rand() - 0.5) * 0.3));
const cluster = await TestCluster.start({ nodes: 1 });
const churnRows: string[] = [];
let churnSummary = '';
try {
  const client = await cluster.client({ timeoutMs: 60_000 });
  await client.createCollection({ name: 'churn', dim: DIM, metric: 'l2', shards: 1, replicas: 1, hnsw: { m: 16, efConstruction: 100, ef: 64 } });
  const coll = client.collection('churn');
  const live = new Map<string, number[]>();
  const upsert = async (points: UpsertPoint[]): Promise<void> => {
    for (let i = 0; i < points.length; i += 200) await coll.upsert(points.slice(i, i + 200));
    for (const p of points) live.set(p.id, p.vector as number[]);
  };
  const remove = async (ids: string[]): Promise<void> => {
    for (let i = 0; i < ids.length; i += 500) await coll.delete(ids.slice(i, i + 500));
    for (const id of ids) live.delete(id);
  };
  const queries = Array.from({ length: 200 }, vector);
  const recall = async (): Promise<number> => {
    const flat = new FlatIndex({ dim: DIM, metric: 'l2' });
    flat.upsert([...live].map(([id, v]) => ({ id, vector: Float32Array.from(v) })));
    let hit = 0;
    for (const q of queries) {
      const want = new Set(flat.search({ vector: q, k: 10 }).map((h) => h.id));
      hit += (await coll.search(q, { k: 10, consistency: 'strong', withMetadata: false })).hits.filter((h) => want.has(h.id)).length;
    }
    return hit / (10 * queries.length);
  };
  const node = cluster.nodes.get('n1');
  const pid = node?.proc?.pid;
  if (!node || !pid) throw new Error('the node does not run');
  const measure = async (): Promise<{ memory: number; disk: number }> => {
    await new Promise((r) => setTimeout(r, 2000));
    return { memory: rssAnonOf(pid), disk: diskBytes(node.dataDir) };
  };
  let next = 0;
  let t = performance.now();
  await upsert(Array.from({ length: CHURN_N }, () => ({ id: `p${next++}`, vector: vector() })));
  const loadS = (performance.now() - t) / 1000;
  const r0 = await recall();
  const m0 = await measure();
  const c0 = await coll.count({ consistency: 'strong' });
  churnRows.push(`| load | ${c0} | ${r0.toFixed(4)} | ${fmt(m0.memory / 2 ** 20, 0)} | 1.00 | ${fmt(m0.disk / 2 ** 20, 0)} | 1.00 | ${fmt(loadS, 0)} |`);
  log(churnRows.at(-1) as string);
  let worst = { memory: 1, disk: 1, recall: r0 };
  for (let round = 1; round <= ROUNDS; round++) {
    t = performance.now();
    const ids = [...live.keys()];
    for (let i = ids.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [ids[i], ids[j]] = [ids[j] as string, ids[i] as string];
    }
    const q = Math.floor(CHURN_N / 4);
    await upsert(ids.slice(0, q).map((id) => ({ id, vector: vector() })));
    await remove(ids.slice(q, 2 * q));
    await upsert(Array.from({ length: q }, () => ({ id: `p${next++}`, vector: vector() })));
    const roundS = (performance.now() - t) / 1000;
    const count = await coll.count({ consistency: 'strong' });
    const r = await recall();
    const m = await measure();
    worst = { memory: Math.max(worst.memory, m.memory / m0.memory), disk: Math.max(worst.disk, m.disk / m0.disk), recall: Math.min(worst.recall, r) };
    churnRows.push(`| ${round} | ${count} | ${r.toFixed(4)} | ${fmt(m.memory / 2 ** 20, 0)} | ${(m.memory / m0.memory).toFixed(2)} | ${fmt(m.disk / 2 ** 20, 0)} | ${(m.disk / m0.disk).toFixed(2)} | ${fmt(roundS, 0)} |`);
    log(churnRows.at(-1) as string);
  }
  churnSummary = `Worst over the rounds: memory ${worst.memory.toFixed(2)}×, data directory ${worst.disk.toFixed(2)}× the first load's (goal ≤ 1.2×); recall@10 ${r0.toFixed(4)} after the load, lowest ${worst.recall.toFixed(4)} (goal: where it was).`;
} finally {
  await cluster.stop();
}

// ---- report ----
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
const rows: string[] = [];
const speedRows: string[] = [];
for (const [name, f] of Object.entries(shoal)) {
  rows.push(`| Shoal ${name} issue 21, after a build | ${fmt(f.build['rssAnonPerPoint'] as number, 0)} | ${ratio(f.build['rssAnonPerPoint'] as number, raw['rssAnonPerPoint'] as number)} of the raw build |`);
  rows.push(`| Shoal ${name} issue 21, after a reopen | ${fmt(f.reopen['rssAnonPerPoint'] as number, 0)} | ${ratio(f.reopen['rssAnonPerPoint'] as number, f.rawLoad['rssAnonPerPoint'] as number)} of the raw load |`);
  speedRows.push(`| ${name} | ${fmt(f.reopen['exactFilteredQps'] as number, 0)} | ${fmt(f.reopen['withVectorQps'] as number, 0)} | ${fmt(f.reopen['searchQps'] as number, 0)} | ${fmt(f.reopen['getQps'] as number, 0)} | ${fmt(f.reopen['checkpointS'] as number, 2)} | ${fmt(f.reopen['reopenS'] as number, 2)} |`);
}
const after = shoal['after'];
const before = shoal['before'];
const speedRatios =
  after && before
    ? `After / before: exact filtered ${ratio(after.reopen['exactFilteredQps'] as number, before.reopen['exactFilteredQps'] as number)}, \`withVector\` ${ratio(after.reopen['withVectorQps'] as number, before.reopen['withVectorQps'] as number)}, plain search ${ratio(after.reopen['searchQps'] as number, before.reopen['searchQps'] as number)}, get ${ratio(after.reopen['getQps'] as number, before.reopen['getQps'] as number)}, checkpoint time ${ratio(after.reopen['checkpointS'] as number, before.reopen['checkpointS'] as number)}, reopen time ${ratio(after.reopen['reopenS'] as number, before.reopen['reopenS'] as number)} (goal: speeds ≥ 0.5×).`
    : '';

writeSection(
  'memory',
  `## Memory per point and churn (\`npm run bench:memory\`)

Run ${today()} on ${machine()}. Issue 21. Memory is \`RssAnon\` (heaps and malloc; LMDB's memory map is
file-backed page cache, not counted), measured in a process of its own per figure (test/fixtures/memory-child.ts),
after collecting garbage until it holds still. ${N} Fashion-MNIST vectors (784 dims, L2), M=16, efConstruction=100,
metadata \`{tag: i % 10}\`. "Before" is the build before issue 21 (\`BENCH_BASE_DIST\`), run in the same bench.

| | RssAnon B/point | vs raw hnswlib-node (same vectors) |
|---|---:|---:|
| raw hnswlib-node, build | ${fmt(raw['rssAnonPerPoint'] as number, 0)} | |
| raw hnswlib-node, load of the shard's graph file | ${fmt((after?.rawLoad['rssAnonPerPoint'] ?? 0) as number, 0)} | |
${rows.join('\n')}

Speed of what reads vectors outside the graph, on the reopened shard, one request at a time, median of 5 rounds of
200: exact filtered search (\`{tag: c}\`, 10%: the planner scans its matches exactly), search with \`withVector\`, plain
search, get of 10 ids with vectors, a checkpoint (seconds), the reopen (seconds).

| build | exact filtered QPS | withVector QPS | search QPS | get QPS | checkpoint s | reopen s |
|---|---:|---:|---:|---:|---:|---:|
${speedRows.join('\n')}

${speedRatios}

Churn on one real node (\`shoal node\`, default settings): ${CHURN_N} points of 784 dims (seeded clusters), then ${ROUNDS} rounds
each replacing half of them (a quarter upserted again, a quarter deleted and as many new ids); recall@10 of 200
\`strong\` searches at ef 64 against exact search over the live points.

| round | count | recall@10 | RssAnon MiB | × load | data dir MiB | × load | round s |
|---|---:|---:|---:|---:|---:|---:|---:|
${churnRows.join('\n')}

${churnSummary}`,
);
log('written to bench/RESULTS.md');
