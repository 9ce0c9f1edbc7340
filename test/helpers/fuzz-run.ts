/**
 * Runs the hostile-input property (requests from fuzz-requests.ts, checks from fuzz-checks.ts) against a running cluster: seeds the
 * checked collection, sends `runs` generated requests (fast-check, seeded), and checks after
 * each write to the checked collection that its count holds, after each accepted upsert (to the
 * scratch collection) that its points read back as sent, every 250 requests and at the end
 * that every node is up and every seeded point reads back the same. A failure is shrunk to a
 * minimal request, and both the first failing request and the shrunk one are in the message.
 * The {@link REGRESSIONS} go first.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { connect } from '@nats-io/transport-node';
import type { TestCluster } from './cluster.js';
import { assertNodesUp, checkStored, isSafe, newStats, sendAndCheck, snapshotOf, type FuzzStats } from './fuzz-checks.js';
import { DIM, FUZZED, REGRESSIONS, SCRATCH, fuzzRequest, seedPoints, showRequest } from './fuzz-requests.js';

export interface FuzzOptions {
  runs: number;
  seed: number;
  /** Seeded points in the checked collection. */
  points?: number;
  log?: (line: string) => void;
}

export interface FuzzResult {
  stats: FuzzStats;
  /** The report of a failure (seed, first failing request, shrunk request, error); undefined when all held. */
  failure: string | undefined;
}

const FULL_CHECK_EVERY = 250;

export async function runFuzz(cluster: TestCluster, opts: FuzzOptions): Promise<FuzzResult> {
  const log = opts.log ?? (() => undefined);
  const nodes = [...cluster.nodes.keys()];
  const client = await cluster.client();
  await client.createCollection({ name: FUZZED, dim: DIM, metric: 'cosine', shards: 2, replicas: nodes.length });
  await client.createCollection({ name: SCRATCH, dim: DIM, metric: 'l2', shards: 1, replicas: 1 });
  const seeded = seedPoints(opts.points ?? 40);
  await client.collection(FUZZED).upsert(seeded);
  const ids = seeded.map((p) => p.id);
  const nc = await connect({ servers: cluster.nats.url });
  try {
    const before = await snapshotOf(nc, ids);
    assert.equal(before.count, seeded.length, 'the checked collection holds the seeded points');
    const stats = newStats();
    let first: string | undefined;
    let sent = 0;
    const property = fc.asyncProperty(fuzzRequest, async (req) => {
      fc.pre(isSafe(req, nodes, nc.info?.max_payload ?? 1_048_576));
      try {
        const reply = await sendAndCheck(nc, req, stats);
        sent++;
        const t = req.target;
        if (t.kind === 'data' && t.op === 'upsert' && typeof reply['upserted'] === 'number' && reply['upserted'] > 0) await checkStored(nc, req);
        if (t.kind === 'data' && t.collection === FUZZED && (t.op === 'upsert' || t.op === 'delete')) {
          assert.equal((await snapshotOf(nc, [])).count, seeded.length, `a ${t.op} to ${FUZZED} changed its count`);
        }
        if (sent % FULL_CHECK_EVERY === 0) {
          assertNodesUp(cluster);
          assert.deepEqual(await snapshotOf(nc, ids), before, `the points of ${FUZZED} changed`);
          log(`fuzz: ${sent} requests, ${stats.ok} answered ok, errors ${JSON.stringify(Object.fromEntries(stats.errors))}, slowest ${stats.slowestMs.toFixed(0)} ms`);
        }
      } catch (err) {
        first ??= `${showRequest(req)}\n  ${(err as Error).message}`;
        throw err;
      }
    });
    const out = await fc.check(property, { seed: opts.seed, numRuns: opts.runs, maxSkipsPerRun: 1, examples: REGRESSIONS.map((r) => [r]) });
    let failure: string | undefined;
    if (out.failed) {
      const shrunk = out.counterexample?.[0];
      failure = [
        `fuzz failed (seed ${opts.seed}, path ${out.counterexamplePath ?? '?'}, after ${out.numRuns} runs and ${out.numShrinks} shrinks)`,
        `first failing request: ${first ?? '?'}`,
        `shrunk to: ${shrunk ? showRequest(shrunk) : '?'}`,
        `error: ${out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance)}`,
      ].join('\n');
    } else {
      assertNodesUp(cluster);
      assert.deepEqual(await snapshotOf(nc, ids), before, `the points of ${FUZZED} changed`);
    }
    return { stats, failure };
  } finally {
    await nc.close();
  }
}
