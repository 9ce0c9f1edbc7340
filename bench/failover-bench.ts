/**
 * `npm run bench:failover`: failover as clients of the public API see it. Three `shoal node`
 * processes and one nats-server on this machine; a 2-shard × 3-replica collection; writers (one
 * point per write, a requestId each, `timeoutMs` 3000) and `strong` readers per shard, as outside
 * clients (plain NATS requests with JSON bodies) that follow docs/protocol.md's advice: resend the
 * same request after a second without an answer. Shard leaders are SIGKILLed (and restarted), then
 * SIGSTOPped (and continued 5 s later). For each fault: the time to the first acknowledged write
 * on its shard; over the run, the outcomes of every write and of every copy sent.
 *
 * The anchor, in the same run: the Raft core's own failover, leader SIGKILL → first commit under
 * its successor, on three raft-node processes (what bench:raft measures).
 *
 * The partition round: three hosts in network namespaces of their own (test/helpers/netns-cluster.ts),
 * each with a nats-server of a 3-server NATS cluster and a `shoal node`; the bench is the client,
 * on the network the hosts share. The host of a shard leader is cut off for 8 s, then healed.
 *
 * FAULTS (default 20 of each kind), ANCHOR_KILLS (default 10), PARTITIONS (default 6) tune the run.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { ShoalClient } from '../src/client/client.js';
import { MetadataStore } from '../src/cluster/metadata.js';
import { NATS_CONNECTION_DEFAULTS } from '../src/runtime/actor-system.js';
import { startNatsServer } from '../src/runtime/nats-server.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { FailoverLoad, idsByShard, type FaultFigures } from '../test/helpers/failover-load.js';
import { NetnsCluster } from '../test/helpers/netns-cluster.js';
import { RaftProcessCluster, sleep } from '../test/helpers/raft-cluster.js';
import { leaderKillToCommit } from './lib/raft-failover.js';
import { machine, today, writeSection } from './lib/report.js';
import { fmt, percentile, sortedCopy } from './lib/stats.js';

const FAULTS = Number(process.env['FAULTS'] ?? 20);
const ANCHOR_KILLS = Number(process.env['ANCHOR_KILLS'] ?? 10);
const DEADLINE_MS = 3_000;
const RESEND_AFTER_MS = 1_000;
const WRITERS_PER_SHARD = 4;
const READERS_PER_SHARD = 1;
const PAUSE_MS = 5_000;
const PARTITIONS = Number(process.env['PARTITIONS'] ?? 6);
const CUT_MS = 8_000;
const AFTER_HEAL_MS = 5_000;

interface Round {
  kind: 'kill' | 'stop' | 'partition';
  load: FailoverLoad;
  writes: FaultFigures;
  reads: FaultFigures;
}

async function anchor(): Promise<number[]> {
  const server = await startNatsServer({ jetstream: false });
  const cluster = await RaftProcessCluster.start(server, ['a1', 'a2', 'a3']);
  const payload = new Uint8Array(100).fill(7);
  try {
    return await leaderKillToCommit(cluster, ANCHOR_KILLS, async (leader) => {
      const r = await cluster.append(leader, payload, 'g0', 10_000);
      if (r.index === undefined) throw new Error(`write failed: ${JSON.stringify(r.error)}`);
    });
  } finally {
    await cluster.stop();
    await server.stop();
  }
}

/** Creates collection `name` (2 shards × 3 replicas) and starts writers and readers on it. */
async function startLoad(client: ShoalClient, nc: NatsConnection, name: string): Promise<FailoverLoad> {
  await client.createCollection({ name, dim: 8, metric: 'l2', shards: 2, replicas: 3 });
  const record = (await (await MetadataStore.open(nc, 'shoal')).getCollection(name))?.value;
  if (!record) throw new Error(`collection ${name} was not created`);
  const load = new FailoverLoad(nc, `shoal.v1.${name}`, idsByShard(record, 100), 8, {
    writersPerShard: WRITERS_PER_SHARD,
    readersPerShard: READERS_PER_SHARD,
    timeoutMs: DEADLINE_MS,
    resendAfterMs: RESEND_AFTER_MS,
  });
  load.start();
  return load;
}

async function round(cluster: TestCluster, kind: 'kill' | 'stop'): Promise<Round> {
  const client = await cluster.client({ timeoutMs: 5_000 });
  const nc = await connect({ servers: cluster.nats.url, ...NATS_CONNECTION_DEFAULTS });
  const name = `failover-${kind}`;
  const load = await startLoad(client, nc, name);
  await sleep(2_000);
  for (let k = 0; k < FAULTS; k++) {
    const shard = k % 2;
    const node = await cluster.leaderOf(client, name, shard);
    load.fault({ shard, node, kind, at: performance.now() });
    if (kind === 'kill') {
      await cluster.kill(node);
      await sleep(2_500);
      await cluster.startNode(node);
      await sleep(2_000);
    } else {
      cluster.pause(node);
      await sleep(PAUSE_MS);
      cluster.resume(node);
      await sleep(2_500);
    }
    process.stderr.write(`${kind} ${k + 1}/${FAULTS} (${node}, shard ${shard})\n`);
  }
  await sleep(1_000);
  await load.stop();
  await nc.close();
  return { kind, load, writes: load.figures('write'), reads: load.figures('read') };
}

interface PartitionRound extends Round {
  /** Cuts of the host whose server the load's connection was on (it had to reconnect). */
  clientCut: number;
  /** Acknowledged writes per second while a host was cut off, and outside the cuts (after the warm-up). */
  okPerSecCut: number;
  okPerSecElse: number;
}

/**
 * The load connects to all three hosts' servers and stays on the one it got until that server is
 * gone, as a client on the majority side does; it leaves a cut-off server after two unanswered
 * 1 s pings. The leader of one shard is cut off, alternating shards, but a leader on the load's
 * own host is passed over for the other shard's when that one is elsewhere, so that the figures
 * are Shoal's failover rather than the client's reconnect; the cuts that could not avoid it are counted.
 */
async function partitionRound(cluster: NetnsCluster): Promise<PartitionRound> {
  const client = await cluster.client({ timeoutMs: 5_000 });
  const nc = await cluster.connect();
  const name = 'failover-partition';
  const load = await startLoad(client, nc, name);
  await sleep(2_000);
  const from = performance.now();
  const cuts: [number, number][] = [];
  let clientCut = 0;
  for (let k = 0; k < PARTITIONS; k++) {
    let shard = k % 2;
    let node = await cluster.leaderOf(client, name, shard);
    const clientHost = cluster.hostOfConnection(nc);
    if (cluster.hostOf(node) === clientHost) {
      const other = await cluster.leaderOf(client, name, 1 - shard);
      if (cluster.hostOf(other) !== clientHost) {
        shard = 1 - shard;
        node = other;
      } else {
        clientCut++;
      }
    }
    const host = cluster.hostOf(node);
    load.fault({ shard, node, kind: 'partition', at: performance.now() });
    const at = performance.now();
    cluster.cut(host);
    await sleep(CUT_MS);
    cluster.heal(host);
    cuts.push([at, performance.now()]);
    await sleep(AFTER_HEAL_MS);
    process.stderr.write(`partition ${k + 1}/${PARTITIONS} (${node} on host ${host}, shard ${shard}; load on host ${clientHost ?? '?'})\n`);
  }
  await sleep(1_000);
  const to = performance.now();
  await load.stop();
  const acks = load.records.filter((w) => w.kind === 'write' && w.outcome === 'ok' && w.end >= from && w.end < to);
  const inCut = (t: number): boolean => cuts.some(([a, b]) => t >= a && t < b);
  const cutMs = cuts.reduce((sum, [a, b]) => sum + (b - a), 0);
  const okCut = acks.filter((w) => inCut(w.end)).length;
  return {
    kind: 'partition', load, writes: load.figures('write'), reads: load.figures('read'), clientCut,
    okPerSecCut: okCut / (cutMs / 1000),
    okPerSecElse: (acks.length - okCut) / ((to - from - cutMs) / 1000),
  };
}

const LABELS: Record<Round['kind'], string> = {
  kill: 'SIGKILL, restarted after 2.5 s',
  stop: `SIGSTOP, continued after ${PAUSE_MS / 1000} s`,
  partition: `partition, healed after ${CUT_MS / 1000} s`,
};

function line(r: Round): string {
  const firsts = sortedCopy(r.writes.toFirstWrite.map((x) => x ?? Number.POSITIVE_INFINITY));
  const readFirsts = sortedCopy(r.reads.toFirstWrite.map((x) => x ?? Number.POSITIVE_INFINITY));
  const c = r.load.replies;
  return (
    `| ${LABELS[r.kind]} | ${fmt(percentile(firsts, 50), 0)} | ${fmt(percentile(firsts, 99), 0)} | ${fmt(percentile(readFirsts, 99), 0)} | ` +
    `${fmt(Math.max(r.writes.longestGapMs, 0), 0)} | ${r.writes.counts['ok'] ?? 0} | ${r.writes.counts['TIMEOUT'] ?? 0} | ${r.writes.counts['UNAVAILABLE'] ?? 0} | ${r.writes.counts['noReply'] ?? 0} | ` +
    `${c['TIMEOUT'] ?? 0} | ${c['UNAVAILABLE'] ?? 0} | ${c['noReply'] ?? 0} |`
  );
}

async function main(): Promise<void> {
  process.stderr.write('anchor: Raft leader kill → first commit\n');
  const anchorMs = sortedCopy(await anchor());
  const cluster = await TestCluster.start({ nodes: 3 });
  let rounds: Round[];
  try {
    rounds = [await round(cluster, 'kill'), await round(cluster, 'stop')];
  } finally {
    await cluster.stop();
  }
  const [kill, stop] = rounds as [Round, Round];
  const netns = await NetnsCluster.start();
  let partition: PartitionRound;
  try {
    partition = await partitionRound(netns);
  } finally {
    await netns.stop();
  }
  const p99 = (r: Round): number => percentile(sortedCopy(r.writes.toFirstWrite.map((x) => x ?? Number.POSITIVE_INFINITY)), 99);
  const body = [
    '## Failover as clients see it (`npm run bench:failover`)',
    '',
    `Run ${today()} on ${machine()}. Three \`shoal node\` processes and one nats-server (ping every 1 s, 2 missed: a frozen`,
    `client is dropped after ~3 s) on this machine; a 2-shard × 3-replica collection; per shard ${WRITERS_PER_SHARD} writers (one point per write, a requestId`,
    `each, \`timeoutMs\` ${DEADLINE_MS}) and ${READERS_PER_SHARD} \`strong\` reader, as outside clients (plain NATS, JSON) that resend the same request after`,
    `${RESEND_AFTER_MS} ms without an answer (docs/protocol.md). ${FAULTS} faults of each kind on the leader of one shard, alternating shards.`,
    '',
    '| fault | first write p50 ms | first write p99 ms | first strong read p99 ms | longest stretch without a write, ms | writes ok | writes TIMEOUT | writes UNAVAILABLE | writes unanswered | copies TIMEOUT | copies UNAVAILABLE | copies unanswered |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    line(kill),
    line(stop),
    line(partition),
    '',
    `Anchor, same run: Raft leader SIGKILL → first commit under its successor (${ANCHOR_KILLS} kills, three raft-node processes): p50 ${fmt(percentile(anchorMs, 50), 0)} ms, p99 ${fmt(percentile(anchorMs, 99), 0)} ms.`,
    `Fault to first acknowledged write, p99: kills ${fmt(p99(kill), 0)} ms (goal < 1,000; ${fmt(p99(kill) / percentile(anchorMs, 99), 2)}× the anchor), pauses ${fmt(p99(stop), 0)} ms (goal < 1,500).`,
    'A copy goes unanswered when it reached the router of the killed or frozen node (a frozen one keeps its place in the routers\' queue group until the server drops it);',
    'a write counts as unanswered only when none of its copies was answered before its wait ended.',
    '',
    `Partitions: three hosts, each a network namespace with one nats-server (a 3-server NATS cluster, JetStream, the metadata bucket in 3 replicas;`,
    `ping every 1 s, 2 missed) and one \`shoal node\` on it; the same load from the root namespace, on the hosts' shared network, connected to all three servers`,
    `(it stays on the one it got and leaves it after two unanswered 1 s pings). ${PARTITIONS} times the host of one shard's leader (alternating shards, but`,
    `not the load's own host when the other shard's leader is elsewhere) is cut off for ${CUT_MS / 1000} s, then healed, ${AFTER_HEAL_MS / 1000} s before the next cut.`,
    `The load's own server was on the cut host in ${partition.clientCut} of ${PARTITIONS} cuts. Fault to first acknowledged write, p99: ${fmt(p99(partition), 0)} ms.`,
    `Acknowledged writes per second while a host was cut off: ${fmt(partition.okPerSecCut, 0)}; outside them (the ${AFTER_HEAL_MS / 1000} s after each heal included): ${fmt(partition.okPerSecElse, 0)}.`,
  ].join('\n');
  writeSection('failover', body);
  process.stdout.write(`${body}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:failover failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
