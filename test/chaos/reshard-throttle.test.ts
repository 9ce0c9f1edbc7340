/**
 * A reshard at the operator's pace, on real node processes: its copy shows in rebalance.status as
 * moves of reason `reshard` with bytes growing, and is held to the coordinator's maxBytesPerSec,
 * while writers run (no request fails, no acknowledged write is lost).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { OpsClient, type Move } from '../../src/client/ops.js';
import { TestCluster } from '../helpers/cluster.js';
import { checkNothingLost, startLoad, stopLoads } from '../helpers/ops-load.js';

let cluster: TestCluster;
let client: ShoalClient;
let ops: OpsClient;
const DIM = 256;
const POINTS = 6_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  client = await cluster.client({ timeoutMs: 15_000 });
  ops = new OpsClient(client);
});

after(async () => {
  await stopLoads();
  await cluster?.stop();
});

describe('reshard at the operator\'s pace', () => {
  it('reshard - rebalance.status shows the copy as moves of reason reshard, bytes growing, and the copy rate stays under maxBytesPerSec (within 20%) and above half of it', async () => {
    const rate = 400_000;
    // hash 1 -> 2 moves about half: 3,000 points of about 1 KiB, some 3 MB
    await client.createCollection({ name: 'big', dim: DIM, metric: 'l2', shards: 1, replicas: 3, sharding: { strategy: 'hash' } });
    for (let b = 0; b < POINTS / 250; b++) {
      await client.collection('big').upsert(Array.from({ length: 250 }, (_, i) => ({ id: `p${b}-${i}`, vector: Array.from({ length: DIM }, (_, d) => Math.sin(b * 250 + i + d * 0.1)) })), { requestId: `seed-${b}` });
    }
    await ops.configureRebalance({ maxBytesPerSec: rate });
    const load = startLoad(client, ['big'], DIM, { writers: 2, readers: 1, timeoutMs: 15_000 });
    const t0 = Date.now();
    await ops.reshard('big', 2);
    /** Each time the reshard's bytes changed: when it was first seen, and the sum over its moves. */
    const changes: { t: number; bytes: number }[] = [];
    const seen: Move[] = [];
    const phases = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const s = await ops.rebalanceStatus();
      const moves = s.moves.filter((m) => m.reason === 'reshard');
      seen.push(...moves);
      for (const m of moves) phases.add(m.phase);
      const copying = moves.some((m) => m.phase === 'copy');
      const bytes = moves.reduce((n, m) => n + m.bytesCopied, 0);
      if (copying && bytes > 0 && (changes.length === 0 || bytes !== changes[changes.length - 1]?.bytes)) changes.push({ t: Date.now(), bytes });
      if (moves.length > 0) assert.equal(s.state, 'running', 'a reshard in flight makes the coordinator running');
      if (changes.length > 0 && !copying) break;
      await sleep(100);
    }
    assert.ok(seen.length > 0, 'the reshard shows in rebalance.status');
    const m = seen[0] as Move;
    assert.equal(m.id, 'r-big-0-1');
    assert.equal(m.collection, 'big');
    assert.equal(m.shard, 1, 'the target shard');
    assert.ok(typeof m.from === 'string' && /^n\d/.test(m.from) && /^n\d/.test(m.to), `from and to are nodes: ${m.from} -> ${m.to}`);
    assert.ok(phases.has('copy'), `phases seen: ${[...phases].join(', ')}`);
    // The last figure is the copy's end, seen up to a progress write (a second) after it ended: leave it out.
    const growing = changes.slice(0, -1);
    assert.ok(growing.length >= 4, `enough progress samples during the copy (${growing.length})`);
    const first = growing[0]!;
    const last = growing[growing.length - 1]!;
    const measured = ((last.bytes - first.bytes) / (last.t - first.t)) * 1_000;
    const total = seen.filter((x) => x.phase === 'copy').map((x) => x.bytesTotal ?? 0).pop() ?? 0;
    const copiedAll = changes[changes.length - 1]!.bytes;
    console.log(`reshard copy: ${copiedAll} bytes (estimate ${total}), ${growing.length} samples, ${Math.round(measured)} B/s for a limit of ${rate} B/s`);
    assert.ok(copiedAll > 2_000_000, `the copy moved megabytes (${copiedAll})`);
    // The limit is what the throttle promises: never more than 20% over it. Under it, the pacing
    // loses the time each page takes to pull and propose (measured 308 to 401 KB/s at 400 KB/s on
    // a loaded two-core machine): the copy must still run at half the limit or more.
    assert.ok(measured <= rate * 1.2, `copy rate ${Math.round(measured)} B/s is over the limit ${rate} B/s by more than 20%`);
    assert.ok(measured >= rate * 0.5, `copy rate ${Math.round(measured)} B/s is under half the limit ${rate} B/s`);
    await cluster.waitFor(async () => (await client.describeCollection('big')).resharding === null, 'big resharded 1 -> 2', 60_000);
    console.log(`reshard 1 -> 2 of ${POINTS} points in ${Date.now() - t0} ms`);
    const after = await ops.rebalanceStatus();
    assert.deepEqual(after.moves.filter((x) => x.reason === 'reshard'), [], 'no reshard move once it is done');
    const report = await load.stop();
    assert.deepEqual(report.failures, [], 'no request failed');
    assert.deepEqual(await checkNothingLost(client, report, new Map([['big', POINTS]])), [], 'no acknowledged write lost; count exact');
  });
});
