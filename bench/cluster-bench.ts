/**
 * `npm run bench:cluster`: Fashion-MNIST (60,000 × 784, L2) loaded through the public API into a
 * real cluster of 3 node processes (2 shards × 3 replicas), then searched at recall@10 ≥ 0.95
 * with 1 and 32 concurrent clients for each read consistency. In the same run, the anchor: raw
 * hnswlib-node on one thread with the same parameters (insert rate; search QPS at the same
 * recall). Goals: recall through the cluster at least the raw index's at equal ef; QPS with 32
 * clients at least 50% of raw single-thread hnswlib; ingest at least a third of raw hnswlib's
 * single-thread insert rate (three replicas each build their index on the same two cores).
 *
 * The operating points: the cluster searches at the smallest ef of the ladder whose recall@10
 * through it is at least 0.95; the anchor searches at the smallest ef whose raw recall is at
 * least that (the same recall). Two shards searched at one ef and merged find more than one
 * index searched at that ef, so equal recall is not equal ef; the ratio at equal ef is printed
 * too, for reference.
 *
 * N (points, default 60000), QUERIES (default 1000), EFS (the ef ladder, default
 * "10,12,16,24,32,64,128"), SEARCH_S (seconds per concurrency phase, default 10) and ROUNDS
 * (turns of the 32-client phases, default 3) tune the run; NODE_ARGS adds Node flags to the node
 * processes (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them).
 */
import { performance } from 'node:perf_hooks';
import hnswlib from 'hnswlib-node';
import type { Consistency } from '../src/api/types.js';
import type { ShoalClient } from '../src/client/client.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { loadFashionMnist, row } from './lib/fashion-mnist.js';
import { groundTruth, recallAt } from './lib/ground-truth.js';
import { machine, today, writeSection } from './lib/report.js';
import { fmt, percentile, sortedCopy } from './lib/stats.js';

const N = Number(process.env['N'] ?? 60_000);
const QUERIES = Number(process.env['QUERIES'] ?? 1_000);
const EFS = (process.env['EFS'] ?? '10,12,16,24,32,64,128').split(',').map(Number);
const SEARCH_S = Number(process.env['SEARCH_S'] ?? 10);
const ROUNDS = Number(process.env['ROUNDS'] ?? 3);
const NODE_ARGS = (process.env['NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
const K = 10;
const M = 16;
const EF_CONSTRUCTION = 200;
const BATCH = 250; // 250 × 784 float32 ≈ 784 KB: under NATS's default 1 MiB max payload
const INGEST_IN_FLIGHT = 4;
const TARGET_RECALL = 0.95;

const log = (s: string): void => void process.stderr.write(`${s}\n`);

interface SearchPhase {
  qps: number;
  p50: number;
  p99: number;
  /** Every search's latency, ms. */
  lat: number[];
}

async function searchLoad(client: ShoalClient, queries: Float32Array[], ef: number, consistency: Consistency, concurrency: number, seconds: number): Promise<SearchPhase> {
  const coll = client.collection('fmnist');
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const q = queries[next++ % queries.length] as Float32Array;
        const t = performance.now();
        await coll.search(q, { k: K, ef, consistency, withMetadata: false, timeoutMs: 30_000 });
        lat.push(performance.now() - t);
      }
    }),
  );
  const s = sortedCopy(lat);
  return { qps: lat.length / seconds, p50: percentile(s, 50), p99: percentile(s, 99), lat };
}

async function main(): Promise<void> {
  const ds = loadFashionMnist();
  const dim = ds.dim;
  const gt = await groundTruth({ name: `fmnist-l2-n${N}`, dim, k: K, train: ds.train.subarray(0, N * dim), test: ds.test, queries: QUERIES });
  const queries = Array.from({ length: QUERIES }, (_, q) => new Float32Array(row(ds.test, dim, q)));

  // ---- anchor: raw hnswlib-node, one thread ----
  log(`raw hnswlib: building ${N} points (m ${M}, efConstruction ${EF_CONSTRUCTION})`);
  const raw = new hnswlib.HierarchicalNSW('l2', dim);
  raw.initIndex({ maxElements: N, m: M, efConstruction: EF_CONSTRUCTION, randomSeed: 100 });
  let t0 = performance.now();
  for (let i = 0; i < N; i++) raw.addPoint(Array.from(row(ds.train, dim, i)), i);
  const rawInsertRate = N / ((performance.now() - t0) / 1000);
  const rawQueries = queries.map((q) => Array.from(q));
  const rawByEf = EFS.map((ef) => {
    raw.setEf(ef);
    const found: number[][] = [];
    const t = performance.now();
    for (const q of rawQueries) found.push(raw.searchKnn(q, K).neighbors);
    return { ef, recall: recallAt(K, gt, found), qps: QUERIES / ((performance.now() - t) / 1000) };
  });
  log(`raw: ${fmt(rawInsertRate, 0)} inserts/s; ${rawByEf.map((r) => `ef ${r.ef}: recall ${r.recall.toFixed(4)} ${fmt(r.qps, 0)} QPS`).join('; ')}`);

  // ---- the cluster ----
  const cluster = await TestCluster.start({ nodes: 3, nodeArgs: NODE_ARGS });
  try {
    const client = await cluster.client({ encoding: 'cbor', timeoutMs: 30_000 });
    await client.createCollection({ name: 'fmnist', dim, metric: 'l2', shards: 2, replicas: 3, hnsw: { m: M, efConstruction: EF_CONSTRUCTION, ef: 64 } });
    const coll = client.collection('fmnist');
    log(`cluster: ingesting ${N} points in batches of ${BATCH}, ${INGEST_IN_FLIGHT} in flight, write concern majority`);
    t0 = performance.now();
    let sent = 0;
    let nextBatch = 0;
    await Promise.all(
      Array.from({ length: INGEST_IN_FLIGHT }, async () => {
        for (let b = nextBatch++; b * BATCH < N; b = nextBatch++) {
          const from = b * BATCH;
          const to = Math.min(N, from + BATCH);
          const pts = [];
          for (let i = from; i < to; i++) pts.push({ id: String(i), vector: row(ds.train, dim, i) });
          sent += await coll.upsert(pts, { timeoutMs: 60_000 });
          if (b % 40 === 0) log(`  ${sent} points`);
        }
      }),
    );
    const ingestRate = N / ((performance.now() - t0) / 1000);
    log(`cluster ingest: ${fmt(ingestRate, 0)} points/s (majority)`);
    // every replica applied everything before reads at `eventual` are measured
    await cluster.waitFor(async () => {
      const d = await client.describeCollection('fmnist', 5_000);
      return d.count === N && d.shards.every((s) => s.replicas.every((r) => r.matchIndex >= s.commitIndex));
    }, 'replicas caught up', 600_000);

    // recall through the cluster at each ef (strong reads: the leader's index)
    const clusterByEf: { ef: number; recall: number }[] = [];
    for (const ef of EFS) {
      const found: number[][] = [];
      for (const q of queries) {
        const r = await coll.search(q, { k: K, ef, consistency: 'leased', withMetadata: false });
        found.push(r.hits.map((h) => Number(h.id)));
      }
      clusterByEf.push({ ef, recall: recallAt(K, gt, found) });
      log(`cluster ef ${ef}: recall ${recallAt(K, gt, found).toFixed(4)}`);
    }
    const clusterAt = clusterByEf.find((r) => r.recall >= TARGET_RECALL) ?? (clusterByEf[clusterByEf.length - 1] as { ef: number; recall: number });
    const chosen = clusterAt.ef;
    // Raw's operating point: the smallest ef, in steps of 1 (the ladder's steps are too coarse to
    // call two recalls the same), whose recall is at least the cluster's.
    const rawRecallAt = (ef: number): number => {
      raw.setEf(ef);
      return recallAt(K, gt, rawQueries.map((q) => raw.searchKnn(q, K).neighbors));
    };
    const maxEf = EFS[EFS.length - 1] as number;
    let rawAt = { ef: maxEf, recall: (rawByEf[rawByEf.length - 1] as { recall: number }).recall };
    for (let ef = EFS[0] as number; ef <= maxEf; ef++) {
      const recall = rawByEf.find((r) => r.ef === ef)?.recall ?? rawRecallAt(ef);
      if (recall >= clusterAt.recall) {
        rawAt = { ef, recall };
        break;
      }
    }
    const rawSameEf = rawByEf.find((r) => r.ef === chosen) as { ef: number; recall: number };

    // The anchor's search rate over a phase as long as the cluster's, before and after them: this
    // machine is shared and its speed drifts; the ratios use the faster of the two.
    const rawLoad = (ef: number): number => {
      raw.setEf(ef);
      let n = 0;
      const t = performance.now();
      const end = t + SEARCH_S * 1000;
      while (performance.now() < end) for (let i = 0; i < 50; i++, n++) raw.searchKnn(rawQueries[n % rawQueries.length] as number[], K);
      return n / ((performance.now() - t) / 1000);
    };
    const rawBefore = rawLoad(rawAt.ef);
    const rawSameEfBefore = rawAt.ef === chosen ? rawBefore : rawLoad(chosen);
    log(`raw search at ef ${rawAt.ef} (the cluster's recall): ${fmt(rawBefore, 0)} QPS, at ef ${chosen}: ${fmt(rawSameEfBefore, 0)} QPS (before the cluster phases)`);
    const phases: { consistency: Consistency; c: number; r: SearchPhase }[] = [];
    const modes: Consistency[] = ['strong', 'leased', 'eventual'];
    for (const consistency of modes) {
      const r = await searchLoad(client, queries, chosen, consistency, 1, SEARCH_S);
      phases.push({ consistency, c: 1, r });
      log(`search ${consistency} × 1: ${fmt(r.qps, 0)} QPS, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms`);
    }
    // With 32 clients the consistencies take turns, ROUNDS times, each round starting with the
    // next one: the machine's speed drifts during a run, and one phase each in a fixed order
    // would hand that drift to whichever came last. QPS is the median of the rounds.
    const rounds = new Map<Consistency, SearchPhase[]>(modes.map((m) => [m, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < modes.length; k++) {
        const consistency = modes[(round + k) % modes.length] as Consistency;
        const r = await searchLoad(client, queries, chosen, consistency, 32, SEARCH_S);
        rounds.get(consistency)?.push(r);
        log(`search ${consistency} × 32, round ${round + 1}: ${fmt(r.qps, 0)} QPS, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms`);
      }
    }
    for (const consistency of modes) {
      const rs = rounds.get(consistency) ?? [];
      const lat = sortedCopy(rs.flatMap((r) => r.lat));
      const qps = sortedCopy(rs.map((r) => r.qps));
      phases.push({ consistency, c: 32, r: { qps: percentile(qps, 50), p50: percentile(lat, 50), p99: percentile(lat, 99), lat: [] } });
    }
    const roundQps = modes.map((m) => `${m} ${(rounds.get(m) ?? []).map((r) => fmt(r.qps, 0)).join(' / ')}`).join('; ');

    const rawAfter = rawLoad(rawAt.ef);
    const rawSameEfAfter = rawAt.ef === chosen ? rawAfter : rawLoad(chosen);
    log(`raw search at ef ${rawAt.ef}: ${fmt(rawAfter, 0)} QPS, at ef ${chosen}: ${fmt(rawSameEfAfter, 0)} QPS (after)`);
    const rawQps = Math.max(rawBefore, rawAfter);
    const rawSameEfQps = Math.max(rawSameEfBefore, rawSameEfAfter);
    const ratio = (a: number, b: number): string => `${fmt(a / b, 2)}×`;
    const body = [
      `## Cluster: Fashion-MNIST through the API (\`npm run bench:cluster\`)`,
      '',
      `Run ${today()} on ${machine()}. Three \`shoal node\` processes and one nats-server on this machine;`,
      `collection of ${N} × ${dim} float32 points (L2), 2 shards × 3 replicas, HNSW m ${M}, efConstruction ${EF_CONSTRUCTION};`,
      `the client in the benchmark process speaks CBOR. ${QUERIES} queries with exact ground truth; search phases of ${SEARCH_S} s;`,
      `with 32 clients the three consistencies take turns ${ROUNDS} times (each round starting with the next one) and the table shows the median QPS of the rounds (${roundQps}), latencies over all of them.`,
      `The anchor, raw hnswlib-node on one thread with the same parameters, was built and its recall measured in the same process before the cluster started; its search rate was measured for ${SEARCH_S} s before and again after the cluster's search phases (the cluster idle).`,
      '',
      '| recall@10 by ef | ' + EFS.join(' | ') + ' |',
      '|---|' + EFS.map(() => '---:').join('|') + '|',
      `| raw hnswlib (one index) | ${rawByEf.map((r) => r.recall.toFixed(4)).join(' | ')} |`,
      `| Shoal (2 shards, merged) | ${clusterByEf.map((r) => r.recall.toFixed(4)).join(' | ')} |`,
      '',
      `Operating points: Shoal at ef ${chosen}, the smallest ef of the ladder with recall@10 ≥ ${TARGET_RECALL} through it (${clusterAt.recall.toFixed(4)});`,
      `raw hnswlib at ef ${rawAt.ef}, the smallest ef (in steps of 1) with a recall at least that (${rawAt.recall.toFixed(4)}): the same recall. Raw at ef ${chosen} (recall ${rawSameEf.recall.toFixed(4)}) is shown for reference.`,
      '',
      '| path | clients | QPS | p50 ms | p99 ms |',
      '|---|---:|---:|---:|---:|',
      `| raw hnswlib-node, one thread, ef ${rawAt.ef} (before / after the cluster phases) | 1 | ${fmt(rawBefore, 0)} / ${fmt(rawAfter, 0)} | | |`,
      ...(rawAt.ef === chosen ? [] : [`| raw hnswlib-node, one thread, ef ${chosen} (before / after) | 1 | ${fmt(rawSameEfBefore, 0)} / ${fmt(rawSameEfAfter, 0)} | | |`]),
      ...phases.map((p) => `| Shoal search, ${p.consistency} | ${p.c} | ${fmt(p.r.qps, 0)} | ${fmt(p.r.p50, 2)} | ${fmt(p.r.p99, 2)} |`),
      '',
      `| ingest | points/s |`,
      `|---|---:|`,
      `| raw hnswlib-node insert, one thread | ${fmt(rawInsertRate, 0)} |`,
      `| Shoal upsert through the API (batches of ${BATCH}, ${INGEST_IN_FLIGHT} in flight, majority) | ${fmt(ingestRate, 0)} |`,
      '',
      'Ratios against the goals:',
      `- recall through the cluster vs raw at equal ef: ${clusterByEf.map((r, i) => `ef ${r.ef} ${(r.recall - (rawByEf[i]?.recall ?? 0) >= 0 ? '+' : '')}${(r.recall - (rawByEf[i]?.recall ?? 0)).toFixed(4)}`).join(', ')} (goal ≥ 0);`,
      `- QPS with 32 clients / raw single-thread QPS at the same recall: ${phases.filter((p) => p.c === 32).map((p) => `${p.consistency} ${ratio(p.r.qps, rawQps)}`).join(', ')} (goal ≥ 0.5×; against the faster raw phase);`,
      `  for reference, against raw at the same ef (${chosen}), which has the lower recall: ${phases.filter((p) => p.c === 32).map((p) => `${p.consistency} ${ratio(p.r.qps, rawSameEfQps)}`).join(', ')};`,
      `- ingest / raw single-thread insert rate: ${ratio(ingestRate, rawInsertRate)} (goal ≥ 0.33×).`,
    ].join('\n');
    process.stdout.write(`${body}\n`);
    writeSection('cluster', body);
  } finally {
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:cluster failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
