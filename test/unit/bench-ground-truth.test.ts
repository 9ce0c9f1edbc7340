import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { seededRandom } from '../../src/raft/config.js';
import { groundTruth, recallAt } from '../../bench/lib/ground-truth.js';

const DIM = 8;
const N = 400;
const Q = 24;
const K = 10;

function randomRows(rows: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: rows * DIM }, () => rand());
}

/** Squared-L2 brute force in plain JavaScript over the rows `match` accepts, -1 padded. */
function bruteForce(train: Float32Array, test: Float32Array, match: (q: number, i: number) => boolean): Int32Array {
  const out = new Int32Array(Q * K).fill(-1);
  for (let q = 0; q < Q; q++) {
    const scored: [number, number][] = [];
    for (let i = 0; i < N; i++) {
      if (!match(q, i)) continue;
      let d = 0;
      for (let j = 0; j < DIM; j++) d += ((train[i * DIM + j] as number) - (test[q * DIM + j] as number)) ** 2;
      scored.push([d, i]);
    }
    scored.sort((a, b) => a[0] - b[0]);
    scored.slice(0, K).forEach(([, i], j) => (out[q * K + j] = i));
  }
  return out;
}

/** Each query's answer as a sorted list (hnswlib's order among ties is its own). */
const perQuery = (gt: Int32Array): number[][] => Array.from({ length: Q }, (_, q) => Array.from(gt.subarray(q * K, (q + 1) * K)).sort((a, b) => a - b));

describe('bench ground truth', () => {
  it('bench ground truth - a per-query predicate gives the exact neighbours among the matching rows, and the cache keys on it', async () => {
    const rand = seededRandom(7);
    const train = randomRows(N, rand);
    const test = randomRows(Q, rand);
    const tag = Uint8Array.from({ length: N }, () => Math.floor(rand() * 4));
    // Query q wants tag q % 4 and, for odd q, rows below 40 only: ~2-3 matches, fewer than k (padded).
    const match = (q: number, i: number): boolean => tag[i] === q % 4 && (q % 2 === 0 || i < 40);
    const other = (q: number, i: number): boolean => tag[i] === (q + 1) % 4;
    const dir = mkdtempSync(join(tmpdir(), 'shoal-gt-'));
    const cacheDir = pathToFileURL(`${dir}/`);
    try {
      const job = { name: 'unit', dim: DIM, k: K, train, test, queries: Q, cacheDir };
      const got = await groundTruth({ ...job, match });
      const want = bruteForce(train, test, match);
      assert.deepEqual(perQuery(got), perQuery(want));
      assert.ok(perQuery(want).some((ids) => ids.includes(-1)), 'some query has fewer than k matches');
      assert.equal(recallAt(K, got, perQuery(want).map((ids) => ids.filter((i) => i >= 0))), 1);

      // From the cache: the same answer; another predicate is another file, not a stale hit.
      assert.deepEqual(perQuery(await groundTruth({ ...job, match })), perQuery(want));
      assert.equal(readdirSync(dir).length, 1);
      const got2 = await groundTruth({ ...job, match: other });
      assert.deepEqual(perQuery(got2), perQuery(bruteForce(train, test, other)));
      assert.equal(readdirSync(dir).length, 2);
      // Unfiltered: every row.
      assert.deepEqual(perQuery(await groundTruth(job)), perQuery(bruteForce(train, test, () => true)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
