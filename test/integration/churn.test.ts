/**
 * Churn on a real node (issue 21 item 2): 5,000 points of 784 dims, then three rounds that each
 * replace half of them (a quarter upserted again under their ids with new vectors, a quarter
 * deleted and as many new ids upserted). After every round `count` is exact, the node's data
 * directory stays within 1.2× of its size after the first load and its anonymous resident memory
 * within 1.2× and 64 MiB: freed LMDB pages are reused, the Raft log is compacted by bytes, the index journal
 * is checkpointed by size, old checkpoints are removed, deleted graph slots are reused. Measured
 * with the log and journal entries stored as pieces of a page (src/storage/pieces.ts): disk
 * 1.06-1.08× (one run); before, 1.09-1.12× (one run) and earlier 1.07-1.10×: at 5,000 points and
 * three rounds the growth that pieces stop (bench:churn: 1.38× → 1.10× after ten rounds at 20,000)
 * barely shows, so the bound stays at the issue's 1.2×, and test/integration/storage-pieces.test.ts
 * checks the mechanism itself (large entries reusing free space cut into single pages). Memory
 * (in four runs before pieces) 1.09-1.27× after rounds 1-3 (1.27×: run beside other
 * tests, 63 MiB more over a 229 MiB load); with the log's compaction by bytes switched off
 * (SHOAL_RAFT_COMPACT_BYTES of 1 TiB) disk 1.13× and 1.25×, memory 1.18× and 1.23× after rounds 1
 * and 2, and the test fails on the disk. Memory gets 64 MiB of slack over the issue's 1.2×: a
 * 5,000-point node's RssAnon is mostly fixed costs and V8's heaps, which move by tens of MiB
 * between readings, so this bound catches only growth past ~60 MiB (neither the uncompacted log
 * of three rounds nor a copy of the 15 MiB of vectors reaches it: a leak per round does, in time);
 * bench:churn reports the figure against 1.2× at 20,000 points.
 *
 * The node's Raft log is compacted by bytes at a quarter of the default sizes here: the defaults
 * (16 MiB, 4 MiB kept) suit collections of 20,000 such points and more (bench:churn measures
 * those); 5,000 points are 20 MiB in LMDB.
 *
 * Recall@10 against exact search over the live points must stay above the first load's less
 * {@link RECALL_TOLERANCE}: an update (and a deleted slot taken by a new id) moves a graph node in
 * place and hnswlib repairs its links by a heuristic, so recall drifts down under churn (another
 * piece of work, native/hnsw-graph.cc). Measured on this data: see RECALL_TOLERANCE.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { FlatIndex } from '../../src/index/mod.js';
import { TestCluster } from '../helpers/cluster.js';
import { dataDirBreakdown } from '../helpers/data-dir.js';
import { readFileSync } from 'node:fs';

const N = 5000;
const DIM = 784;
const ROUNDS = 3;
const BATCH = 100;
const QUERIES = 100;
/**
 * How far recall@10 may fall below the first load's. Measured in five runs of this test: 0.999
 * after the load, lowest after a round 0.959-0.99 (falls of 0.009 to 0.040); bench:churn at
 * 20,000 points: 1.000 after the load, 0.9375-0.987 after a round. Twice the largest fall
 * measured: the drift is hnswlib's and another piece of work's; this catches a broken graph.
 */
const RECALL_TOLERANCE = 0.08;
const DISK_BOUND = 1.2;
/** RssAnon within 1.2× the load's, and 64 MiB more for V8's heaps (see the file's comment). */
const MEMORY_BOUND = 1.2;
const MEMORY_SLACK = 64 * 2 ** 20;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const rand = rng(21);
const centres = Array.from({ length: 32 }, () => Array.from({ length: DIM }, () => rand()));
function vector(): number[] {
  const c = centres[Math.floor(rand() * centres.length)] as number[];
  return c.map((x) => Math.fround(x + (rand() - 0.5) * 0.3));
}

function rssAnonOf(pid: number): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no RssAnon in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

let cluster: TestCluster;
let client: ShoalClient;

before(async () => {
  cluster = await TestCluster.start({ nodes: 1, env: { SHOAL_RAFT_COMPACT_BYTES: '4MiB', SHOAL_RAFT_COMPACT_KEEP_BYTES: '1MiB' } });
  client = await cluster.client({ timeoutMs: 60_000 });
});

after(async () => {
  await cluster?.stop();
});

describe('churn', () => {
  it('churn - three rounds replacing half the points keep disk within 1.2x and memory within 1.2x + 64 MiB of the first load, count exact, recall near', async () => {
    await client.createCollection({ name: 'churn', dim: DIM, metric: 'l2', shards: 1, replicas: 1, hnsw: { m: 16, efConstruction: 100, ef: 64 } });
    const coll = client.collection('churn');
    const live = new Map<string, number[]>();
    const inBatches = async <T>(items: T[], fn: (slice: T[]) => Promise<unknown>): Promise<void> => {
      for (let i = 0; i < items.length; i += BATCH * 2) {
        await Promise.all([fn(items.slice(i, i + BATCH)), fn(items.slice(i + BATCH, i + 2 * BATCH))].filter((_, k) => i + k * BATCH < items.length));
      }
    };
    const upsert = async (points: { id: string; vector: number[] }[]): Promise<void> => {
      await inBatches(points, (slice) => coll.upsert(slice));
      for (const p of points) live.set(p.id, p.vector);
    };
    const remove = async (ids: string[]): Promise<void> => {
      await inBatches(ids, (slice) => coll.delete(slice));
      for (const id of ids) live.delete(id);
    };
    const queries = Array.from({ length: QUERIES }, vector);
    const recall = async (): Promise<number> => {
      const flat = new FlatIndex({ dim: DIM, metric: 'l2' });
      flat.upsert([...live].map(([id, v]) => ({ id, vector: Float32Array.from(v) })));
      let hit = 0;
      for (const q of queries) {
        const want = new Set(flat.search({ vector: q, k: 10 }).map((h) => h.id));
        const got = await coll.search(q, { k: 10, consistency: 'strong', withMetadata: false });
        hit += got.hits.filter((h) => want.has(h.id)).length;
      }
      return hit / (10 * QUERIES);
    };
    const node = cluster.nodes.get('n1');
    const pid = node?.proc?.pid;
    assert.ok(node && pid, 'the node runs');
    const measure = async (): Promise<{ memory: number; disk: number; parts: string }> => {
      // a moment for the node's flushes, checkpoint and compaction after the last write
      await new Promise((r) => setTimeout(r, 1_000));
      const d = await dataDirBreakdown(node.dataDir);
      const l = d.lmdb;
      const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
      const db = (name: string): string => mib((l.dbs[name]?.pages ?? 0) * l.pageSize);
      const parts = `data.mdb ${mib(l.fileBytes)} (points ${db('points')}, raft-log ${db('raft-log')}, shard-meta ${db('shard-meta')}, free ${mib(l.freePages * l.pageSize)}), checkpoints ${mib(d.checkpoints.bytes)} in ${d.checkpoints.dirs}`;
      return { memory: rssAnonOf(pid), disk: d.totalBytes, parts };
    };

    let next = 0;
    await upsert(Array.from({ length: N }, () => ({ id: `p${next++}`, vector: vector() })));
    assert.equal(await coll.count({ consistency: 'strong' }), N);
    const r0 = await recall();
    const m0 = await measure();
    const rows = [`load: recall ${r0.toFixed(3)}, RssAnon ${(m0.memory / 2 ** 20).toFixed(1)} MiB, disk ${(m0.disk / 2 ** 20).toFixed(1)} MiB: ${m0.parts}`];

    for (let round = 1; round <= ROUNDS; round++) {
      const ids = [...live.keys()];
      // a seeded shuffle: which half is replaced
      for (let i = ids.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [ids[i], ids[j]] = [ids[j] as string, ids[i] as string];
      }
      const quarter = N / 4;
      await upsert(ids.slice(0, quarter).map((id) => ({ id, vector: vector() })));
      await remove(ids.slice(quarter, 2 * quarter));
      await upsert(Array.from({ length: quarter }, () => ({ id: `p${next++}`, vector: vector() })));
      assert.equal(await coll.count({ consistency: 'strong' }), N, `count after round ${round}`);
      const r = await recall();
      const m = await measure();
      rows.push(`round ${round}: recall ${r.toFixed(3)}, RssAnon ${(m.memory / 2 ** 20).toFixed(1)} MiB (${(m.memory / m0.memory).toFixed(2)}x), disk ${(m.disk / 2 ** 20).toFixed(1)} MiB (${(m.disk / m0.disk).toFixed(2)}x): ${m.parts}`);
      const table = rows.join('\n');
      assert.ok(r >= r0 - RECALL_TOLERANCE, `recall after round ${round} ${r.toFixed(3)} < ${r0.toFixed(3)} - ${RECALL_TOLERANCE}\n${table}`);
      assert.ok(m.memory <= MEMORY_BOUND * m0.memory + MEMORY_SLACK, `RssAnon after round ${round} is ${(m.memory / m0.memory).toFixed(2)}x the first load's\n${table}`);
      assert.ok(m.disk <= DISK_BOUND * m0.disk, `the data directory after round ${round} is ${(m.disk / m0.disk).toFixed(2)}x the first load's\n${table}`);
    }
    console.log(`# ${rows.join('\n# ')}`);
  });
});
