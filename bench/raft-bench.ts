/**
 * `npm run bench:raft`: one Raft group of three node processes (test/fixtures/raft-node.ts) on
 * one nats-server on loopback, LMDB on disk, default timing. Measures committed entries/s and
 * commit latency with 1 and 64 concurrent proposers (each write a request to the leader's node
 * process, answered once the entry is committed and applied there), the time from a leader's
 * SIGKILL to the first commit under its successor, and the CPU that 1,000 idle groups per node
 * cost with quiescence and without. In the same run, the anchors: raw LMDB flushed commits,
 * raw NATS request-reply round trips (responder in its own process), and a JetStream stream
 * with 3 replicas on three clustered nats-servers (publish with acks).
 *
 * ROUNDS (default 3), PHASE_MS (default 3000), KILLS (default 10), PAYLOAD (bytes, default 100),
 * IDLE_GROUPS (default 1000), IDLE_MS (default 10000) tune the run.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { NATS_CONNECTION_DEFAULTS } from '../src/runtime/actor-system.js';
import { startNatsServer, type NatsServer } from '../src/runtime/nats-server.js';
import { openNodeEnv } from '../src/storage/node-env.js';
import { RaftProcessCluster, sleep } from '../test/helpers/raft-cluster.js';
import { fmt, median, percentile, sortedCopy } from './lib/stats.js';
import { machine, today, writeSection } from './lib/report.js';
import { leaderKillToCommit } from './lib/raft-failover.js';

const ROUNDS = Number(process.env['ROUNDS'] ?? 3);
const PHASE_MS = Number(process.env['PHASE_MS'] ?? 3000);
const KILLS = Number(process.env['KILLS'] ?? 10);
const PAYLOAD = Number(process.env['PAYLOAD'] ?? 100);
const IDLE_GROUPS = Number(process.env['IDLE_GROUPS'] ?? 1000);
const IDLE_MS = Number(process.env['IDLE_MS'] ?? 10_000);
const MANY = 64;

interface Phase {
  perSec: number;
  p50ms: number;
  p99ms: number;
  /** CPU (user + system) per operation, µs, of each watched process. */
  cpuUs?: Record<string, number>;
}

type Op = () => Promise<unknown>;

/** CPU time (user + system) a process has used, ms, from /proc (clock ticks are 1/100 s on Linux). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Runs `op` with `inFlight` callers for `ms`; with `watch` (name → pid), also the CPU each process spent per op. */
async function run(op: Op, inFlight: number, ms: number, watch?: Record<string, number>): Promise<Phase> {
  const lat: number[] = [];
  const cpu0 = watch && Object.fromEntries(Object.entries(watch).map(([k, pid]) => [k, cpuMs(pid)]));
  const t0 = performance.now();
  const end = t0 + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await op();
        lat.push(performance.now() - s);
      }
    }),
  );
  const sorted = sortedCopy(lat);
  const cpuUs = watch && cpu0 && Object.fromEntries(Object.entries(watch).map(([k, pid]) => [k, ((cpuMs(pid) - (cpu0[k] as number)) * 1000) / lat.length]));
  return { perSec: lat.length / ((performance.now() - t0) / 1000), p50ms: percentile(sorted, 50), p99ms: percentile(sorted, 99), cpuUs };
}

function med(ps: Phase[]): Phase {
  const keys = Object.keys(ps[0]?.cpuUs ?? {});
  const cpuUs = keys.length > 0 ? Object.fromEntries(keys.map((k) => [k, median(ps.map((p) => p.cpuUs?.[k] ?? Number.NaN))])) : undefined;
  return { perSec: median(ps.map((p) => p.perSec)), p50ms: median(ps.map((p) => p.p50ms)), p99ms: median(ps.map((p) => p.p99ms)), cpuUs };
}

async function lmdbAnchor(inFlight: number, ms: number): Promise<Phase> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-lmdb-'));
  const env = openNodeEnv({ path: dir });
  const db = env.openDB<Uint8Array, number>('bench', { encoding: 'binary' });
  const value = new Uint8Array(PAYLOAD);
  let k = 0;
  const res = await run(async () => {
    void db.put(k++, value);
    await new Promise<void>((resolve, reject) => env.flushed.then(() => resolve(), reject));
  }, inFlight, ms);
  await env.close();
  rmSync(dir, { recursive: true, force: true });
  return res;
}

/** Three processes at once, each committing durably one at a time, as three nodes on this machine share its disk: per-process rate and latency, medians of the three. */
async function lmdbSharedDisk(ms: number): Promise<Phase> {
  const script = new URL('./lmdb-writer.js', import.meta.url).pathname;
  const outs = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<Phase>((resolve, reject) => {
          const p = spawn(process.execPath, [script, String(ms), String(PAYLOAD)], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          p.stdout.on('data', (d: Buffer) => (out += d.toString()));
          p.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Phase) : reject(new Error(`lmdb-writer exited with ${code}`))));
        }),
    ),
  );
  return med(outs);
}

async function startResponder(url: string): Promise<() => void> {
  const p = spawn(process.execPath, [new URL('./runtime-responder.js', import.meta.url).pathname, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    p.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    p.once('exit', (c) => reject(new Error(`responder exited with ${c}`)));
  });
  return () => p.kill('SIGTERM');
}

async function jetstreamCluster(): Promise<{ servers: NatsServer[]; nc: NatsConnection }> {
  const base = 16_000 + Math.floor(Math.random() * 20_000);
  const routes = [0, 1, 2].map((i) => `nats://127.0.0.1:${base + i}`);
  const servers = await Promise.all(
    [0, 1, 2].map((i) => startNatsServer({ serverName: `js${i}`, cluster: { name: 'bench', port: base + i, routes: routes.filter((_, j) => j !== i) } })),
  );
  const nc = await connect({ servers: servers.map((s) => s.url), ...NATS_CONNECTION_DEFAULTS });
  // The cluster elects its JetStream meta leader first: retry until it answers.
  for (let i = 0; ; i++) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: 2_000 });
      await jsm.streams.add({ name: 'BENCH', subjects: ['bench.js'], num_replicas: 3 });
      break;
    } catch (err) {
      if (i > 30) throw err;
      await sleep(500);
    }
  }
  return { servers, nc };
}

async function main(): Promise<void> {
  const payload = new Uint8Array(PAYLOAD).fill(7);
  const server = await startNatsServer({ jetstream: false });
  const cluster = await RaftProcessCluster.start(server, ['n1', 'n2', 'n3']);
  const stopResponder = await startResponder(server.url);
  stopChildren = () => {
    stopResponder();
    for (const p of cluster.procs.values()) p.kill('SIGKILL');
  };
  const raw = await connect({ servers: server.url, ...NATS_CONNECTION_DEFAULTS });
  const js = await jetstreamCluster();
  const jsc = jetstream(js.nc);

  let leader = await cluster.waitForLeader();
  const raftOp: Op = async () => {
    const r = await cluster.append(leader, payload, 'g0', 10_000);
    if (r.index === undefined) throw new Error(`write failed: ${JSON.stringify(r.error)}`);
  };
  const rawOp: Op = () => raw.request('bench.raw.echo', payload, { timeout: 10_000 });
  const jsOp: Op = () => jsc.publish('bench.js', payload);
  const raft256: Phase[] = [];
  const lmdb1: Phase[] = [];
  const lmdb64: Phase[] = [];
  const lmdbShared: Phase[] = [];
  // Per node, over the 1-proposer Raft phases: write turns (each one LMDB transaction and flush) and the time they waited for their flush.
  const flushAt1 = new Map<string, { writeTurns: number; flushWaitMs: number }>();
  type HostStats = { host: { writeTurns: number; flushWaitMs: number } };
  const hostStats = (): Promise<HostStats[]> => Promise.all(cluster.nodes.map((n) => cluster.ask<HostStats>(n, { op: 'cpu' })));
  const ops: Record<string, Op> = { raft: raftOp, nats: rawOp, js: jsOp };
  const one: Record<string, Phase[]> = { raft: [], nats: [], js: [] };
  const many: Record<string, Phase[]> = { raft: [], nats: [], js: [] };
  for (const name of Object.keys(ops)) await run(ops[name] as Op, 8, 500); // warm-up
  // CPU per op at MANY: the benchmark process (the client) and every process serving the writes.
  const pidOf = (n: string): number => cluster.procs.get(n)?.pid as number;
  const followers = cluster.nodes.filter((n) => n !== leader);
  const watch: Record<string, Record<string, number>> = {
    raft: { client: process.pid, 'nats-server': server.pid, leader: pidOf(leader), follower1: pidOf(followers[0] as string), follower2: pidOf(followers[1] as string) },
    js: { client: process.pid, ...Object.fromEntries(js.servers.map((s, i) => [`server${i + 1}`, s.pid])) },
  };
  const leaderInRounds = leader;
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of Object.keys(ops)) {
      const before = name === 'raft' ? await hostStats() : undefined;
      one[name]?.push(await run(ops[name] as Op, 1, PHASE_MS));
      if (before) {
        const after = await hostStats();
        cluster.nodes.forEach((n, i) => {
          const acc = flushAt1.get(n) ?? { writeTurns: 0, flushWaitMs: 0 };
          acc.writeTurns += (after[i]?.host.writeTurns ?? 0) - (before[i]?.host.writeTurns ?? 0);
          acc.flushWaitMs += (after[i]?.host.flushWaitMs ?? 0) - (before[i]?.host.flushWaitMs ?? 0);
          flushAt1.set(n, acc);
        });
      }
      many[name]?.push(await run(ops[name] as Op, MANY, PHASE_MS, watch[name]));
    }
    raft256.push(await run(raftOp, 4 * MANY, PHASE_MS, watch['raft']));
    lmdb1.push(await lmdbAnchor(1, PHASE_MS));
    lmdb64.push(await lmdbAnchor(MANY, PHASE_MS));
    lmdbShared.push(await lmdbSharedDisk(PHASE_MS));
    process.stderr.write(`round ${r + 1}/${ROUNDS}: raft ${fmt(many['raft']?.[r]?.perSec ?? 0, 0)}/s, JetStream R3 ${fmt(many['js']?.[r]?.perSec ?? 0, 0)}/s at ${MANY}\n`);
  }

  // Leader SIGKILL → first commit under its successor.
  const failovers = await leaderKillToCommit(cluster, KILLS, async (l) => {
    leader = l;
    await raftOp();
  });
  await cluster.stop();

  // Idle groups: CPU of the three node processes with 1,000 quiet groups each.
  const idle = async (quiesceTicks: number): Promise<number[]> => {
    const c = await RaftProcessCluster.start(server, ['i1', 'i2', 'i3'], ['--groups', String(IDLE_GROUPS), '--quiesce', String(quiesceTicks)]);
    const settleUntil = Date.now() + 60_000;
    for (;;) {
      const led = await Promise.all(c.nodes.map((n) => c.ask<number>(n, { op: 'leaders' }, 10_000)));
      if (led.reduce((a, b) => a + b, 0) >= IDLE_GROUPS || Date.now() > settleUntil) break;
      await sleep(500);
    }
    await sleep(3_000); // let the groups quiesce (20 ticks) and the start-up work end
    const before = await Promise.all(c.nodes.map((n) => c.ask<{ user: number; system: number }>(n, { op: 'cpu' })));
    const t0 = performance.now();
    await sleep(IDLE_MS);
    const after = await Promise.all(c.nodes.map((n) => c.ask<{ user: number; system: number }>(n, { op: 'cpu' })));
    const secs = (performance.now() - t0) / 1000;
    await c.stop();
    return after.map((a, i) => ((a.user + a.system - ((before[i] as { user: number }).user + (before[i] as { system: number }).system)) / 1e6 / secs) * 100);
  };
  const quiet = await idle(20);
  const busy = await idle(0);

  const raft1 = med(one['raft'] ?? []);
  const raft64 = med(many['raft'] ?? []);
  const nats1 = med(one['nats'] ?? []);
  const nats64 = med(many['nats'] ?? []);
  const js1 = med(one['js'] ?? []);
  const js64 = med(many['js'] ?? []);
  const l1 = med(lmdb1);
  const l64 = med(lmdb64);
  const lShared = med(lmdbShared);
  const flushLine = cluster.nodes
    .map((n) => {
      const f = flushAt1.get(n) ?? { writeTurns: 0, flushWaitMs: 0 };
      const writes = (one['raft'] ?? []).reduce((acc, p) => acc + (p.perSec * PHASE_MS) / 1000, 0);
      return `${n === leaderInRounds ? 'leader' : 'follower'} ${n} ${fmt(f.writeTurns / writes, 2)} flushed transactions, each waited ${fmt(f.flushWaitMs / Math.max(1, f.writeTurns), 2)} ms`;
    })
    .join('; ');
  const fo = sortedCopy(failovers);
  const row = (name: string, p: Phase): string => `| ${name} | ${fmt(p.perSec, 0)} | ${fmt(p.p50ms, 2)} | ${fmt(p.p99ms, 2)} |`;
  const ratio = (a: number, b: number): string => `${fmt(a / b, 2)}×`;
  const cpu = (xs: number[]): string => xs.map((x) => `${fmt(x, 1)}%`).join(', ');
  const perOp = (p: Phase): string => {
    const us = p.cpuUs ?? {};
    const total = Object.values(us).reduce((a, b) => a + b, 0);
    return `${Object.entries(us).map(([k, v]) => `${k} ${fmt(v, 0)}`).join(', ')}; total **${fmt(total, 0)} µs**`;
  };
  const cpuTotal = (p: Phase): number => Object.values(p.cpuUs ?? {}).reduce((a, b) => a + b, 0);
  const cores = cpus().length;
  const body = [
    '## Raft: one group of three node processes (`npm run bench:raft`)',
    '',
    `Run ${today()} on ${machine()}. Three node processes (test/fixtures/raft-node.ts: RaftHost, default timing, LMDB on disk,`,
    `a durable append-only list as state machine) on one nats-server on loopback; the client in the benchmark process writes`,
    `${PAYLOAD}-byte entries to the leader's process, which answers once the entry is committed and applied there. ${ROUNDS} rounds of`,
    `${PHASE_MS} ms per phase, anchors in the same rounds; medians over rounds.`,
    '',
    '| path | ops/s | p50 ms | p99 ms |',
    '|---|---:|---:|---:|',
    row('Shoal Raft write (commit on 2 of 3, flushed), 1 proposer', raft1),
    row(`Shoal Raft write, ${MANY} proposers`, raft64),
    row(`Shoal Raft write, ${4 * MANY} proposers`, med(raft256)),
    row('JetStream R3 publish (3 clustered servers), 1 in flight', js1),
    row(`JetStream R3 publish, ${MANY} in flight`, js64),
    row('raw NATS request-reply (responder process), 1 in flight', nats1),
    row(`raw NATS request-reply, ${MANY} in flight`, nats64),
    row('raw LMDB put + flushed, 1 writer', l1),
    row(`raw LMDB put + flushed, ${MANY} writers`, l64),
    row('raw LMDB put + flushed, 1 writer in each of 3 processes at once (per process)', lShared),
    '',
    `Ratios: Raft/JetStream R3 at ${MANY}: **${ratio(raft64.perSec, js64.perSec)}** (goal ≥ 1×); at 1: ${ratio(raft1.perSec, js1.perSec)};`,
    `Raft write p50 at 1 proposer / raw NATS round trip p50: ${ratio(raft1.p50ms, nats1.p50ms)}; Raft at 1 / raw LMDB flushed commits: ${ratio(raft1.perSec, l1.perSec)}.`,
    'Debian\'s nats-server 2.9 fsyncs JetStream only every two minutes, so that anchor acknowledges before its data is on disk;',
    'Shoal flushes LMDB on the leader and a follower before every acknowledgement.',
    '',
    `At 1 proposer, per write: ${flushLine}. The three nodes share this machine's one disk: three processes`,
    `flushing at once wait ${fmt(lShared.p50ms, 2)} ms at p50 for a commit that takes ${fmt(l1.p50ms, 2)} ms alone (${ratio(lShared.p50ms, l1.p50ms)}). A write waits for the later of the leader's`,
    'flush and the fastest follower\'s, and the leader commits twice per write (the entry, then its apply in a transaction of its own),',
    'so the next write\'s flush there often queues behind the last one. Rounds of that latency, and CPU (below), bound the 64-proposer rate.',
    '',
    `CPU per write (user + system, µs, medians over rounds) at ${MANY} in flight — Raft: ${perOp(raft64)}; JetStream R3: ${perOp(js64)};`,
    `Raft at ${4 * MANY}: ${perOp(med(raft256))}. With ${cores} cores, the processes together cannot go faster than ${cores} s of CPU per second:`,
    `at most ${fmt((cores * 1e6) / cpuTotal(raft64), 0)} Raft writes/s at the CPU cost of ${MANY} in flight (${fmt((cores * 1e6) / cpuTotal(med(raft256)), 0)} at ${4 * MANY}), ${fmt((cores * 1e6) / cpuTotal(js64), 0)} JetStream R3 publishes/s.`,
    `Bigger batches cost less CPU per write, which is why Raft throughput still grows from ${MANY} to ${4 * MANY} proposers (${ratio(med(raft256).perSec, raft64.perSec)}).`,
    '',
    `Leader SIGKILL → first commit under its successor (${KILLS} kills, the successor's clock): p50 **${fmt(percentile(fo, 50), 0)} ms**, p99 **${fmt(percentile(fo, 99), 0)} ms**, max ${fmt(fo[fo.length - 1] ?? Number.NaN, 0)} ms (goal p99 < 1,000 ms).`,
    '',
    `Idle groups: ${IDLE_GROUPS} groups on each of the three nodes (every node a voter of every group), CPU per node process over ${IDLE_MS / 1000} s`,
    `once elected: with quiescence (default) ${cpu(quiet)} of one core; without (every leader heartbeats every 100 ms) ${cpu(busy)}.`,
    `Quiescence cuts idle CPU to ${fmt((median(quiet) / median(busy)) * 100, 1)}% of the heartbeating cost.`,
  ].join('\n');
  process.stdout.write(`${body}\n`);
  writeSection('raft', body);

  await raw.close();
  stopResponder();
  await js.nc.close();
  await Promise.all(js.servers.map((s) => s.stop()));
  await server.stop();
}

process.on('exit', () => stopChildren());
let stopChildren = (): void => undefined;

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:raft failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
