/**
 * The cutover model (sim-reshard.ts) over many seeds: every strategy, shard counts 1 to 5 up and
 * down, a coordinator deposed and target leaders killed at random, replies lost. `SEEDS=n` runs
 * more (default 300); `SEED=k` replays one. And each deliberately broken cutover is caught.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReshardSim, ReshardViolation, type ReshardSimOptions } from './sim-reshard.js';

const SEEDS = Number(process.env['SEEDS'] ?? 300);
const ONE = process.env['SEED'] !== undefined ? Number(process.env['SEED']) : undefined;

describe('reshard simulation', () => {
  it(`reshard sim - ${ONE !== undefined ? `seed ${ONE}` : `${SEEDS} seeds`}: no key has two owners, no acknowledged write is lost, no read is stale, every reshard finishes`, async () => {
    const seeds = ONE !== undefined ? [ONE] : Array.from({ length: SEEDS }, (_, i) => i + 1);
    const failures: string[] = [];
    const totals: Record<string, number> = {};
    const kinds = new Set<string>();
    for (const seed of seeds) {
      const sim = new ReshardSim({ seed });
      kinds.add(sim.description.split(' ')[0] as string);
      try {
        await sim.run();
        for (const [k, v] of Object.entries(sim.stats)) totals[k] = (totals[k] ?? 0) + v;
      } catch (err) {
        failures.push(`${err instanceof ReshardViolation ? err.message : (err as Error).stack}\n  replay: SEED=${seed} node --test dist/test/sim/reshard-sim.test.js`);
      }
    }
    console.log(`reshard sim: ${seeds.length} seeds, ${failures.length} failed; totals ${JSON.stringify(totals)}`);
    assert.equal(failures.length, 0, `${failures.length} seeds failed; first ones:\n${failures.slice(0, 3).join('\n')}`);
    if (ONE === undefined) {
      assert.deepEqual([...kinds].sort(), ['consistent-hash', 'custom', 'hash', 'range']);
      // the faults and the races must really happen, or the run proves little
      for (const k of ['acked', 'refusedMoving', 'refusedStale', 'retriesAfterSwitch', 'imports', 'coordinatorCrashes', 'importerCrashes', 'lostReplies', 'scans']) {
        assert.ok((totals[k] ?? 0) > 0, `${k} never happened: ${JSON.stringify(totals)}`);
      }
    }
  });

  const bugs: [string, NonNullable<ReshardSimOptions['bugs']>][] = [
    ['targets switch before their imports reach the fences', { switchBeforeCaughtUp: true }],
    ['sources ignore their fence', { ignoreFence: true }],
    ['a known requestId skips every key of a retry', { dedupByIdOnly: true }],
    ['the copy\'s cursor is set at its newest page', { copyCursorAtNewestPage: true }],
    ['an imported request-id entry counts as the shard\'s own', { importedCountsAsOwn: true }],
  ];
  for (const [what, bug] of bugs) {
    it(`reshard sim - the checks catch a broken cutover: ${what}`, async () => {
      let caught: string | undefined;
      let seed = 1;
      for (; seed <= 600 && !caught; seed++) {
        try {
          await new ReshardSim({ seed, bugs: bug }).run();
        } catch (err) {
          if (err instanceof ReshardViolation) caught = err.message;
          else throw err;
        }
      }
      assert.ok(caught, `no seed of 600 caught it`);
      console.log(`reshard sim, ${what}: caught at seed ${seed - 1}: ${caught}`);
    });
  }
});
