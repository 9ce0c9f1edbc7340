/**
 * Failover as a client of the public API sees it: writers with a 3 s deadline, one point per
 * write, resending after 1 s without a reply as docs/protocol.md advises, on a 2-shard
 * collection over 3 nodes, while shard leaders are SIGKILLed (then restarted) or SIGSTOPped
 * (then continued). No copy of a write may be answered TIMEOUT (a router waited out its deadline
 * on a dead or frozen leader), a write must land soon after each fault, and no shard may go long
 * without an acknowledged write.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { ShoalClient } from '../../src/client/client.js';
import { MetadataStore } from '../../src/cluster/metadata.js';
import { TestCluster } from '../helpers/cluster.js';
import { FailoverLoad, idsByShard, percentile } from '../helpers/failover-load.js';

let cluster: TestCluster;
let client: ShoalClient;
let nc: NatsConnection;

/** A write's deadline: no write may come back TIMEOUT with this much time (single faults). */
const DEADLINE_MS = 3_000;
/**
 * The writers resend a request (same requestId) that got no reply within this, as
 * docs/protocol.md advises: a router on a killed or paused node never answers what it was given.
 */
const RESEND_AFTER_MS = 1_000;
/** The longest a shard may go without an acknowledged write across one fault. Before attempts were bounded, a swallowed write held its writer for the whole deadline (3 s). */
const MAX_GAP_MS = 2_000;

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  client = await cluster.client({ timeoutMs: 5_000 });
  nc = await connect({ servers: cluster.nats.url });
});

after(async () => {
  await nc?.close();
  await cluster?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function leaderOf(name: string, shard: number): Promise<string> {
  return cluster.leaderOf(client, name, shard);
}

async function load(name: string, writersPerShard: number, resendAfterMs?: number): Promise<FailoverLoad> {
  await client.createCollection({ name, dim: 4, metric: 'l2', shards: 2, replicas: 3 });
  const meta = await MetadataStore.open(nc, 'shoal');
  const record = (await meta.getCollection(name))?.value;
  assert.ok(record);
  const l = new FailoverLoad(nc, `shoal.v1.${name}`, idsByShard(record, 50), 4, { writersPerShard, timeoutMs: DEADLINE_MS, ...(resendAfterMs !== undefined ? { resendAfterMs } : {}) });
  l.start();
  await sleep(1_000);
  return l;
}

function report(what: string, l: FailoverLoad): ReturnType<FailoverLoad['figures']> {
  const f = l.figures();
  const firsts = f.toFirstWrite.filter((x): x is number => x !== null);
  const near = l.faults.map((x) => `${x.kind} of ${x.node} (shard ${x.shard}) at ${(f.longestGapAt.at - x.at).toFixed(0)} ms`).join(', ');
  console.log(`${what}: longest gap on shard ${f.longestGapAt.shard}, from the faults: ${near}`);
  // The writes in flight when that stretch began: how each ended, and after how long.
  const inFlight = l.records.filter((w) => w.shard === f.longestGapAt.shard && w.start <= f.longestGapAt.at + 1 && w.end > f.longestGapAt.at);
  console.log(`${what}: in flight then: ${inFlight.map((w) => `writer ${w.writer} ${w.outcome} after ${(w.end - w.start).toFixed(0)} ms`).join('; ')}`);
  console.log(`${what}: ${l.faults.length} faults; fault to first write p50 ${percentile(firsts, 50).toFixed(0)} ms, max ${Math.max(...firsts).toFixed(0)} ms; longest gap ${f.longestGapMs.toFixed(0)} ms; writes ${JSON.stringify(f.counts)}; replies to every copy ${JSON.stringify(l.replies)}`);
  return f;
}

describe('failover', () => {
  it('failover - shard leaders SIGKILLed under write load: no write times out, a write lands before a deadline after each kill (within 1.5 s at the median), and no shard goes 2 s without one', async () => {
    // A request in flight on the killed node's router gets no reply, and its writer resends it;
    // every other copy must be answered, and none with TIMEOUT. As with pauses below, how long the
    // first write after a kill takes depends on chance (the randomised election timeout, which
    // copies went to the killed router): a CI run saw one kill of four take 1,526 ms, the others
    // 294-532 ms, and an earlier run of the same code 455 ms at most. A client counts on a write's
    // deadline; how fast failover is, is bench:failover's to measure.
    const l = await load('fo-kill', 4, RESEND_AFTER_MS);
    for (let k = 0; k < 4; k++) {
      const shard = k % 2;
      const node = await leaderOf('fo-kill', shard);
      l.fault({ shard, node, kind: 'kill', at: performance.now() });
      await cluster.kill(node);
      await sleep(2_500);
      await cluster.startNode(node);
      await sleep(1_500);
    }
    await sleep(500);
    await l.stop();
    const f = report('SIGKILL', l);
    assert.equal(l.replies['TIMEOUT'] ?? 0, 0, `copies of writes with a ${DEADLINE_MS} ms deadline timed out: ${JSON.stringify(l.replies)}`);
    assert.ok((l.replies['noReply'] ?? 0) <= l.faults.length * 8, `more copies went unanswered than were in flight on killed routers: ${JSON.stringify(l.replies)}`);
    const firsts = f.toFirstWrite.map((x) => x ?? Infinity);
    assert.ok(firsts.every((x) => x < DEADLINE_MS), `fault to first write: ${firsts.map((x) => x.toFixed(0)).join(', ')} ms`);
    assert.ok(percentile(firsts, 50) < 1_500, `fault to first write, median over the kills: ${firsts.map((x) => x.toFixed(0)).join(', ')} ms`);
    assert.ok(f.longestGapMs < MAX_GAP_MS, `a shard went ${f.longestGapMs.toFixed(0)} ms without an acknowledged write`);
    assert.ok((f.counts['ok'] ?? 0) > 100, `only ${f.counts['ok'] ?? 0} writes acknowledged`);
  });

  it('failover - shard leaders SIGSTOPped under write load: no write times out, a write lands before a deadline after each pause (within 1.5 s at the median), and no shard goes a deadline without one', async () => {
    // A paused node's router keeps taking requests until the server drops its connection (about
    // 3 s here), and a writer whose copies all went there waits: four writers per shard, so that
    // some writer's copy goes to a live router. Which copies go there is chance, and so is a
    // second pause of a node that leads both shards: the bounds here are what a client must be
    // able to count on (a write's deadline); how fast failover is, is bench:failover's to measure
    // (a CI run saw one pause of four take 1,993 ms to the first write, the others 354-441 ms).
    const l = await load('fo-stop', 4, RESEND_AFTER_MS);
    for (let k = 0; k < 4; k++) {
      const shard = k % 2;
      const node = await leaderOf('fo-stop', shard);
      l.fault({ shard, node, kind: 'stop', at: performance.now() });
      cluster.pause(node);
      await sleep(5_000);
      cluster.resume(node);
      await sleep(2_000);
    }
    await sleep(500);
    await l.stop();
    const f = report('SIGSTOP', l);
    // Not one copy answered TIMEOUT: a router never waited out a write's deadline on the paused leader.
    assert.equal(l.replies['TIMEOUT'] ?? 0, 0, `copies of writes with a ${DEADLINE_MS} ms deadline timed out: ${JSON.stringify(l.replies)}`);
    const firsts = f.toFirstWrite.map((x) => x ?? Infinity);
    assert.ok(firsts.every((x) => x < DEADLINE_MS), `fault to first write: ${firsts.map((x) => x.toFixed(0)).join(', ')} ms`);
    assert.ok(percentile(firsts, 50) < 1_500, `fault to first write, median over the pauses: ${firsts.map((x) => x.toFixed(0)).join(', ')} ms`);
    assert.ok(f.longestGapMs < DEADLINE_MS, `a shard went ${f.longestGapMs.toFixed(0)} ms without an acknowledged write`);
  });
});
