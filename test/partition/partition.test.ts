/**
 * Network partitions on a real cluster (issue 18): three hosts in network namespaces (needs root;
 * without the privilege the test fails and says so), one nats-server of a NATS cluster and one
 * node on each. A client runs *on* each host (test/fixtures/register-client.ts, inside the host's
 * namespace, connected to that host's server only), writing tokens to a few keys and reading them
 * back `strong` and `leased`; this process runs a writer of fresh points beside them. First a
 * follower's host is cut off (a minority without the leader), and healed; then the leader's host
 * is cut off from the two others (a minority leader), and healed. Checked:
 * - no acknowledged write is lost;
 * - every key's history of writes and strong and leased reads, from all three hosts, is
 *   linearizable (test/helpers/linearizability.ts); the clients' times share one clock;
 * - a client on a cut-off host gets errors (UNAVAILABLE or TIMEOUT) for every read and write it
 *   makes once the old leader's lease is over, never a value;
 * - the majority side gets a leader and takes writes while the old leader is cut off;
 * - within 10 s of each heal the cut-off host's client has its writes and strong and leased
 *   reads answered again; every node is seen up in `status` within 30 s of the last heal (the
 *   node registry is in JetStream, whose own elections take some seconds after a heal). Whether
 *   and when the old leader's node is seen down while cut off is printed, not held: with its
 *   meta leader cut off, JetStream (not Shoal) once answered no `status` for 30 s of a cut on a
 *   machine loaded 10 times over.
 * The numbers are printed. PARTITION_CALLS=<file> writes every call of the hosts' clients there,
 * with the times of the cuts and heals, for a closer look.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { describeError } from '../../src/runtime/errors.js';
import { waitFor } from '../helpers/cluster.js';
import { checkHistory, type Operation } from '../helpers/linearizability.js';
import { NETNS_CLIENT_PORT, NetnsCluster } from '../helpers/netns-cluster.js';
import { startLoad, stopLoads } from '../helpers/ops-load.js';

const NAME = 'part';
const KEYS = Array.from({ length: 6 }, (_, i) => `key-${i}`);
const CLIENT = new URL('../fixtures/register-client.js', import.meta.url).pathname;
/**
 * Calls made this long after a cut (after `ip` returned) must all be refused on the cut-off side:
 * a lease rests on a heartbeat round sent less than 4 ticks of 50 ms before, and ticks are counted
 * from the clock (docs/protocol.md, "Read consistency"), so the old leader's lease, and any read
 * lease it gave, is over at most 250 ms after the link went down; twice that leaves room for a
 * heartbeat answer already on its way.
 */
const LEASE_BOUND_MS = 500;
/** The issue's bound: the cluster serves the healed host again within this long of the heal. */
const HEAL_BOUND_MS = 10_000;
/** How long each cut lasts at least. */
const CUT_MS = 6_000;
/** How long the leader's host stays cut off at most while the test looks for its node to be seen down. */
const SEEN_DOWN_MS = 12_000;
/** Times recorded by two processes are compared with this much room (their clocks agree to well under a millisecond). */
const CLOCK_SLACK_MS = 2;
const REFUSED = new Set(['UNAVAILABLE', 'TIMEOUT']);

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One call of a host's client, as it printed it. */
interface Call {
  host: number;
  op: 'write' | 'strong' | 'leased';
  key: string;
  value?: string | null;
  invoke: number;
  complete?: number;
  failed?: number;
  code?: string;
  message?: string;
}

interface HostClient {
  host: number;
  proc: ChildProcess;
  calls: Call[];
  done: Promise<void>;
}

let cluster: NetnsCluster;
let client: ShoalClient;

before(async () => {
  cluster = await NetnsCluster.start();
  client = await cluster.client({ timeoutMs: 3_000 });
});

after(async () => {
  await stopLoads();
  await cluster?.stop();
});

async function startHostClient(host: number): Promise<HostClient> {
  const h = cluster.hosts[host - 1]!;
  const proc = cluster.spawnIn(host, CLIENT, [`nats://${h.ip}:${NETNS_CLIENT_PORT}`, cluster.prefix, NAME, `h${host}`, KEYS.join(',')]);
  const calls: Call[] = [];
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2_000);
  });
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const lines = createInterface({ input: proc.stdout! });
  lines.on('line', (line) => {
    const o = JSON.parse(line) as Record<string, unknown>;
    if (o['ready']) ready();
    else if (o['op']) calls.push({ host, ...(o as Omit<Call, 'host'>) });
  });
  const done = new Promise<void>((resolve, reject) => {
    proc.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`host ${host}'s client exited (${signal ?? code}): ${stderr}`))));
  });
  done.catch(() => undefined); // awaited at the end; a client killed by an early stop() is no news
  await Promise.race([isReady, done.then(() => Promise.reject(new Error(`host ${host}'s client exited before it was ready: ${stderr}`)))]);
  return { host, proc, calls, done };
}

const succeeded = (c: Call): boolean => c.complete !== undefined;

/** The first call of kind `op` that the host's client made after `t` and had answered, or undefined. */
function firstAnswered(hc: HostClient, op: Call['op'], t: number): Call | undefined {
  return hc.calls.find((c) => c.op === op && c.invoke >= t && succeeded(c));
}

/** Waits until the host's client has had a write, a strong and a leased read answered, each made after `t`; returns ms from `t` to the last of the three answers. */
async function servedAgain(hc: HostClient, t: number, what: string): Promise<{ ms: number; detail: string }> {
  await waitFor(() => (['write', 'strong', 'leased'] as const).every((op) => firstAnswered(hc, op, t)), what, 30_000);
  const firsts = (['write', 'strong', 'leased'] as const).map((op) => [op, firstAnswered(hc, op, t)!] as const);
  const ms = Math.max(...firsts.map(([, c]) => c.complete! - t));
  return { ms, detail: firsts.map(([op, c]) => `${op} +${Math.round(c.complete! - t)} ms`).join(', ') };
}

/**
 * What the host's client got for the calls it made in [from, to): the ones answered before `to`
 * (a call answered after it may have been served after a heal at `to`), and the ones refused, by code.
 */
function tally(hc: HostClient, from: number, to: number): { answered: Call[]; refused: number; byCode: Record<string, number> } {
  const made = hc.calls.filter((c) => c.invoke >= from && c.invoke < to);
  const refused = made.filter((c) => !succeeded(c));
  const byCode: Record<string, number> = {};
  for (const c of refused) byCode[c.code ?? '?'] = (byCode[c.code ?? '?'] ?? 0) + 1;
  return { answered: made.filter((c) => c.complete !== undefined && c.complete < to), refused: refused.length, byCode };
}

function toOperation(c: Call): Operation {
  const kind = c.op === 'write' ? 'write' : 'read';
  const op: Operation = { key: c.key, kind, invoke: c.invoke - CLOCK_SLACK_MS, complete: c.complete === undefined ? undefined : c.complete + CLOCK_SLACK_MS };
  if (kind === 'write' || c.complete !== undefined) op.value = c.value ?? null;
  return op;
}

describe('partition', () => {
  it('partition - a follower\'s host, then the leader\'s host cut off and healed under writers and strong and leased readers on every host: nothing acknowledged is lost, every key linearizable, the cut-off side refused after the lease, served again within 10 s of the heal', async () => {
    await client.createCollection({ name: NAME, dim: 2, metric: 'l2', shards: 1, replicas: 3 });
    const coll = client.collection(NAME);
    for (const key of KEYS) await coll.upsert([{ id: key, vector: [0, 0], metadata: { token: 'init' } }]);
    const t0 = now();
    const timeline: string[] = [];
    const mark = (what: string, t = now()): number => {
      timeline.push(`+${Math.round(t - t0)} ms ${what}`);
      return t;
    };
    const hostClients = await Promise.all([1, 2, 3].map((h) => startHostClient(h)));
    const hc = (host: number): HostClient => hostClients[host - 1]!;
    const load = startLoad(client, [NAME], 2, { writers: 1, readers: 0, timeoutMs: 3_000 });
    await sleep(1_500);

    // 1. a follower's host cut off: the minority has no leader
    const leader1 = await cluster.leaderOf(client, NAME, 0);
    const follower = [1, 2, 3].find((h) => h !== cluster.hostOf(leader1))!;
    mark(`cut host ${follower} (a follower; ${leader1} leads)`);
    cluster.cut(follower);
    const cut1Done = now();
    await sleep(CUT_MS);
    const heal1 = mark(`heal host ${follower}`);
    cluster.heal(follower);
    const served1 = await servedAgain(hc(follower), heal1, `host ${follower}'s client served again after the heal`);
    mark(`host ${follower}'s client served again (${served1.detail})`);

    // 2. the leader's host cut off from the two others: a minority leader
    const leader2 = await cluster.leaderOf(client, NAME, 0);
    const old = cluster.hostOf(leader2);
    const cut2 = mark(`cut host ${old} (${leader2} leads)`);
    cluster.cut(old);
    const cut2Done = now();
    let leader3 = leader2;
    await waitFor(async () => {
      leader3 = (await client.describeCollection(NAME, 2_000)).shards[0]?.leader ?? leader2;
      return leader3 !== leader2 && cluster.hostOf(leader3) !== old;
    }, 'a leader on the majority side', 30_000);
    const newLeader = mark(`${leader3} leads on the majority side`);
    // `status` reads the node registry from JetStream, whose meta leader the cut may have taken:
    // seen down is looked for (the node is down 5 s after its last heartbeat) and printed, not held
    let seenDown: number | undefined;
    let statusError = '';
    while (seenDown === undefined && now() < cut2 + SEEN_DOWN_MS) {
      try {
        if ((await client.clusterStatus(2_000)).nodes.find((n) => n.id === leader2)?.state !== 'up') seenDown = mark(`${leader2} seen not up`);
      } catch (err) {
        statusError = describeError(err);
      }
      if (seenDown === undefined) await sleep(250);
    }
    if (seenDown === undefined) mark(`${leader2} not seen down (status: ${statusError || `${leader2} up`})`);
    await sleep(Math.max(0, cut2 + CUT_MS - now()));
    const heal2 = mark(`heal host ${old}`);
    cluster.heal(old);
    const served2 = await servedAgain(hc(old), heal2, `host ${old}'s client served again after the heal`);
    mark(`host ${old}'s client served again (${served2.detail})`);
    await waitFor(async () => (await client.clusterStatus(2_000)).nodes.filter((n) => n.state === 'up').length === 3, 'all 3 nodes up after the heal', 30_000);
    const allUp = mark('all 3 nodes up');
    await sleep(1_000);

    // stop the clients and the load, then read every key once more, strong, from this process
    for (const c of hostClients) c.proc.stdin?.end();
    await Promise.all(hostClients.map((c) => c.done));
    const report = await load.stop();
    const finals: Operation[] = [];
    for (const key of KEYS) {
      const invoke = now();
      const [p] = await coll.get([key], { consistency: 'strong', withMetadata: true, timeoutMs: 10_000 });
      finals.push({ key, kind: 'read', value: p ? String(p.metadata?.['token']) : null, invoke, complete: now() });
    }

    // nothing acknowledged lost: every acknowledged point is there; the count is at least that,
    // and at most that plus the points of writes whose outcome is unknown (5 a write)
    const acked = report.acked.get(NAME) ?? [];
    const got = await coll.get(acked, { consistency: 'strong', withVector: false, withMetadata: false, timeoutMs: 20_000 });
    const have = new Set(got.map((p) => p.id));
    const lost = acked.filter((id) => !have.has(id));
    const count = await coll.count({ consistency: 'strong', timeoutMs: 10_000 });
    const unknown = report.failures.filter((f) => f.startsWith('upsert')).length * 5;

    const calls = hostClients.flatMap((c) => c.calls);
    if (process.env['PARTITION_CALLS']) writeFileSync(process.env['PARTITION_CALLS'], JSON.stringify({ t0, cut1Done, heal1, cut2Done, heal2, calls }));
    const lin = checkHistory([...calls.map(toOperation), ...finals], { initial: Object.fromEntries(KEYS.map((k) => [k, 'init'])) });
    const reads = calls.filter((c) => c.op !== 'write' && succeeded(c)).length;
    const writes = calls.filter((c) => c.op === 'write' && succeeded(c)).length;

    // the cut-off side: once the lease is over, every call refused, until the heal
    const minority1 = tally(hc(follower), cut1Done + LEASE_BOUND_MS, heal1);
    const minority2 = tally(hc(old), cut2Done + LEASE_BOUND_MS, heal2);
    const lastServed2 = hc(old).calls.filter((c) => c.op !== 'write' && c.complete !== undefined && c.complete < heal2).at(-1);
    // the majority side took writes while the old leader was cut off
    const majorityWrites = [1, 2, 3].filter((h) => h !== old).flatMap((h) => tally(hc(h), cut2Done, heal2).answered.filter((c) => c.op === 'write'));

    console.log(
      `partition: ${lin.checkedOps} operations over ${lin.keys} keys checked (${lin.verdict}) in ${Math.round(lin.timeMs)} ms: ` +
        `${reads} reads and ${writes} writes answered on the hosts; load ${report.writes} writes acknowledged (${acked.length} points, count ${count}, ${report.failures.length} failed); ` +
        `host ${follower} cut off (no leader): ${minority1.refused} calls refused ${JSON.stringify(minority1.byCode)}, ${minority1.answered.length} answered; ` +
        `host ${old} cut off (old leader): ${minority2.refused} calls refused ${JSON.stringify(minority2.byCode)}, ${minority2.answered.length} answered, ` +
        `its last read answered was made at ${lastServed2 ? `${Math.round(lastServed2.invoke - cut2Done)} ms from the cut` : 'no time'}; ` +
        `new leader ${Math.round(newLeader - cut2)} ms after the cut, ${majorityWrites.length} writes on the majority side while cut off; ` +
        `${leader2} seen down ${seenDown === undefined ? `never (${statusError || 'up'})` : `${Math.round(seenDown - cut2)} ms after the cut`}; ` +
        `served again ${Math.round(served1.ms)} ms and ${Math.round(served2.ms)} ms after the heals, all nodes up ${Math.round(allUp - heal2)} ms after; ` +
        `timeline: ${timeline.join('; ')}`,
    );
    if (report.failures.length > 0) console.log(`partition: load failures: ${report.failures.slice(0, 5).join('; ')}`);

    assert.deepEqual(lost.slice(0, 5), [], `no acknowledged point lost (${lost.length} of ${acked.length} missing)`);
    assert.ok(count >= acked.length + KEYS.length && count <= acked.length + KEYS.length + unknown, `count ${count} is the ${acked.length} acknowledged points and ${KEYS.length} keys, plus at most ${unknown} points of failed writes`);
    assert.equal(lin.verdict, 'linearizable', `every key's history is linearizable: ${lin.why ?? ''} (key ${lin.key ?? ''})`);
    assert.ok(reads > 100 && writes > 50, `enough calls answered to mean something: ${reads} reads, ${writes} writes`);

    for (const [what, m] of [[`host ${follower} (a follower)`, minority1], [`host ${old} (the old leader)`, minority2]] as const) {
      assert.deepEqual(m.answered.map((c) => `${c.op} ${c.key} = ${String(c.value)} at +${Math.round(c.invoke - t0)} ms`), [], `${what} answered nothing while cut off, once the lease was over`);
      assert.ok(m.refused >= 3, `${what}'s client kept calling while cut off: ${m.refused} calls refused`);
      const other = Object.keys(m.byCode).filter((code) => !REFUSED.has(code));
      assert.deepEqual(other, [], `${what}'s calls were refused with UNAVAILABLE or TIMEOUT: ${JSON.stringify(m.byCode)}`);
    }
    assert.ok(majorityWrites.length > 10, `the majority side took writes while the old leader was cut off: ${majorityWrites.length}`);
    assert.ok(served1.ms <= HEAL_BOUND_MS, `host ${follower} served again within ${HEAL_BOUND_MS} ms of the heal: ${served1.detail}`);
    assert.ok(served2.ms <= HEAL_BOUND_MS, `host ${old} served again within ${HEAL_BOUND_MS} ms of the heal: ${served2.detail}`);
  });
});
