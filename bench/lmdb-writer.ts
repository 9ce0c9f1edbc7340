/**
 * One process of the raft benchmark's shared-disk anchor: durable LMDB commits one at a time
 * (put, then wait for `flushed`) for a while, in a fresh environment opened as a node opens its
 * own. The benchmark runs three at once, as three nodes on one machine share its disk.
 * Usage: node lmdb-writer.js <ms> <payload bytes>; prints one JSON line {n, perSec, p50ms, p99ms}.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openNodeEnv } from '../src/storage/node-env.js';
import { percentile, sortedCopy } from './lib/stats.js';

const ms = Number(process.argv[2]);
const bytes = Number(process.argv[3]);
if (!(ms > 0) || !(bytes > 0)) throw new Error('usage: lmdb-writer <ms> <payload bytes>');
const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-lmdb-'));
const env = openNodeEnv({ path: dir });
const db = env.openDB<Uint8Array, number>('bench', { encoding: 'binary' });
const value = new Uint8Array(bytes);
const lat: number[] = [];
const t0 = performance.now();
for (let k = 0; performance.now() - t0 < ms; k++) {
  const s = performance.now();
  void db.put(k, value);
  await new Promise<void>((resolve, reject) => env.flushed.then(() => resolve(), reject));
  lat.push(performance.now() - s);
}
const secs = (performance.now() - t0) / 1000;
await env.close();
rmSync(dir, { recursive: true, force: true });
const sorted = sortedCopy(lat);
process.stdout.write(`${JSON.stringify({ n: lat.length, perSec: lat.length / secs, p50ms: percentile(sorted, 50), p99ms: percentile(sorted, 99) })}\n`);
