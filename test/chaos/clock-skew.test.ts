/**
 * Clock skew (docs/protocol.md, "Read consistency"): leased reads assume only that the nodes'
 * clocks run within 10% of true time. Here n1's clock runs 5% slow and n2's 5% fast (libfaketime,
 * Debian's `faketime` package, preloaded into the node processes: Date.now, timers and the
 * monotonic clock all run at that rate). Each node in turn is made the shard's leader and then
 * paused (SIGSTOP) past its lease while clients write and read `leased` through every router:
 * every key's history must be linearizable (test/helpers/linearizability.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { OpsClient } from '../../src/client/ops.js';
import { describeError } from '../../src/runtime/errors.js';
import { TestCluster } from '../helpers/cluster.js';
import { History } from '../helpers/linearizability.js';

const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';
const NAME = 'skew';
const KEYS = Array.from({ length: 8 }, (_, i) => `key-${i}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let cluster: TestCluster;
let client: ShoalClient;

function skewed(rate: string): Record<string, string> {
  return { LD_PRELOAD: FAKETIME_LIB, FAKETIME: `+0 x${rate}`, FAKETIME_NO_CACHE: '1' };
}

/**
 * Real milliseconds between a process's two lines written 1,000 ms apart by its own timer, when
 * run with `env` (start-up left out).
 */
function realMsPerFakeSecond(env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', 'console.log("a"); setTimeout(() => console.log("b"), 1000)'], { env: { ...process.env, ...env } });
    let out = '';
    let t0 = 0;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (t0 === 0 && out.includes('a')) t0 = performance.now();
      if (out.includes('b')) resolve(performance.now() - t0);
    });
    p.once('error', reject);
    p.once('exit', (code) => (out.includes('b') ? undefined : reject(new Error(`the clock probe exited (${String(code)}) before its second line`))));
  });
}

before(async () => {
  if (!existsSync(FAKETIME_LIB)) throw new Error(`${FAKETIME_LIB} is missing: install Debian's faketime package (scripts/setup.sh does)`);
  // The preload takes: a fake second lasts 952 ms of real time at x1.05 and 1,053 ms at x0.95.
  // (libfaketime now and then starts a process with its clock a little off: three tries.)
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) {
    const fast = await realMsPerFakeSecond(skewed('1.05'));
    const slow = await realMsPerFakeSecond(skewed('0.95'));
    seen.push(`${fast.toFixed(0)} and ${slow.toFixed(0)} ms`);
    if (slow - fast > 50) break;
    assert.ok(i < 2, `libfaketime does not change the clock rate of node: a fake second took ${seen.join(', then ')} at x1.05 and x0.95`);
  }
  cluster = await TestCluster.start({ nodes: 3, nodeEnv: { n1: skewed('0.95'), n2: skewed('1.05') } });
  client = await cluster.client({ timeoutMs: 10_000 });
});

after(async () => {
  await cluster?.stop();
});

describe('clock skew', () => {
  it('clock skew - nodes whose clocks run 5% slow and 5% fast, each made leader and paused past its lease: leased reads stay linearizable', async () => {
    await client.createCollection({ name: NAME, dim: 2, metric: 'l2', shards: 1, replicas: 3 });
    const c = client.collection(NAME);
    for (const key of KEYS) await c.upsert([{ id: key, vector: [0, 0], metadata: { token: 'init' } }]);
    const history = new History();
    let going = true;
    let seq = 0;
    const errors = new Map<string, number>();
    const worker = async (w: number): Promise<void> => {
      let i = 0;
      while (going) {
        const key = KEYS[(w * 3 + i++) % KEYS.length] as string;
        if (i % 3 === 0) {
          const token = `w${w}-${seq++}`;
          const op = history.invoke(key, 'write', token);
          try {
            await c.upsert([{ id: key, vector: [0, 0], metadata: { token } }], { timeoutMs: 5_000 });
            history.ok(op);
          } catch (err) {
            history.fail(op);
            errors.set(describeError(err).slice(0, 60), (errors.get(describeError(err).slice(0, 60)) ?? 0) + 1);
          }
        } else {
          const op = history.invoke(key, 'read');
          try {
            const [p] = await c.get([key], { consistency: 'leased', withMetadata: true, timeoutMs: 5_000 });
            history.ok(op, p ? String(p.metadata?.['token']) : null);
          } catch {
            history.fail(op);
          }
        }
        await sleep(5);
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => worker(w));
    const ops = new OpsClient(client);
    const timeline: string[] = [];
    try {
      for (const node of ['n1', 'n2', 'n3', 'n1', 'n2']) {
        await ops.transferLeader(NAME, 0, node, 10_000).catch((err: unknown) => timeline.push(`transfer to ${node} refused: ${describeError(err)}`));
        const leader = await cluster.leaderOf(client, NAME, 0);
        await sleep(1_000);
        timeline.push(`${leader} leads, paused 1.5 s`);
        cluster.pause(leader);
        await sleep(1_500);
        cluster.resume(leader);
        await sleep(1_000);
      }
    } finally {
      going = false;
      await Promise.all(workers);
    }
    const lin = history.check({ initial: Object.fromEntries(KEYS.map((k) => [k, 'init'])) });
    const done = history.operations.filter((o) => o.complete !== undefined);
    const reads = done.filter((o) => o.kind === 'read').length;
    console.log(`clock skew: ${lin.checkedOps} operations over ${lin.keys} keys checked in ${Math.round(lin.timeMs)} ms; ${reads} leased reads and ${done.length - reads} writes completed; failed writes ${JSON.stringify(Object.fromEntries(errors))}; ${timeline.join('; ')}`);
    assert.equal(lin.verdict, 'linearizable', `every key's history is linearizable: ${lin.why ?? ''} (key ${lin.key ?? ''})`);
    assert.ok(reads > 200, `enough leased reads to mean something: ${reads}`);
  });
});
