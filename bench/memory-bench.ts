/**
 * `npm run bench:memory` (issue 21, item 1): what a point costs a node's replica.
 *
 * Raw hnswlib-node against a shard state machine (LMDB + the index in its worker thread), each in
 * a process of its own (test/fixtures/memory-child.ts): anonymous resident memory (RssAnon) per
 * point after a build, and after a reopen from the checkpoint (against raw hnswlib-node reading
 * the same graph file), on Fashion-MNIST's first BENCH_N vectors (784 dims, l2); and the speed of
 * the paths that read vectors outside the graph: exact filtered search, `withVector`, plain
 * search, get, a checkpoint, the reopen. The same for a cosine shard of BENCH_COSINE_N points
 * (its `withVector` reads LMDB). With BENCH_BASE_DIST (the `dist` of a build before issue 21,
 * its addon built beside it), the same shard figures of that build in the same run.
 * (Churn is bench:churn's.)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { machine, today, writeSection } from './lib/report.js';
import { fmt } from './lib/stats.js';
import { loadFashionMnist } from './lib/fashion-mnist.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('../test/fixtures/memory-child.js', import.meta.url));
const DIST = fileURLToPath(new URL('../', import.meta.url));
const N = Number(process.env.BENCH_N ?? 59_904);
const COSINE_N = Number(process.env.BENCH_COSINE_N ?? 20_480);
const BASE = process.env.BENCH_BASE_DIST;
const log = (s: string): void => console.log(s);

type Figures = Record<string, number>;

// The children read the vectors from a file a batch at a time (memory-child.ts, rowsOf): nothing
// large is allocated in them before a figure is taken.
const data = loadFashionMnist();
const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-memory-vectors-'));
const VECTORS = join(dir, 'fmnist.f32');
writeFileSync(VECTORS, new Uint8Array(data.train.buffer, data.train.byteOffset, Math.max(N, COSINE_N) * 784 * 4));

async function child(...args: string[]): Promise<Figures> {
  const { stdout } = await run(process.execPath, ['--expose-gc', CHILD, ...args], { maxBuffer: 1 << 20, env: { ...process.env, MEMORY_CHILD_VECTORS: VECTORS } });
  const out = JSON.parse(stdout.trim().split('\n').at(-1) as string) as Figures;
  log(`${args.slice(0, 1).join(' ')}: ${JSON.stringify(out)}`);
  return out;
}

interface Shard {
  build: Figures;
  reopen: Figures;
  rawLoad: Figures;
}

async function shard(dist: string, n: number, flags: string[]): Promise<Shard> {
  const root = mkdtempSync(join(tmpdir(), 'shoal-bench-memory-'));
  try {
    const build = await child('build', dist, root, String(n), '784', '--fmnist', ...flags);
    const rawLoad = await child('raw-load', root);
    const reopen = await child('reopen', dist, root, '--speed');
    return { build, reopen, rawLoad };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const builds = [['after', DIST], ...(BASE ? [['before', BASE]] : [])] as [string, string][];
const raw = await child('raw', String(N), '784', '--fmnist');
const l2: Record<string, Shard> = {};
const cosine: Record<string, Shard> = {};
for (const [name, dist] of builds) {
  l2[name] = await shard(dist, N, []);
  cosine[name] = await shard(dist, COSINE_N, ['--cosine']);
}
rmSync(dir, { recursive: true, force: true });

const num = (f: Figures, k: string): number => f[k] as number;
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
const memoryRows: string[] = [];
for (const [label, set] of [['l2', l2], ['cosine', cosine]] as const) {
  for (const [name, f] of Object.entries(set)) {
    memoryRows.push(`| ${label}, ${set === l2 ? N : COSINE_N} | ${name} | ${fmt(num(f.build, 'rssAnonPerPoint'), 0)} | ${fmt(num(f.reopen, 'rssAnonPerPoint'), 0)} | ${fmt(num(f.rawLoad, 'rssAnonPerPoint'), 0)} | **${ratio(num(f.reopen, 'rssAnonPerPoint'), num(f.rawLoad, 'rssAnonPerPoint'))}** |`);
  }
}
const speedRow = (label: string, name: string, f: Figures): string =>
  `| ${label} | ${name} | ${fmt(num(f, 'exactFilteredQps'), 0)} (${f['exactFilteredPlan']}) | ${fmt(num(f, 'filtered10Qps'), 0)} (${f['filtered10Plan']}) | ${fmt(num(f, 'withVectorQps'), 0)} | ${fmt(num(f, 'searchQps'), 0)} | ${fmt(num(f, 'getQps'), 0)} | ${fmt(num(f, 'checkpointS'), 2)} | ${fmt(num(f, 'reopenS'), 2)} |`;
const speedRows: string[] = [];
for (const [label, set] of [['l2', l2], ['cosine', cosine]] as const) for (const [name, f] of Object.entries(set)) speedRows.push(speedRow(label, name, f.reopen));
const ratios: string[] = [];
for (const [label, set] of [['l2', l2], ['cosine', cosine]] as const) {
  const a = set['after']?.reopen;
  const b = set['before']?.reopen;
  if (!a || !b) continue;
  const speed = (k: string): string => ratio(num(a, k), num(b, k));
  const time = (k: string): string => ratio(num(b, k), num(a, k));
  ratios.push(`${label}: exact filtered ${speed('exactFilteredQps')}, filtered 10% ${speed('filtered10Qps')}, \`withVector\` ${speed('withVectorQps')}, plain search ${speed('searchQps')}, get ${speed('getQps')}, checkpoint ${time('checkpointS')}, reopen ${time('reopenS')}.`);
}

writeSection(
  'memory',
  `## Memory per point (\`npm run bench:memory\`)

Run ${today()} on ${machine()}. Issue 21, item 1. Memory is \`RssAnon\` (heaps and malloc; LMDB's memory map is
file-backed page cache, not counted), measured in a process of its own per figure (test/fixtures/memory-child.ts),
after collecting garbage until it holds still. Fashion-MNIST's first vectors (784 dims), M=16, efConstruction=100,
metadata \`{tag: i % 10, cell: i % 1000}\`, fed to a shard state machine in entries of 256 points. "before" is the build before
this change (\`BENCH_BASE_DIST\`: main at 8791578), run in the same bench. Raw hnswlib-node built over ${N} points: ${fmt(num(raw, 'rssAnonPerPoint'), 0)} B a point.

| shard | build | B/point after a build | B/point after a reopen | raw hnswlib-node loading the same graph | reopen / raw |
|---|---|---:|---:|---:|---:|
${memoryRows.join('\n')}

Speed on the reopened shard, one request at a time, median of 5 rounds of 200: filtered searches on one
\`cell\` (0.1%: the exact scan) and on one \`tag\` (10%), the plan the index chose in brackets; search with \`withVector\` (k 10), plain search, get of 10 ids with
vectors, a checkpoint (seconds), the reopen (seconds).

| shard | build | filtered 0.1% QPS | filtered 10% QPS | withVector QPS | search QPS | get QPS | checkpoint s | reopen s |
|---|---|---:|---:|---:|---:|---:|---:|---:|
${speedRows.join('\n')}

After / before (speeds; for the checkpoint and the reopen, before's time over after's; goal ≥ 0.5×): ${ratios.join(' ')}`,
);
log('written to bench/RESULTS.md');
