/**
 * `npm run bench:exchange`: what one read-confirming Raft exchange costs in CPU, against a raw NATS
 * request-reply in the same run (issue 21, item 5). Three real RaftHosts (three ActorSystems, three
 * LMDB environments) in this process on a real nats-server, GROUPS groups of three voters all led
 * by node a. Then CONCURRENCY loops of `strong` reads, each on its own group in turn:
 * - `follower` (node b asks a for read indexes, RaftHost.followerReadIndex: a `readReq` frame and
 *   its answer per exchange), and
 * - `leader` (node a's own reads, RaftHost.readBarrier: a heartbeat round to one peer and its
 *   acknowledgement per exchange),
 * against raw request-reply loops at the same concurrency and the same payload size (the mean
 * Raft frame of the follower phase): one responder connection, one requester connection with one
 * wildcard reply subscription (`bare`, the floor), and Shoal's InboxRequester (a timer and a
 * promise per request, what the Raft transport requests with).
 *
 * CPU is this process's plus nats-server's, from /proc/<pid>/stat, over PHASE_S seconds per phase,
 * ROUNDS rounds with the phases alternating; medians printed. An exchange is a request frame of the
 * asking node and the frame that answers it (counted from the transports' counters: requests and
 * publishes of the asking side). CONCURRENCY (a list, 1,4), GROUPS (8), ROUNDS (3), PHASE_S (4);
 * PHASES (follower,leader,bare,inbox) and WARM (the warm-up phase, follower) to profile one phase
 * alone; the section `exchange` of bench/RESULTS.md is written unless WRITE=0 (or without `bare`).
 *
 * Why two concurrencies: raw request-replies in flight together share the server's and the
 * kernel's work (a read, a write, a wake-up carry several), while a Raft exchange between two
 * nodes carries all the reads asked meanwhile in one frame. So an exchange is compared both with
 * a raw round trip at the same number of loops and with one alone in flight.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInbox, type NatsConnection } from '@nats-io/transport-node';
import { RaftHost } from '../src/replication/raft-host.js';
import { ActorSystem } from '../src/runtime/actor-system.js';
import { InboxRequester } from '../src/runtime/inbox-requester.js';
import type { NatsServer } from '../src/runtime/nats-server.js';
import { openNodeEnv, type NodeEnv } from '../src/storage/node-env.js';
import { ListStateMachine } from '../test/fixtures/list-state-machine.js';
import { startTestNats } from '../test/helpers/nats.js';
import { readFileSync } from 'node:fs';
import { cpuMs } from './lib/proc-cpu.js';
import { machine, today, writeSection } from './lib/report.js';
import { fmt, median } from './lib/stats.js';

const CONCURRENCIES = (process.env['CONCURRENCY'] ?? '1,4').split(',').map(Number);
const GROUPS = Number(process.env['GROUPS'] ?? 8);
const ROUNDS = Number(process.env['ROUNDS'] ?? 3);
const PHASE_S = Number(process.env['PHASE_S'] ?? 4);
const PHASES = (process.env['PHASES'] ?? 'follower,leader,bare,inbox').split(',');

interface Node {
  id: string;
  env: NodeEnv;
  system: ActorSystem;
  host: RaftHost;
}

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface PhaseResult {
  name: string;
  concurrency: number;
  exchanges: number;
  reads: number;
  cpuUs: number;
  /** nats-server's part of cpuUs. */
  serverUs: number;
  /** This process's user-mode CPU (JavaScript, V8, libuv; not the kernel's socket work). */
  userUs: number;
  wallMs: number;
  msgs: number;
  bytes: number;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'shoal-exchange-'));
  const server: NatsServer = await startTestNats({ jetstream: false });
  const nodes = new Map<string, Node>();
  for (const id of ['a', 'b', 'c']) {
    const env = openNodeEnv({ path: join(root, id) });
    const system = await ActorSystem.connect(server.url, { name: id });
    const host = await RaftHost.start({ system, env, nodeId: id, options: {} });
    nodes.set(id, { id, env, system, host });
  }
  const a = nodes.get('a') as Node;
  const b = nodes.get('b') as Node;
  const groups = Array.from({ length: GROUPS }, (_, i) => `g${i}`);
  for (const g of groups) for (const n of nodes.values()) await n.host.createGroup(g, { voters: ['a', 'b', 'c'], stateMachine: new ListStateMachine(n.env, g) });
  for (const g of groups) {
    for (;;) {
      const lead = [...nodes.values()].find((n) => n.host.roleOf(g).role === 'leader');
      if (lead?.id === 'a' && b.host.roleOf(g).leader === 'a') break;
      if (lead && lead.id !== 'a') await lead.host.transferLeadership(g, 'a').catch(() => undefined);
      await sleep(20);
    }
    await a.host.propose(g, new Uint8Array(8), { concern: 'all', timeoutMs: 5_000 });
  }
  log(`${GROUPS} groups led by a; concurrency ${CONCURRENCIES.join(', ')}`);


  // Raw anchors: a responder connection answering with `size` bytes, and a requester.
  const responder = await ActorSystem.connect(server.url, { name: 'raw-responder' });
  const requester = await ActorSystem.connect(server.url, { name: 'raw-requester' });
  let rawSize = 64;
  const subject = `raw.${createInbox()}`;
  responder.nc.subscribe(subject, { callback: (_e, m) => void m.respond(new Uint8Array(rawSize)) });
  await responder.nc.flush();
  const bare = bareRequester(requester.nc);
  const inbox = new InboxRequester(requester.nc);

  const allNc = [...nodes.values()].map((n) => n.system.nc);
  const results: PhaseResult[] = [];

  async function phase(name: string, concurrency: number): Promise<PhaseResult> {
    let reads = 0;
    let stop = false;
    const asker = name === 'leader' ? a : b;
    const t0 = asker.host.transportStats();
    const wt0 = a.host.stats.writeTurns + b.host.stats.writeTurns;
    const turns0 = a.host.stats.turns + b.host.stats.turns;
    const ncs = name === 'bare' || name === 'inbox' ? [requester.nc, responder.nc] : allNc;
    const s0 = ncs.map((nc) => nc.stats());
    const u0 = userMs(process.pid);
    const n0 = cpuMs(server.pid);
    const c0 = cpuMs(process.pid) + n0;
    const w0 = performance.now();
    const payload = new Uint8Array(rawSize);
    const loop = async (k: number): Promise<void> => {
      for (let i = k; !stop; i += concurrency) {
        const g = groups[i % GROUPS] as string;
        if (name === 'follower') await b.host.followerReadIndex(g, { mode: 'strong', timeoutMs: 5_000 });
        else if (name === 'leader') await a.host.readBarrier(g, { mode: 'strong', timeoutMs: 5_000 });
        else if (name === 'bare') await bare(subject, payload);
        else await inbox.request(subject, payload, { timeout: 5_000 });
        reads++;
      }
    };
    const loops = Array.from({ length: concurrency }, (_, k) => loop(k));
    await sleep(PHASE_S * 1000);
    stop = true;
    await Promise.all(loops);
    const wallMs = performance.now() - w0;
    const n1 = cpuMs(server.pid);
    const u1 = userMs(process.pid);
    const cpu = cpuMs(process.pid) + n1 - c0;
    const t1 = asker.host.transportStats();
    if (process.env['VERBOSE']) log(`${name}: turns ${a.host.stats.turns + b.host.stats.turns - turns0}, write turns ${a.host.stats.writeTurns + b.host.stats.writeTurns - wt0}`);
    const s1 = ncs.map((nc) => nc.stats());
    const msgs = s1.reduce((s, x, i) => s + x.outMsgs - (s0[i]?.outMsgs ?? 0), 0);
    const bytes = s1.reduce((s, x, i) => s + x.outBytes - (s0[i]?.outBytes ?? 0), 0);
    const exchanges = name === 'follower' || name === 'leader' ? t1.requests + t1.publishes - t0.requests - t0.publishes : reads;
    return { name, concurrency, exchanges, reads, cpuUs: cpu * 1000, serverUs: (n1 - n0) * 1000, userUs: (u1 - u0) * 1000, wallMs, msgs, bytes };
  }

  // Warm-up, and the payload size of the raw anchors: the follower phase's mean frame at the
  // highest concurrency (the anchors at every concurrency use it).
  const top = Math.max(...CONCURRENCIES);
  const warm = await phase(process.env['WARM'] ?? 'follower', top);
  if (warm.name === 'follower') rawSize = Math.max(1, Math.round(warm.bytes / Math.max(1, warm.msgs)));
  if (PHASES.includes('bare')) await phase('bare', top);
  log(`raw payload ${rawSize} bytes (the follower phase's mean frame)`);
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of CONCURRENCIES) {
      const order = r % 2 === 0 ? PHASES : [...PHASES].reverse();
      for (const p of order) {
        const res = await phase(p, c);
        results.push(res);
        log(`round ${r + 1} c ${c} ${p}: ${fmt(res.reads / (res.wallMs / 1000), 0)} reads/s, ${fmt(res.reads / res.exchanges, 2)} reads/exchange, ${fmt(res.cpuUs / res.exchanges, 1)} µs CPU/exchange, ${fmt(res.msgs / res.exchanges, 2)} msgs/exchange`);
      }
    }
  }

  const per = (c: number, p: string, f: (r: PhaseResult) => number): number => median(results.filter((r) => r.name === p && r.concurrency === c).map(f));
  const lone = CONCURRENCIES.includes(1) && PHASES.includes('bare') ? per(1, 'bare', (r) => r.cpuUs / r.exchanges) : Number.NaN;
  const lines = [
    `Run ${today()} on ${machine()}; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(' ')}. Three RaftHosts in one process on a real nats-server, ${GROUPS} groups of three voters led by node a; closed loops of \`strong\` reads at each concurrency; raw anchors with payload ${rawSize} B (the Raft frames' mean), ${ROUNDS} rounds of ${PHASE_S} s per phase, phases alternating, medians. CPU: this process and nats-server, from /proc.`,
    '',
    '| concurrency | phase | reads/s | reads per exchange | NATS msgs per exchange | CPU µs per exchange | of which nats-server | this process, user mode | CPU µs per read | / bare, same concurrency | / bare, one in flight |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of CONCURRENCIES) {
    const bareUs = PHASES.includes('bare') ? per(c, 'bare', (r) => r.cpuUs / r.exchanges) : Number.NaN;
    for (const p of PHASES) {
      const us = per(c, p, (r) => r.cpuUs / r.exchanges);
      lines.push(`| ${c} | ${p} | ${fmt(per(c, p, (r) => r.reads / (r.wallMs / 1000)), 0)} | ${fmt(per(c, p, (r) => r.reads / r.exchanges), 2)} | ${fmt(per(c, p, (r) => r.msgs / r.exchanges), 2)} | ${fmt(us, 1)} | ${fmt(per(c, p, (r) => r.serverUs / r.exchanges), 1)} | ${fmt(per(c, p, (r) => r.userUs / r.exchanges), 1)} | ${fmt(per(c, p, (r) => r.cpuUs / r.reads), 1)} | ${fmt(us / bareUs, 2)}× | ${fmt(us / lone, 2)}× |`);
    }
  }
  lines.push('', '`follower`: node b asks a for read indexes (RaftHost.followerReadIndex); `leader`: node a confirms its own reads with a heartbeat round (RaftHost.readBarrier); an exchange is the asking node\'s frame and the answer to it. `bare`: publish with a reply subject under one wildcard subscription, a token per request, nothing else (the floor); `inbox`: Shoal\'s InboxRequester (a timer and a promise per request).');
  const body = `## A read-confirming Raft exchange against raw NATS request-reply (\`npm run bench:exchange\`)\n\n${lines.join('\n')}`;
  console.log(`\n${body}`);
  if (process.env['WRITE'] !== '0' && PHASES.includes('bare')) writeSection('exchange', body);

  inbox.close();
  for (const s of [responder, requester]) await s.shutdown();
  for (const n of nodes.values()) {
    await n.host.stop();
    await n.system.shutdown();
    await n.env.close();
  }
  await server.stop();
  rmSync(root, { recursive: true, force: true });
}

/** User-mode CPU time of process `pid`, ms (field utime of /proc/<pid>/stat; ticks of 1/100 s). */
function userMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(fields[11]) * 10;
}

/** The cheapest request-reply nats.js allows: one reply subscription, a correlation token, no timer. */
function bareRequester(nc: NatsConnection): (subject: string, data: Uint8Array) => Promise<void> {
  const prefix = `${createInbox()}.`;
  const pending = new Map<string, () => void>();
  let next = 0;
  nc.subscribe(`${prefix}*`, {
    callback: (_e, m) => {
      const token = m.subject.slice(prefix.length);
      const done = pending.get(token);
      pending.delete(token);
      done?.();
    },
  });
  return (subject, data) =>
    new Promise<void>((resolve) => {
      const token = (next++).toString(36);
      pending.set(token, resolve);
      nc.publish(subject, data, { reply: prefix + token });
    });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
