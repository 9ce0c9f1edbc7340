/** bench:reshard's figures, in bench/RESULTS.md's style: durations and ratios, the phase timeline, search and CPU by window. */
import type { Interval } from './intervals.js';
import { MACHINE, type CpuSampler } from './proc-cpu.js';
import { machine, today } from './report.js';
import type { SearchLoad, WindowFigures } from './search-load.js';
import { fmt } from './stats.js';

/** One describe of the collection while it reshards: its phase (null: done) and each shard's commit index. */
export interface Poll {
  at: number;
  phase: string | null;
  commits: number[];
}

export interface ReportInput {
  n: number;
  dim: number;
  clients: number;
  k: number;
  batch: number;
  inFlight: number;
  fromShards: number;
  toShards: number;
  vnodes: number;
  windowS: number;
  pollMs: number;
  moving: number;
  ingestMs: number;
  anchorIdleMs: number;
  anchorLoadedMs: number;
  reshardAt: number;
  doneAt: number;
  polls: Poll[];
  load: SearchLoad;
  windows: Record<'anchorIdle' | 'before' | 'anchorLoaded' | 'after', Interval>;
  cpu: CpuSampler;
  check: { count: number; perShard: number[]; expectedPerShard: number[]; gets: number; badGets: number };
}

const s = (ms: number): string => fmt(ms / 1000, 1);

/** The phases in the order describe showed them, each from the first poll that showed it to the first that showed the next. */
export function phaseTimeline(polls: Poll[], reshardAt: number, doneAt: number): { phase: string; from: number; to: number }[] {
  const out: { phase: string; from: number; to: number }[] = [];
  for (const p of polls) {
    if (p.phase === null) break;
    const last = out[out.length - 1];
    if (last?.phase === p.phase) continue;
    if (last) last.to = p.at;
    out.push({ phase: p.phase, from: out.length === 0 ? reshardAt : p.at, to: doneAt });
  }
  return out;
}

/** For each shard: entries its log gained during the reshard, and the first and last poll at which its commit index moved. */
function shardActivity(polls: Poll[], shards: number): { entries: number; first: number | null; last: number | null }[] {
  return Array.from({ length: shards }, (_, sh) => {
    let first: number | null = null;
    let last: number | null = null;
    let start: number | undefined;
    let prev: number | undefined;
    for (const p of polls) {
      const c = p.commits[sh];
      if (c === undefined) continue;
      start ??= c;
      if (prev !== undefined && c > prev) {
        first ??= p.at;
        last = p.at;
      }
      prev = c;
    }
    return { entries: (prev ?? 0) - (start ?? 0), first, last };
  });
}

export function report(r: ReportInput): string {
  const reshardMs = r.doneAt - r.reshardAt;
  const timeline = phaseTimeline(r.polls, r.reshardAt, r.doneAt);
  const during: Interval = [r.reshardAt, r.doneAt];
  const rate = (ms: number, points: number): string => fmt(points / (ms / 1000), 0);
  const search = {
    before: r.load.window(...r.windows.before),
    anchor: r.load.window(...r.windows.anchorLoaded),
    during: r.load.window(...during),
    after: r.load.window(...r.windows.after),
  };
  const ratioIdle = reshardMs / r.anchorIdleMs;
  const ratioLoaded = reshardMs / r.anchorLoadedMs;
  const qpsRatio = search.during.qps / search.before.qps;
  const c = r.check;
  const correct = c.count === r.n && c.badGets === 0 && c.perShard.every((x, i) => x === c.expectedPerShard[i]);

  const L: string[] = [];
  L.push(`## Online resharding under search load (\`npm run bench:reshard\`)`, '');
  L.push(
    `Run ${today()} on ${machine()}. Three \`shoal node\` processes and one nats-server on this machine;`,
    `collection of ${r.n} × ${r.dim} float32 points (L2), ${r.fromShards} shards × 3 replicas, \`consistent-hash\` (${r.vnodes} vnodes), HNSW m 16, efConstruction 200,`,
    `ingested through the API in upserts of ${r.batch}, ${r.inFlight} in flight (${rate(r.ingestMs, r.n)} points/s), then resharded to ${r.toShards} (\`collections.reshard\`) while ${r.clients} search clients`,
    `in the benchmark process (CBOR, k ${r.k}, the default consistency \`leased\` and ef 64) ran. ${r.moving} of the ${r.n} points change owner (${fmt((100 * r.moving) / r.n, 1)}%; counted with both maps' sharders).`,
    `Reshard duration: from the request to the first describe with \`resharding\` null (describe polled every ${r.pollMs} ms; that also gives the phase timeline).`,
    `Anchor, same run, same cluster: those ${r.moving} points upserted through the API into a fresh collection of ${r.toShards} shards × 3 replicas, in the same upserts`,
    `(${r.batch}, ${r.inFlight} in flight): the work a reshard does (every node inserts every moving point into an empty shard's index) done as an ordinary ingest;`,
    `once idle, once under the same ${r.clients} search clients; each fresh collection dropped before the reshard. One run: no medians over rounds.`,
    '',
  );
  const nodeNames = [...r.cpu.between(...r.windows.before).keys()].filter((k) => /^n\d+$/.test(k)).sort();
  /** CPU seconds the node processes spent in window `w`. */
  const nodeCpuS = (w: Interval): string => fmt((nodeNames.reduce((sum, k) => sum + (r.cpu.between(...w).get(k) ?? 0), 0) / 100) * ((w[1] - w[0]) / 1000), 0);
  L.push('| what | s | points/s | reshard / this | CPU of the nodes, s |', '|---|---:|---:|---:|---:|');
  L.push(`| ingest of all ${r.n} points (${r.fromShards} shards) | ${s(r.ingestMs)} | ${rate(r.ingestMs, r.n)} | | |`);
  L.push(`| anchor: ${r.moving} moving points into ${r.toShards} fresh shards, idle | ${s(r.anchorIdleMs)} | ${rate(r.anchorIdleMs, r.moving)} | ${fmt(ratioIdle, 2)}× | ${nodeCpuS(r.windows.anchorIdle)} |`);
  L.push(`| anchor, under the ${r.clients} search clients | ${s(r.anchorLoadedMs)} | ${rate(r.anchorLoadedMs, r.moving)} | ${fmt(ratioLoaded, 2)}× | ${nodeCpuS(r.windows.anchorLoaded)} |`);
  L.push(`| **reshard ${r.fromShards} → ${r.toShards}**, under the ${r.clients} search clients | **${s(reshardMs)}** | ${rate(reshardMs, r.moving)} | 1.00× | ${nodeCpuS(during)} |`, '');
  L.push('CPU of the nodes: the three node processes\' user + system time in the window, searches included where they ran.', '');

  L.push('Phases (as describe showed them; a phase shorter than a poll may not show):', '');
  L.push(`| phase | from, s | took, s | share | QPS | p50 ms | p99 ms | failed |`, '|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const t of timeline) {
    const w = r.load.window(t.from, t.to);
    L.push(`| ${t.phase} | ${s(t.from - r.reshardAt)} | ${s(t.to - t.from)} | ${fmt((100 * (t.to - t.from)) / reshardMs, 0)}% | ${fmt(w.qps, 0)} | ${fmt(w.p50, 2)} | ${fmt(w.p99, 2)} | ${w.errors} |`);
  }
  L.push('');
  const act = shardActivity(r.polls, r.toShards);
  L.push(
    `Raft entries each shard's log gained during the reshard, and when its commit index moved (s from the request): ` +
      act.map((a, i) => `shard ${i} ${a.entries}${a.first === null ? '' : ` (${s(a.first - r.reshardAt)}–${s((a.last ?? a.first) - r.reshardAt)})`}`).join('; ') +
      '.',
    '',
  );

  const row = (label: string, w: WindowFigures): string => `| ${label} | ${fmt(w.qps, 0)} | ${fmt(w.p50, 2)} | ${fmt(w.p99, 2)} | ${w.errors} |`;
  L.push(`Search, ${r.clients} clients (failed = searches that ended in an error):`, '');
  L.push('| window | QPS | p50 ms | p99 ms | failed |', '|---|---:|---:|---:|---:|');
  L.push(row(`${r.windowS} s before (${r.fromShards} shards)`, search.before));
  L.push(row('anchor ingest under the load', search.anchor));
  L.push(row(`**the reshard** (${s(reshardMs)} s)`, search.during));
  L.push(row(`${r.windowS} s after (${r.toShards} shards)`, search.after), '');

  const nodes = [...new Set([...r.cpu.between(...r.windows.before).keys()])].filter((k) => /^n\d+$/.test(k)).sort();
  const windows: [string, Interval][] = [
    ['anchor, idle', r.windows.anchorIdle],
    [`${r.windowS} s before`, r.windows.before],
    ['anchor, under the search load', r.windows.anchorLoaded],
    ['the reshard', during],
    ...timeline.filter((t) => t.to - t.from >= 1_000).map((t): [string, Interval] => [`of which ${t.phase}`, [t.from, t.to]]),
    [`${r.windowS} s after`, r.windows.after],
  ];
  L.push(
    `CPU, % of one core (/proc/<pid>/stat, all threads; sampled every 200 ms, phases of 1 s or more); "others": the rest of this shared machine at the same time (/proc/stat busy time less ours):`,
    '',
  );
  L.push(`| window | client (bench) | nats-server | ${nodes.join(' | ')} | ours in all | others |`, `|---|---:|---:|${nodes.map(() => '---:|').join('')}---:|---:|`);
  for (const [label, w] of windows) {
    const m = r.cpu.between(...w);
    const ours = ['client', 'nats-server', ...nodes].reduce((sum, k) => sum + (m.get(k) ?? 0), 0);
    const cell = (k: string): string => (m.has(k) ? fmt(m.get(k) as number, 0) : '-');
    L.push(`| ${label} | ${cell('client')} | ${cell('nats-server')} | ${nodes.map(cell).join(' | ')} | ${fmt(ours, 0)} | ${fmt((m.get(MACHINE) ?? 0) - ours, 0)} |`);
  }
  L.push('');

  L.push(
    `After the reshard: \`count\` (strong) ${c.count} (want ${r.n}); per shard ${c.perShard.join(' / ')} (want ${c.expectedPerShard.join(' / ')}, by the new map's sharder); ` +
      `${c.gets - c.badGets} of ${c.gets} gets (strong; half of them moved points) returned the dataset's vector: ${correct ? 'correct' : '**not correct**'}.`,
    '',
  );
  L.push('Goals:');
  L.push(
    `- reshard duration / the idle anchor: **${fmt(ratioIdle, 2)}×** (${s(reshardMs)} / ${s(r.anchorIdleMs)} s; goal ≤ 1×): ${ratioIdle <= 1 ? 'met' : 'not met'}; against the anchor under the same search load ${fmt(ratioLoaded, 2)}×;`,
  );
  L.push(`- search QPS during the reshard / before: **${fmt(qpsRatio, 2)}×** (${fmt(search.during.qps, 0)} / ${fmt(search.before.qps, 0)}; goal ≥ 0.5×): ${qpsRatio >= 0.5 ? 'met' : 'not met'}; p99 ${fmt(search.during.p99, 1)} ms against ${fmt(search.before.p99, 1)} ms before.`);
  return L.join('\n');
}
