/**
 * `npm run fuzz -- --runs N --seed S [--nodes K]`: the hostile-input property of
 * test/integration/fuzz.test.ts, for as many requests as asked, on a fresh cluster of real
 * node processes (nats-server on loopback). Exits 1 with the first failing and the shrunk
 * request when one fails. Without `--seed`, a random seed (printed).
 */
import { parseArgs } from 'node:util';
import { TestCluster } from './cluster.js';
import { runFuzz } from './fuzz-run.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10000' }, seed: { type: 'string' }, nodes: { type: 'string', default: '3' }, points: { type: 'string', default: '40' } } });
const num = (name: string, v: string | undefined, min: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer of at least ${min}, got ${String(v)}`);
    process.exit(2);
  }
  return n;
};
const runs = num('runs', values.runs, 1);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : num('seed', values.seed, 0);
const nodes = num('nodes', values.nodes, 1);
const points = num('points', values.points, 1);

console.log(`fuzz: seed ${seed}, ${runs} requests, ${nodes} node(s)`);
const cluster = await TestCluster.start({ nodes });
let code = 0;
try {
  const t0 = Date.now();
  const { stats, failure } = await runFuzz(cluster, { runs, seed, points, log: (l) => console.log(l) });
  console.log(`fuzz: ${stats.requests} requests in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${stats.ok} ok, errors ${JSON.stringify(Object.fromEntries(stats.errors))}, slowest reply ${stats.slowestMs.toFixed(0)} ms`);
  if (failure) {
    console.error(failure);
    code = 1;
  } else {
    console.log('fuzz: every reply was a PROTOCOL.md reply; every node is up; the checked collection is unchanged');
  }
} catch (err) {
  console.error(`fuzz: ${(err as Error).stack ?? String(err)}`);
  code = 1;
} finally {
  await cluster.stop();
}
process.exit(code);
