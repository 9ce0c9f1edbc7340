/**
 * The deterministic simulation (sim-cluster.ts: the real Raft host over an in-memory network, disk and clock; sim-moves.ts:
 * moves by the real move executor under a crashing coordinator) over many seeds, and the checks that it catches
 * deliberate bugs. The seeds are split between this file (the first half) and raft-sim-2.test.ts (the second), so that
 * neither file nears the runner's per-file time limit on a loaded machine (sim-seeds.ts: `SEEDS=n`, `SEED=k`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimCluster, SimViolation, type SimOptions } from './sim-cluster.js';
import { seedsTest } from './sim-seeds.js';

describe('raft simulation', () => {
  seedsTest(1, 2);

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
