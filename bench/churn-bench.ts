/**
 * `npm run bench:churn` (issue 21 item 2): what replacing points again and again costs a node.
 * One real `shoal node` (and one nats-server) holds one collection (1 shard, 1 replica, L2, M=16,
 * efConstruction 100, ef 64). It is loaded with POINTS seeded clustered vectors
 * (bench/lib/clustered-vectors.ts, DIM dimensions) through the public API, then ROUNDS rounds
 * each replace half of the points: a quarter upserted again under their ids with new vectors, a
 * quarter deleted, and as many new ids upserted. After the load and after every round:
 * - `count` (strong) against the bench's own count of live points;
 * - recall@10 of QUERIES `strong` searches against exact search over the live points, computed
 *   here by brute force;
 * - the node's RssAnon, and its data directory on disk, each against its size after the load;
 * - what the directory holds (test/helpers/data-dir.ts): LMDB's data file, each named database's
 *   pages (the Raft log, points, shard meta with the index journal, dedup), the free pages below
 *   the file's high-water mark, the index checkpoint files, the rest.
 *
 * Writes the `churn` section of bench/RESULTS.md. POINTS, DIM, ROUNDS, QUERIES tune the run;
 * SHOAL_* variables in the environment reach the node (e.g. SHOAL_RAFT_COMPACT_BYTES).
 */
import { performance } from 'node:perf_hooks';
import type { ShoalClient, UpsertPoint } from '../src/client/client.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { dataDirBreakdown, type DataDirBreakdown } from '../test/helpers/data-dir.js';
import { ClusteredVectors, prng } from './lib/clustered-vectors.js';
import { procMemory } from './lib/proc-memory.js';
import { machine, today, writeSection } from './lib/report.js';

const POINTS = Number(process.env['POINTS'] ?? 20_000);
const DIM = Number(process.env['DIM'] ?? 784);
const ROUNDS = Number(process.env['ROUNDS'] ?? 10);
const QUERIES = Number(process.env['QUERIES'] ?? 200);
const BATCH = 100;
const IN_FLIGHT = 4;
const K = 10;
const COLLECTION = 'churn';
const MiB = 2 ** 20;

const T0 = performance.now();
const log = (s: string): void => void process.stderr.write(`[${((performance.now() - T0) / 1000).toFixed(0)} s] ${s}\n`);

const gen = new ClusteredVectors({ seed: 21, dim: DIM, clusters: 100, centreScale: 1, spread: 0.5 });
/** Vectors are numbered: each upsert takes the next serial, so no two upserts carry the same vector. */
let serial = 0;
const nextVector = (): Float32Array => gen.points(serial, ++serial);

interface Row {
  label: string;
  count: number;
  recall: number;
  rssAnon: number;
  d: DataDirBreakdown;
  seconds: number;
}

/** Runs `fn` over `items` in slices of BATCH, IN_FLIGHT slices at a time. */
async function inSlices<T>(items: T[], fn: (slice: T[]) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const slice = items.slice(next, (next += BATCH));
      await fn(slice);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

/** Recall@K of strong searches against brute force over `live`. */
async function recallOf(client: ShoalClient, live: Map<string, Float32Array>, queries: Float32Array): Promise<number> {
  const ids = [...live.keys()];
  const flat = new Float32Array(ids.length * DIM);
  ids.forEach((id, i) => flat.set(live.get(id) as Float32Array, i * DIM));
  const coll = client.collection(COLLECTION);
  let hits = 0;
  const jobs = Array.from({ length: QUERIES }, (_, q) => q);
  await inSlices(jobs, async (slice) => {
    for (const q of slice) {
      const v = queries.subarray(q * DIM, (q + 1) * DIM);
      const best: [number, number][] = [];
      for (let i = 0; i < ids.length; i++) {
        let d = 0;
        for (let j = 0, o = i * DIM; j < DIM; j++) {
          const x = (v[j] as number) - (flat[o + j] as number);
          d += x * x;
        }
        if (best.length < K || d < (best[K - 1] as [number, number])[1]) {
          best.push([i, d]);
          best.sort((a, b) => a[1] - b[1]);
          if (best.length > K) best.pop();
        }
      }
      const want = new Set(best.map(([i]) => ids[i]));
      const got = await coll.search(v, { k: K, consistency: 'strong', withMetadata: false });
      hits += got.hits.filter((h) => want.has(h.id)).length;
    }
  });
  return hits / (K * QUERIES);
}

function mib(b: number): string {
  return (b / MiB).toFixed(1);
}

function table(rows: Row[]): string {
  const base = rows[0] as Row;
  const head = '| round | count | recall@10 | RssAnon MiB | × load | data dir MiB | × load | data.mdb | points | raft-log (records) | shard-meta (records) | dedup | free pages | checkpoints | other | round s |';
  const sep = '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map((r) => {
    const l = r.d.lmdb;
    const pages = (name: string): number => (l.dbs[name]?.pages ?? 0) * l.pageSize;
    const entries = (name: string): number => l.dbs[name]?.entries ?? 0;
    return `| ${r.label} | ${r.count} | ${r.recall.toFixed(4)} | ${mib(r.rssAnon)} | ${(r.rssAnon / base.rssAnon).toFixed(2)} | ${mib(r.d.totalBytes)} | ${(r.d.totalBytes / base.d.totalBytes).toFixed(2)} | ${mib(l.fileBytes)} | ${mib(pages('points'))} | ${mib(pages('raft-log'))} (${entries('raft-log')}) | ${mib(pages('shard-meta'))} (${entries('shard-meta')}) | ${mib(pages('dedup'))} | ${mib(l.freePages * l.pageSize)} | ${mib(r.d.checkpoints.bytes)} (${r.d.checkpoints.dirs}) | ${mib(r.d.otherBytes)} | ${r.seconds.toFixed(0)} |`;
  });
  return [head, sep, ...lines].join('\n');
}

async function main(): Promise<void> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('SHOAL_') && v !== undefined) env[k] = v;
  const cluster = await TestCluster.start({ nodes: 1, env });
  const rows: Row[] = [];
  try {
    const client = await cluster.client({ timeoutMs: 60_000 });
    await client.createCollection({ name: COLLECTION, dim: DIM, metric: 'l2', shards: 1, replicas: 1, hnsw: { m: 16, efConstruction: 100, ef: 64 } });
    const coll = client.collection(COLLECTION);
    const node = cluster.nodes.get('n1');
    const pid = node?.proc?.pid;
    if (!node || !pid) throw new Error('the node does not run');
    const queries = gen.queries(QUERIES);
    const live = new Map<string, Float32Array>();
    const upsert = (points: { id: string; vector: Float32Array }[]): Promise<void> =>
      inSlices(points, async (slice) => {
        await coll.upsert(slice as UpsertPoint[]);
        for (const p of slice) live.set(p.id, p.vector);
      });
    const remove = (ids: string[]): Promise<void> =>
      inSlices(ids, async (slice) => {
        await coll.delete(slice);
        for (const id of slice) live.delete(id);
      });
    const measure = async (label: string, t: number): Promise<void> => {
      const seconds = (performance.now() - t) / 1000;
      // a moment for the node's flushes, checkpoints and compactions after the last write
      await new Promise((r) => setTimeout(r, 2_000));
      const count = await coll.count({ consistency: 'strong' });
      const recall = await recallOf(client, live, queries);
      const row: Row = { label, count, recall, rssAnon: procMemory(pid).rssAnon, d: await dataDirBreakdown(node.dataDir), seconds };
      rows.push(row);
      if (count !== live.size) log(`count ${count} != ${live.size} live points`);
      log(`${label}: count ${count}, recall ${recall.toFixed(4)}, RssAnon ${mib(row.rssAnon)} MiB, data dir ${mib(row.d.totalBytes)} MiB, ${JSON.stringify({ lmdb: row.d.lmdb, ckpt: row.d.checkpoints, other: row.d.otherBytes })}`);
    };

    let nextId = 0;
    let t = performance.now();
    await upsert(Array.from({ length: POINTS }, () => ({ id: `p${nextId++}`, vector: nextVector() })));
    await measure('load', t);
    const rand = prng(2021);
    for (let round = 1; round <= ROUNDS; round++) {
      t = performance.now();
      const ids = [...live.keys()];
      for (let i = ids.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [ids[i], ids[j]] = [ids[j] as string, ids[i] as string];
      }
      const quarter = Math.floor(POINTS / 4);
      await upsert(ids.slice(0, quarter).map((id) => ({ id, vector: nextVector() })));
      await remove(ids.slice(quarter, 2 * quarter));
      await upsert(Array.from({ length: quarter }, () => ({ id: `p${nextId++}`, vector: nextVector() })));
      await measure(String(round), t);
    }
  } finally {
    await cluster.stop();
  }
  const base = rows[0] as Row;
  const worstDisk = Math.max(...rows.map((r) => r.d.totalBytes / base.d.totalBytes));
  const worstMem = Math.max(...rows.map((r) => r.rssAnon / base.rssAnon));
  const last = rows[rows.length - 1] as Row;
  const settings = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(', ') || 'default settings';
  const body = `## Churn (\`npm run bench:churn\`)

Run ${today()} on ${machine()}. Issue 21 item 2. One real node (\`shoal node\`, ${settings}), 1 shard × 1 replica,
${POINTS} seeded clustered points of ${DIM} dims (L2, M=16, efConstruction 100, ef 64), then ${ROUNDS} rounds each replacing half
of them (a quarter upserted again under their ids, a quarter deleted and as many new ids upserted; batches of ${BATCH}, ${IN_FLIGHT} in
flight). After each: \`count\` (strong), recall@10 of ${QUERIES} \`strong\` searches against brute force over the live points,
RssAnon of the node, its data directory on disk (du), and what the directory holds: LMDB's data file, the pages of its
named databases (records in brackets: a value longer than a page is one record per page), the free pages below the file's high-water mark, the index checkpoint files
(directories in brackets), the rest. Sizes in MiB.

${table(rows)}

Worst over the rounds: data directory ${worstDisk.toFixed(2)}× the load's, RssAnon ${worstMem.toFixed(2)}× (goal ≤ 1.2× both);
count exact in ${rows.filter((r) => r.count === POINTS).length} of ${rows.length} readings; recall@10 ${base.recall.toFixed(4)} after the load,
${last.recall.toFixed(4)} after round ${ROUNDS}, lowest ${Math.min(...rows.map((r) => r.recall)).toFixed(4)}.`;
  writeSection('churn', body);
  process.stdout.write(`${body}\n`);
}

await main();
