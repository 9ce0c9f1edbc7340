/**
 * `npm run bench:runtime`: the actor runtime's ask round trip against raw @nats-io/transport-node
 * request-reply, measured in the same run, against the same nats-server, with the responder in
 * its own process. Three paths:
 * - raw bytes: pre-encoded bytes echoed back, no serialization at all (the floor of NATS);
 * - raw + CBOR: a hand-written NATS service that encodes and decodes the same message with the
 *   same codec (what any real service over raw NATS pays);
 * - runtime: an ask to an actor (codec, mailbox, span, reply envelope).
 * Rounds alternate the paths so that machine noise hits all alike; the figures are medians over
 * rounds. Goal: the runtime adds at most 15% to the raw round trip.
 *
 * ROUNDS (default 5), SERIAL (round trips per serial phase, default 3000) and PARALLEL_MS
 * (duration of each 64-in-flight phase, default 2000) tune the run.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ActorSystem, NATS_CONNECTION_DEFAULTS } from '../src/runtime/actor-system.js';
import { decodeCbor, encodeCbor } from '../src/runtime/codec.js';
import { startNatsServer } from '../src/runtime/nats-server.js';
import { fmt, median, percentile, sortedCopy } from './lib/stats.js';
import { machine, today, writeSection } from './lib/report.js';

const ROUNDS = Number(process.env['ROUNDS'] ?? 5);
const SERIAL = Number(process.env['SERIAL'] ?? 3000);
const PARALLEL_MS = Number(process.env['PARALLEL_MS'] ?? 2000);
const IN_FLIGHT = 64;

interface Phase {
  p50us: number;
  p99us: number;
  perSec: number;
}

type RoundTrip = (seq: number) => Promise<unknown>;

async function serial(rt: RoundTrip, n: number): Promise<Phase> {
  const lat = new Float64Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await rt(i);
    lat[i] = (performance.now() - s) * 1000;
  }
  const secs = (performance.now() - t0) / 1000;
  const sorted = lat.sort();
  return { p50us: percentile(sorted, 50), p99us: percentile(sorted, 99), perSec: n / secs };
}

async function parallel(rt: RoundTrip, inFlight: number, ms: number): Promise<Phase> {
  const lat: number[] = [];
  const t0 = performance.now();
  const end = t0 + ms;
  let seq = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await rt(seq++);
        lat.push((performance.now() - s) * 1000);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const sorted = sortedCopy(lat);
  return { p50us: percentile(sorted, 50), p99us: percentile(sorted, 99), perSec: lat.length / secs };
}

function med(phases: Phase[]): Phase {
  return {
    p50us: median(phases.map((p) => p.p50us)),
    p99us: median(phases.map((p) => p.p99us)),
    perSec: median(phases.map((p) => p.perSec)),
  };
}

async function main(): Promise<void> {
  const server = await startNatsServer();
  const responder = spawn(process.execPath, [new URL('./runtime-responder.js', import.meta.url).pathname, server.url], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    responder.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    responder.once('exit', (c) => reject(new Error(`responder exited with ${c}`)));
  });
  // Same connection options as the runtime's, so that the comparison is of the runtime alone.
  const raw: NatsConnection = await connect({ servers: server.url, ...NATS_CONNECTION_DEFAULTS });
  const sys = await ActorSystem.connect(server.url, { name: 'client' });
  const echo = sys.ref<unknown>('responder', 'echo');

  // The same message both ways: a small command with a 16-float vector. Raw sends its CBOR bytes
  // and gets them echoed; the runtime encodes, routes through a mailbox, replies and decodes.
  const msg = { type: 'ping', seq: 0, vector: new Float32Array(16).fill(0.5) };
  const rawBytes = encodeCbor(msg);
  const paths: Record<'raw' | 'cbor' | 'actor', RoundTrip> = {
    raw: () => raw.request('bench.raw.echo', rawBytes, { timeout: 10_000 }),
    cbor: async (seq) => decodeCbor((await raw.request('bench.cbor.echo', encodeCbor({ ...msg, seq }), { timeout: 10_000 })).data),
    actor: (seq) => sys.ask(echo, { ...msg, seq }, { timeoutMs: 10_000 }),
  };
  const names = ['raw', 'cbor', 'actor'] as const;
  for (const name of names) await serial(paths[name], 2000); // warm-up (JIT, connections)

  const one: Record<string, Phase[]> = { raw: [], cbor: [], actor: [] };
  const many: Record<string, Phase[]> = { raw: [], cbor: [], actor: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of names) one[name]?.push(await serial(paths[name], SERIAL));
    for (const name of names) many[name]?.push(await parallel(paths[name], IN_FLIGHT, PARALLEL_MS));
    process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
  }
  const [raw1, cbor1, actor1] = names.map((n) => med(one[n] ?? [])) as [Phase, Phase, Phase];
  const [raw64, cbor64, actor64] = names.map((n) => med(many[n] ?? [])) as [Phase, Phase, Phase];

  const pct = (a: number, b: number): string => `${a >= b ? '+' : ''}${fmt((a / b - 1) * 100)}%`;
  const share = (a: number, b: number): string => `${fmt((a / b) * 100)}%`;
  const row = (name: string, p: Phase): string => `| ${name} | ${fmt(p.p50us)} | ${fmt(p.p99us)} | ${fmt(p.perSec, 0)} |`;
  const body = [
    `## Actor runtime: ask round trip vs raw NATS request-reply (\`npm run bench:runtime\`)`,
    '',
    `Run ${today()} on ${machine()}. Responder in its own process; one nats-server on loopback;`,
    `${ROUNDS} alternating rounds (serial: ${SERIAL} round trips; ${IN_FLIGHT} in flight: ${PARALLEL_MS} ms each); medians over rounds.`,
    `Message: \`{type, seq, vector: Float32Array(16)}\` (${rawBytes.length} bytes as CBOR).`,
    '',
    '| path | p50 µs | p99 µs | round trips/s |',
    '|---|---:|---:|---:|',
    row('raw NATS bytes, 1 in flight', raw1),
    row('raw NATS + CBOR, 1 in flight', cbor1),
    row('runtime ask, 1 in flight', actor1),
    row(`raw NATS bytes, ${IN_FLIGHT} in flight`, raw64),
    row(`raw NATS + CBOR, ${IN_FLIGHT} in flight`, cbor64),
    row(`runtime ask, ${IN_FLIGHT} in flight`, actor64),
    '',
    '| runtime ask compared with | p50 added, 1 | p99 added, 1 | throughput, 1 | p50 added, 64 | p99 added, 64 | throughput, 64 |',
    '|---|---:|---:|---:|---:|---:|---:|',
    `| raw NATS bytes | ${pct(actor1.p50us, raw1.p50us)} | ${pct(actor1.p99us, raw1.p99us)} | ${share(actor1.perSec, raw1.perSec)} | ${pct(actor64.p50us, raw64.p50us)} | ${pct(actor64.p99us, raw64.p99us)} | ${share(actor64.perSec, raw64.perSec)} |`,
    `| raw NATS + CBOR | ${pct(actor1.p50us, cbor1.p50us)} | ${pct(actor1.p99us, cbor1.p99us)} | ${share(actor1.perSec, cbor1.perSec)} | ${pct(actor64.p50us, cbor64.p50us)} | ${pct(actor64.p99us, cbor64.p99us)} | ${share(actor64.perSec, cbor64.perSec)} |`,
    '',
    `Goal: the runtime adds at most 15% to the raw round trip. "Raw NATS bytes" sends pre-encoded bytes`,
    `and is the floor; "raw NATS + CBOR" encodes and decodes the same message on both sides as any real`,
    `service must; the gap between the two raw rows is the codec. Both raw rows use nats.js's request();`,
    `the runtime's asks use Shoal's own inbox requester (src/runtime/inbox-requester.ts), which skips the`,
    `RequestError nats.js builds and drops for every reply: that saving is larger than the actor machinery's`,
    `cost (mailbox, span, reply envelope), which is why the runtime can come out ahead of the raw rows.`,
  ].join('\n');
  process.stdout.write(`${body}\n`);
  writeSection('runtime', body);

  await sys.shutdown();
  await raw.close();
  responder.kill('SIGTERM');
  await new Promise((r) => responder.once('exit', r));
  await server.stop();
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:runtime failed: ${String(err)}\n`);
  process.exit(1);
});
