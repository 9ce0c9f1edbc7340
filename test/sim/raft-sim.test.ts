/**
 * The deterministic simulation (sim-cluster.ts: the real Raft host over an in-memory network, disk and clock; sim-moves.ts:
 * moves by the real move executor under a crashing coordinator) over many seeds. `SEEDS=n` runs more (default
 * 2,000); `SEED=k` replays exactly one. A failing seed is printed with the command that replays it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimCluster, SimViolation, type SimOptions } from './sim-cluster.js';

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

describe('raft simulation', () => {
  it(`raft sim - ${ONE !== undefined ? `seed ${ONE}` : `${SEEDS} seeds`} keep every safety property and heal`, async () => {
    const seeds = ONE !== undefined ? [ONE] : Array.from({ length: SEEDS }, (_, i) => i + 1);
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
    console.log(`raft sim: ${seeds.length} seeds, ${failures.length} failed; slowest heal ${maxHeal} steps; totals ${JSON.stringify(totals)}`);
    assert.equal(failures.length, 0, `${failures.length} seeds failed; first ones:\n${failures.slice(0, 3).join('\n')}`);
    if (ONE === undefined) {
      // The faults must really happen, or the run proves little.
      assert.ok(totals.damagedOutages <= seeds.length / 100, `too many outages by damaged replicas: ${totals.damagedOutages}`);
      assert.ok(totals.snapshots > 0 && totals.confChanges > 0 && totals.crashes > 0 && totals.reads > 0 && totals.leaseReads > 0 && totals.followerReads > 0 && totals.askedReads > 0 && totals.corruptions > 0 && totals.transfers > 0 && totals.writes > 0, JSON.stringify(totals));
      assert.ok(totals.movesDone > 0 && totals.coordinatorCrashes > 0 && totals.replicasDeleted > 0 && totals.joinsAfterAdded > 0 && totals.joins > totals.joinsAfterAdded, JSON.stringify(totals));
    }
  });

  it('raft sim - the checkers catch a host that acknowledges appends before they are flushed', async () => {
    let caught: string | undefined;
    for (let seed = 1; seed <= 3000 && !caught; seed++) {
      const sim = new SimCluster({ seed, bugs: { ackBeforeFlush: true } });
      try {
        await sim.run();
      } catch (err) {
        if (err instanceof SimViolation && !/after healing|after it committed/.test(err.message)) caught = err.message;
      }
    }
    assert.ok(caught, 'no seed caught the deliberate bug');
    console.log(`deliberate host bug caught: ${caught}`);
  });

  it('raft sim - the checkers catch a core that grants votes without the log check (§5.4.1)', async () => {
    let caught: string | undefined;
    for (let seed = 1; seed <= 3000 && !caught; seed++) {
      const sim = new SimCluster({ seed, bugs: { voteWithoutLogCheck: true } });
      try {
        await sim.run();
      } catch (err) {
        if (err instanceof SimViolation && !/after healing/.test(err.message)) caught = err.message;
      }
    }
    assert.ok(caught, 'no seed caught the deliberate bug');
    console.log(`deliberate bug caught: ${caught}`);
  });

  it('raft sim - the checkers catch a leader that commits without its follower lease holders', async () => {
    let caught: string | undefined;
    for (let seed = 1; seed <= 3000 && !caught; seed++) {
      const sim = new SimCluster({ seed, bugs: { commitWithoutLeaseHolders: true } });
      try {
        await sim.run();
      } catch (err) {
        if (err instanceof SimViolation && /lease read/.test(err.message)) caught = err.message;
      }
    }
    assert.ok(caught, 'no seed caught the deliberate bug');
    console.log(`deliberate bug caught: ${caught}`);
  });

  it('raft sim - the checkers catch a follower whose read joins a read index request already sent to the leader (reads share only a request sent after they began)', async () => {
    const caught = await firstCaught({ bugs: { readJoinsSentRequest: true } }, /asked over raft/);
    assert.ok(caught, 'no seed caught the deliberate bug');
    console.log(`deliberate bug caught: ${caught}`);
  });

  /** The first violation matching `match` over seeds 1..3000 with `opts`. */
  async function firstCaught(opts: Omit<SimOptions, 'seed'>, match: RegExp): Promise<string | undefined> {
    for (let seed = 1; seed <= 3000; seed++) {
      const sim = new SimCluster({ seed, ...opts });
      try {
        await sim.run();
      } catch (err) {
        if (err instanceof SimViolation && match.test(err.message)) return err.message;
      }
    }
    return undefined;
  }

  it('raft sim - the move checks catch a coordinator whose membership changes are not idempotent (one that takes over repeats a change and sticks)', async () => {
    const caught = await firstCaught({ moves: true, moveBugs: { confNotIdempotent: true } }, /did not finish/);
    assert.ok(caught, 'no seed caught the deliberate bug');
    console.log(`deliberate move bug caught: ${caught.slice(0, 200)}`);
  });

  it('raft sim - the move checks catch a retarget that picks a node already in the shard (as coordinator.ts\'s could before 1f11fff): the move ends a voter short', async () => {
    const caught = await firstCaught({ moves: true, voters: 4, steps: 1500, moveBugs: { retargetToMember: true } }, /ended with/);
    assert.ok(caught, 'no seed caught the deliberate bug');
    console.log(`deliberate move bug caught: ${caught}`);
  });

  it('raft sim - a seed replays exactly', async () => {
    const a = new SimCluster({ seed: 42 });
    const b = new SimCluster({ seed: 42 });
    await a.run();
    await b.run();
    assert.deepEqual(a.stats, b.stats);
  });
});
