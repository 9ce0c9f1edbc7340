/**
 * The simulation's seeds as a test, in parts: raft-sim.test.ts runs the first half of them and
 * raft-sim-2.test.ts the second (Node 20's `--test-timeout` limits a whole file, and the 2,000
 * seeds take ~65 s on a quiet 2-core machine, longer under other tests' load). `SEEDS=n` runs n
 * seeds in all (default 2,000); `SEED=k` replays exactly one (in each file that is run). A failing
 * seed is printed with the command that replays it.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SimCluster, SimViolation } from './sim-cluster.js';

const SEEDS = Number(process.env['SEEDS'] ?? 2000);
const ONE = process.env['SEED'] !== undefined ? Number(process.env['SEED']) : undefined;
const replay = (seed: number): string => `SEED=${seed} node --test dist/test/sim/raft-sim.test.js`;

async function runSeed(seed: number): Promise<{ error?: string; healSteps?: number; stats?: SimCluster['stats'] }> {
  const sim = new SimCluster({ seed });
  try {
    const healSteps = await sim.run();
    return { healSteps, stats: sim.stats };
  } catch (err) {
    const msg = err instanceof SimViolation ? err.message : `seed ${seed}: ${(err as Error).stack ?? String(err)}`;
    return { error: msg };
  }
}

/** The seeds of part `part` (1-based) of `parts` equal parts of 1..SEEDS, or only SEED. */
export function partSeeds(part: number, parts: number, seeds = SEEDS): number[] {
  const from = Math.floor(((part - 1) * seeds) / parts) + 1;
  const to = Math.floor((part * seeds) / parts);
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** Declares the test that runs part `part` of `parts` of the seeds, each checked for every safety property and a heal. */
export function seedsTest(part: number, parts: number): void {
  const seeds = ONE !== undefined ? [ONE] : partSeeds(part, parts);
  const label = ONE !== undefined ? `seed ${ONE}` : `seeds ${seeds[0]}-${seeds[seeds.length - 1]} of ${SEEDS}`;
  it(`raft sim - ${label} keep every safety property and heal`, async () => {
    assert.ok(seeds.length > 0, `no seeds in part ${part} of ${parts} of SEEDS=${SEEDS}`);
    const failures: string[] = [];
    const totals = {
      writes: 0, commits: 0, elections: 0, snapshots: 0, confChanges: 0, crashes: 0, reads: 0, leaseReads: 0, followerReads: 0, askedReads: 0, corruptions: 0, transfers: 0, damagedOutages: 0,
      movesPlanned: 0, movesDone: 0, movesStopped: 0, coordinatorCrashes: 0, retargets: 0, replicasDeleted: 0, joins: 0, joinsAfterAdded: 0,
    };
    let maxHeal = 0;
    for (const seed of seeds) {
      const r = await runSeed(seed);
      if (r.error) failures.push(`${r.error}\n  replay: ${replay(seed)}`);
      else {
        maxHeal = Math.max(maxHeal, r.healSteps ?? 0);
        for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.stats?.[k] ?? 0;
      }
    }
    console.log(`raft sim: ${label}, ${failures.length} failed; slowest heal ${maxHeal} steps; totals ${JSON.stringify(totals)}`);
    assert.equal(failures.length, 0, `${failures.length} seeds failed; first ones:\n${failures.slice(0, 3).join('\n')}`);
    if (ONE === undefined) {
      // The faults must really happen, or the run proves little.
      assert.ok(totals.damagedOutages <= seeds.length / 100, `too many outages by damaged replicas: ${totals.damagedOutages}`);
      assert.ok(totals.snapshots > 0 && totals.confChanges > 0 && totals.crashes > 0 && totals.reads > 0 && totals.leaseReads > 0 && totals.followerReads > 0 && totals.askedReads > 0 && totals.corruptions > 0 && totals.transfers > 0 && totals.writes > 0, JSON.stringify(totals));
      assert.ok(totals.movesDone > 0 && totals.coordinatorCrashes > 0 && totals.replicasDeleted > 0 && totals.joinsAfterAdded > 0 && totals.joins > totals.joinsAfterAdded, JSON.stringify(totals));
    }
  });
}
