/**
 * Hostile input against a running cluster (issue 18, item 3): fast-check sends generated
 * requests — random bytes, JSON and CBOR of any shape, nesting 100,000 deep, huge strings and
 * numbers, `__proto__` keys, lone surrogates and invalid UTF-8, NaN and Infinity in Float32Arrays,
 * filters past their depth limit — to every public subject, data and admin. Each must get a
 * PROTOCOL.md reply in time; afterwards every node is up and the checked collection's points are
 * unchanged. A fixed seed in CI (printed); `npm run fuzz -- --runs N --seed S` runs longer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestCluster } from '../helpers/cluster.js';
import { runFuzz } from '../helpers/fuzz-run.js';

const SEED = 1812;
const RUNS = 2_400;

let cluster: TestCluster;

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
});

after(async () => {
  await cluster?.stop();
});

describe('fuzz', () => {
  it(`fuzz - ${RUNS} hostile requests on every public subject get PROTOCOL.md replies; nodes stay up and the checked collection is unchanged (seed ${SEED})`, async () => {
    console.log(`fuzz: seed ${SEED}, ${RUNS} requests (npm run fuzz -- --runs ${RUNS} --seed ${SEED} repeats this run)`);
    const { stats, failure } = await runFuzz(cluster, { runs: RUNS, seed: SEED, log: (l) => console.log(l) });
    assert.equal(failure, undefined, failure);
    assert.ok(stats.requests >= 2_000, `at least 2,000 requests were sent, got ${stats.requests}`);
    const errors = [...stats.errors.values()].reduce((a, b) => a + b, 0);
    assert.ok(errors > stats.requests / 2, `most hostile requests are refused (${errors} of ${stats.requests})`);
    console.log(`fuzz: ${stats.requests} requests, ${stats.ok} ok, errors ${JSON.stringify(Object.fromEntries(stats.errors))}, slowest reply ${stats.slowestMs.toFixed(0)} ms`);
  });
});
