/**
 * Resource limits (docs/operations.md), on one real node whose data directory is a small tmpfs the
 * test mounts: a disk that fills refuses writes with UNAVAILABLE naming the node and the cause,
 * loses nothing acknowledged, keeps serving reads, and takes writes again by itself once space is
 * freed; `--max-memory` refuses writes, naming the limit, while reads go on; a node past its bound
 * of requests in flight refuses the rest at once instead of letting them time out.
 * Needs root (mount): without it, it fails saying so.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { ShoalError } from '../../src/runtime/errors.js';
import { TestCluster, type TestNode } from '../helpers/cluster.js';

const FS_SIZE = '48m';
const MIN_FREE = 16 * 2 ** 20;
const DIM = 64;
const BATCH = 200;

let cluster: TestCluster;
let client: ShoalClient;
const acked: string[] = [];
let mounted: string | undefined;

function vectorOf(i: number): number[] {
  return Array.from({ length: DIM }, (_, d) => Math.sin(i * 0.37 + d * 1.3));
}

function batch(from: number): { id: string; vector: number[]; metadata: { i: number } }[] {
  return Array.from({ length: BATCH }, (_, k) => ({ id: `p${from + k}`, vector: vectorOf(from + k), metadata: { i: from + k } }));
}

/** The error a call fails with, and how long it took to fail; fails the test if it succeeds. */
async function refusal(f: () => Promise<unknown>): Promise<{ err: ShoalError; ms: number }> {
  const t0 = performance.now();
  try {
    await f();
  } catch (err) {
    assert.ok(err instanceof ShoalError, `a ShoalError, got ${String(err)}`);
    return { err, ms: performance.now() - t0 };
  }
  return assert.fail('the call succeeded; it should have been refused');
}

function mountTmpfs(node: TestNode): void {
  mkdirSync(node.dataDir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FS_SIZE}`, 'tmpfs', node.dataDir], { stdio: 'pipe' });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`this test mounts a ${FS_SIZE} tmpfs on ${node.dataDir} and needs root for it: mount failed: ${stderr || String(err)}`);
  }
  mounted = node.dataDir;
}

function unmount(node: TestNode): void {
  if (mounted !== node.dataDir) return;
  execFileSync('umount', [node.dataDir], { stdio: 'pipe' });
  mounted = undefined;
}

/** Restarts n1 with `env` on top of the cluster's, and waits until its shard serves reads again. */
async function restartWith(env: Record<string, string>): Promise<void> {
  const n1 = cluster.nodes.get('n1') as TestNode;
  await cluster.stopNode('n1');
  n1.env = { SHOAL_MIN_FREE_DISK: String(MIN_FREE), ...env };
  await cluster.startNode('n1');
  const coll = client.collection('fill');
  await cluster.waitFor(async () => (await coll.count({ consistency: 'strong', timeoutMs: 2_000 }).catch(() => -1)) === acked.length, 'n1 serves its shard again');
}

before(async () => {
  cluster = await TestCluster.start({ nodes: 1, nodeEnv: { n1: { SHOAL_MIN_FREE_DISK: String(MIN_FREE) } }, prepare: mountTmpfs, release: unmount });
  client = await cluster.client();
  await client.createCollection({ name: 'fill', dim: DIM, metric: 'l2', shards: 1, replicas: 1 });
});

after(async () => {
  try {
    await cluster?.stop();
  } finally {
    // If the cluster never started far enough to release it.
    if (mounted) execFileSync('umount', ['-l', mounted], { stdio: 'pipe' });
  }
});

describe('resource limits', () => {
  it('disk - a filling disk refuses writes naming the node and cause, keeps every acknowledged write and reads, and recovers by itself', async (t) => {
    const n1 = cluster.nodes.get('n1') as TestNode;
    const pid = n1.proc?.pid;
    const coll = client.collection('fill');
    // Fill all but 8 MiB above the reserve with a file of the test's, so that a few MiB of writes reach it.
    const s = statfsSync(n1.dataDir);
    const free = s.bavail * s.bsize;
    const filler = join(n1.dataDir, 'filler.bin');
    const fill = free - MIN_FREE - 8 * 2 ** 20;
    assert.ok(fill > 0, `the tmpfs has ${free} bytes free; the test needs more than ${MIN_FREE + 8 * 2 ** 20}`);
    writeFileSync(filler, Buffer.alloc(fill, 1));

    let refused: { err: ShoalError; ms: number } | undefined;
    for (let b = 0; b < 400 && !refused; b++) {
      const points = batch(acked.length);
      const t0 = performance.now();
      try {
        await coll.upsert(points, { timeoutMs: 5_000 });
        acked.push(...points.map((p) => p.id));
      } catch (err) {
        assert.ok(err instanceof ShoalError, String(err));
        refused = { err, ms: performance.now() - t0 };
      }
    }
    assert.ok(refused, `400 batches of ${BATCH} points were all taken on a ${FS_SIZE} disk`);
    assert.ok(acked.length > 0, 'some writes were taken before the disk filled');
    t.diagnostic(`${acked.length} points acknowledged, then refused in ${refused.ms.toFixed(0)} ms: ${refused.err.message}`);
    assert.equal(refused.err.code, 'UNAVAILABLE', refused.err.message);
    assert.match(refused.err.message, /node n1: disk full \(ENOSPC\)/);
    assert.ok(refused.err.message.includes(n1.dataDir), `the message names the data directory: ${refused.err.message}`);
    assert.match(refused.err.message, /--min-free-disk/);
    assert.ok(refused.ms < 2_000, `refused at once, not at the 5 s deadline: took ${refused.ms.toFixed(0)} ms`);
    const again = await refusal(() => coll.upsert(batch(1_000_000), { timeoutMs: 5_000 }));
    assert.equal(again.err.code, 'UNAVAILABLE');
    assert.match(again.err.message, /disk full/);

    // Reads are served, and every acknowledged write is there.
    assert.equal(await coll.count({ consistency: 'strong' }), acked.length);
    for (let i = 0; i < acked.length; i += 1_000) {
      const ids = acked.slice(i, i + 1_000);
      const got = await coll.get(ids, { consistency: 'strong' });
      assert.deepEqual(got.map((p) => p.id), ids, `acknowledged points ${i}..${i + ids.length - 1} are all there`);
    }
    const hit = await coll.search(vectorOf(7), { k: 3, consistency: 'strong' });
    assert.equal(hit.partial, false);
    assert.equal(hit.hits[0]?.id, 'p7');

    // Space is freed: writes are taken again, by the same process.
    unlinkSync(filler);
    const extra = batch(2_000_000);
    await cluster.waitFor(async () => (await coll.upsert(extra, { timeoutMs: 2_000 }).then(() => true, () => false)), 'a write taken once space is freed', 10_000);
    acked.push(...extra.map((p) => p.id));
    assert.equal(n1.proc?.pid, pid);
    assert.equal(n1.proc?.exitCode, null, `n1 is still running: ${n1.log.join('').slice(-500)}`);
    assert.equal((await coll.get([extra[0]?.id as string]))[0]?.id, extra[0]?.id);
    assert.equal(await coll.count({ consistency: 'strong' }), acked.length);
  });

  it('memory - past --max-memory a node refuses writes naming the limit, and serves reads', async (t) => {
    await restartWith({ SHOAL_MAX_MEMORY: '32MiB' });
    const coll = client.collection('fill');
    const { err, ms } = await refusal(() => coll.upsert(batch(3_000_000), { timeoutMs: 5_000 }));
    t.diagnostic(`refused in ${ms.toFixed(0)} ms: ${err.message}`);
    assert.equal(err.code, 'UNAVAILABLE', err.message);
    assert.match(err.message, /node n1: memory .* of its limit of 32\.0 MiB \(--max-memory\)/);
    assert.ok(ms < 2_000, `refused at once: took ${ms.toFixed(0)} ms`);
    const got = await coll.get(acked.slice(0, 50), { consistency: 'strong' });
    assert.equal(got.length, 50);
    const hit = await coll.search(vectorOf(11), { k: 1, consistency: 'strong' });
    assert.equal(hit.hits[0]?.id, 'p11');
    assert.equal(await coll.count({ consistency: 'strong' }), acked.length, 'the refused write left nothing behind');
  });

  it('overload - past its bound of requests in flight a node answers UNAVAILABLE at once, never TIMEOUT, and stays up', async (t) => {
    await restartWith({ SHOAL_MAX_PENDING_REQUESTS: '2' });
    const n1 = cluster.nodes.get('n1') as TestNode;
    const coll = client.collection('fill');
    const DEADLINE = 10_000;
    const outcomes = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const t0 = performance.now();
        try {
          await coll.search(vectorOf(i), { k: 10, ef: 200, consistency: 'eventual', timeoutMs: DEADLINE });
          return { code: 'OK', ms: performance.now() - t0, message: '' };
        } catch (err) {
          const e = err as ShoalError;
          return { code: String(e.code), ms: performance.now() - t0, message: e.message };
        }
      }),
    );
    const by = (code: string): typeof outcomes => outcomes.filter((o) => o.code === code);
    const unavailable = by('UNAVAILABLE');
    t.diagnostic(`300 searches: ${by('OK').length} served, ${unavailable.length} refused (slowest refusal ${Math.max(0, ...unavailable.map((o) => o.ms)).toFixed(0)} ms), ${by('TIMEOUT').length} timed out; ${unavailable[0]?.message ?? ''}`);
    assert.equal(by('TIMEOUT').length, 0, 'no request timed out');
    assert.equal(by('OK').length + unavailable.length, outcomes.length, `only OK or UNAVAILABLE: ${JSON.stringify(outcomes.find((o) => o.code !== 'OK' && o.code !== 'UNAVAILABLE'))}`);
    assert.ok(unavailable.length > 0, 'some requests were refused');
    assert.ok(by('OK').length > 0, 'some requests were served');
    assert.match(unavailable[0]?.message ?? '', /node n1 is overloaded: .*--max-pending-requests 2/);
    const slowest = Math.max(...unavailable.map((o) => o.ms));
    assert.ok(slowest < DEADLINE / 4, `every refusal came well before the ${DEADLINE} ms deadline: the slowest took ${slowest.toFixed(0)} ms`);
    // The node is up and serves again.
    assert.equal(n1.proc?.exitCode, null);
    assert.equal((await coll.search(vectorOf(3), { k: 1, consistency: 'strong' })).hits[0]?.id, 'p3');
  });
});
