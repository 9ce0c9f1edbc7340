/**
 * The second half of the simulation's seeds (sim-seeds.ts; the first half and the checks that the
 * simulation catches deliberate bugs are in raft-sim.test.ts).
 */
import { describe } from 'node:test';
import { seedsTest } from './sim-seeds.js';

describe('raft simulation, second half of the seeds', () => {
  seedsTest(2, 2);
});
