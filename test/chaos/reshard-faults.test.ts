/**
 * Resharding under faults, on real node processes with writers, strong readers and searchers
 * running (docs/resharding.md): the active coordinator SIGKILLed before the fence, and a source
 * shard's leader SIGKILLed in the middle of the switch. Each reshard completes; no request fails;
 * no acknowledged write is lost; every key's history of strong reads and writes is linearizable
 * (test/helpers/linearizability.ts); a write retried with its requestId across the switch is
 * applied once. The nodes run with SHOAL_FAULTS=slow-reshard (3 s before the fence and before
 * the switch) so that the kills land inside those phases.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { OpsClient } from '../../src/client/ops.js';
import { describeError } from '../../src/runtime/errors.js';
import { TestCluster } from '../helpers/cluster.js';
import { History } from '../helpers/linearizability.js';
import { checkNothingLost, startLoad, stopLoads } from '../helpers/ops-load.js';

let cluster: TestCluster;
let client: ShoalClient;
let ops: OpsClient;
const DIM = 8;
const NAME = 'lin';
const KEYS = Array.from({ length: 24 }, (_, i) => `key-${i}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const vec = (i: number) => Array.from({ length: DIM }, (_, d) => Math.sin(i + d));

const stops: (() => Promise<unknown>)[] = [];

before(async () => {
  cluster = await TestCluster.start({ nodes: 4, env: { SHOAL_FAULTS: 'slow-reshard', SHOAL_DOWN_AFTER_MS: '2000' } });
  client = await cluster.client({ timeoutMs: 15_000 });
  ops = new OpsClient(client);
});

after(async () => {
  await stopLoads();
  await Promise.all(stops.map((s) => s()));
  await cluster?.stop();
});

/** Clients writing tokens to KEYS and reading them back strong, every call recorded for the linearizability check. */
function registers(history: History, clients: number): { stop(): Promise<string[]> } {
  const failures: string[] = [];
  let going = true;
  let seq = 0;
  const one = async (c: number): Promise<void> => {
    let i = 0;
    while (going) {
      const key = KEYS[(c * 7 + i++ * 5) % KEYS.length] as string;
      if (i % 2 === 0) {
        const token = `c${c}-${seq++}`;
        const op = history.invoke(key, 'write', token);
        try {
          await client.collection(NAME).upsert([{ id: key, vector: vec(seq), metadata: { token } }], { timeoutMs: 15_000 });
          history.ok(op);
        } catch (err) {
          history.fail(op);
          failures.push(`write ${key}: ${describeError(err)}`);
        }
      } else {
        const op = history.invoke(key, 'read');
        try {
          const [p] = await client.collection(NAME).get([key], { consistency: 'strong', withVector: false, withMetadata: true, timeoutMs: 15_000 });
          history.ok(op, p ? String(p.metadata?.['token']) : null);
        } catch (err) {
          history.fail(op);
          failures.push(`read ${key}: ${describeError(err)}`);
        }
      }
      await sleep(15);
    }
  };
  const tasks = Array.from({ length: clients }, (_, c) => one(c));
  const stop = async (): Promise<string[]> => {
    going = false;
    await Promise.all(tasks);
    return failures;
  };
  stops.push(stop);
  return { stop };
}

async function phaseIs(phases: string[], timeoutMs = 60_000): Promise<void> {
  const seen: string[] = [];
  await cluster.waitFor(async () => {
    const rs = (await client.describeCollection(NAME, 2_000).catch(() => undefined))?.resharding;
    const now = rs ? `${rs.from}->${rs.to} ${rs.phase}` : 'none';
    if (seen[seen.length - 1] !== now) seen.push(now);
    return phases.includes(rs?.phase ?? '');
  }, `reshard in ${phases.join(' or ')}`, timeoutMs).catch((err: unknown) => {
    throw new Error(`${describeError(err)}; phases seen: ${seen.join(', ')}`);
  });
}

async function done(shards: number): Promise<void> {
  await cluster.waitFor(async () => {
    const d = await client.describeCollection(NAME, 2_000).catch(() => undefined);
    return d !== undefined && d.resharding === null && d.shards.length === shards;
  }, `reshard to ${shards} done`, 120_000);
}

async function coordinator(): Promise<string> {
  for (;;) {
    const c = (await ops.rebalanceStatus().catch(() => undefined))?.coordinator;
    if (c) return c;
    await sleep(200);
  }
}

describe('reshard faults', () => {
  it('reshard faults - the coordinator killed before the fence, a source leader killed during the switch: both reshards finish; nothing fails, nothing is lost, every key linearizable, a retry across the switch applied once', async () => {
    await client.createCollection({ name: NAME, dim: DIM, metric: 'l2', shards: 2, replicas: 3 });
    for (const key of KEYS) await client.collection(NAME).upsert([{ id: key, vector: vec(0), metadata: { token: 'init' } }]);
    const history = new History();
    const initial = Object.fromEntries(KEYS.map((k) => [k, 'init']));
    const regs = registers(history, 3);
    const load = startLoad(client, [NAME], DIM, { timeoutMs: 15_000 });
    const timeline: string[] = [];
    const t0 = Date.now();
    const mark = (what: string) => timeline.push(`+${Date.now() - t0} ms ${what}`);

    // 2 -> 4, the coordinator killed while the copy runs or before the fence
    const c1 = await coordinator();
    await ops.reshard(NAME, 4);
    mark('reshard 2 -> 4 begun');
    await phaseIs(['copy', 'catch-up', 'fence']);
    mark(`kill the coordinator ${c1}`);
    await cluster.kill(c1);
    await done(4);
    mark('2 -> 4 done');
    await cluster.startNode(c1);

    // a write applied before the next switch, replaced by another, then retried after it
    const retried = KEYS[3] as string;
    await client.collection(NAME).upsert([{ id: 'retry-me', vector: vec(1), metadata: { token: 'first' } }], { requestId: 'reshard-retry' });
    await client.collection(NAME).upsert([{ id: 'retry-me', vector: vec(2), metadata: { token: 'second' } }], { requestId: 'reshard-replace' });

    // 4 -> 3, a source shard's leader killed during the switch
    await ops.reshard(NAME, 3);
    mark('reshard 4 -> 3 begun');
    await phaseIs(['switch']);
    const d = await client.describeCollection(NAME);
    const coord = await coordinator();
    const victim = d.shards.map((s) => s.leader).find((n) => n !== null && n !== coord) as string;
    mark(`kill ${victim}, leader of a source shard`);
    await cluster.kill(victim);
    await done(3);
    mark('4 -> 3 done');
    await cluster.startNode(victim);

    await client.collection(NAME).upsert([{ id: 'retry-me', vector: vec(1), metadata: { token: 'first' } }], { requestId: 'reshard-retry' });
    const [p] = await client.collection(NAME).get(['retry-me'], { consistency: 'strong', withMetadata: true });
    assert.equal(p?.metadata?.['token'], 'second', 'the write retried across the switch was not applied again');

    const regFailures = await regs.stop();
    const report = await load.stop();
    mark('load stopped');
    assert.deepEqual([...regFailures, ...report.failures], [], `no request failed; timeline:\n${timeline.join('\n')}`);
    assert.deepEqual(report.partialWhy, [], 'no search was partial');
    assert.deepEqual(await checkNothingLost(client, report, new Map([[NAME, KEYS.length + 1]])), [], 'no acknowledged write lost; count exact');
    const lin = history.check({ initial });
    console.log(`reshard faults: ${lin.checkedOps} register operations over ${lin.keys} keys checked in ${Math.round(lin.timeMs)} ms; ${report.writes} writes and ${report.reads} searches of the load; ${timeline.join('; ')}`);
    assert.equal(lin.verdict, 'linearizable', `every key's history is linearizable: ${lin.why ?? ''} (key ${lin.key ?? ''})`);
    const reads = history.operations.filter((o) => o.kind === 'read' && o.complete !== undefined).length;
    assert.ok(reads > 50, `enough strong reads to mean something: ${reads}`);
  });
});
