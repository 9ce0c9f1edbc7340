/**
 * Exact k-nearest neighbours (squared L2) for a slice of the queries. Unfiltered: hnswlib's
 * BruteforceSearch (an independent exact index, not Shoal's code). With match masks (only base
 * rows whose bit is set in the query's mask count): a plain scan of the matching rows here, NOT
 * BruteforceSearch's filter: hnswlib 0.8's (in hnswlib-node 3.0) stops admitting rows farther than
 * the first match it meets while its top-k is still short, so it drops true neighbours whenever
 * fewer than k matches are closer than that one (test/unit/bench-ground-truth.test.ts caught it).
 * Posts back an Int32Array of k labels per query (-1 padded).
 */
import hnswlib from 'hnswlib-node';
import { parentPort, workerData } from 'node:worker_threads';

interface Job {
  dim: number;
  k: number;
  train: Float32Array;
  test: Float32Array;
  from: number;
  to: number;
  /** One bit per base row, `stride` bytes per query (query q at q × stride); undefined = no filter. */
  masks?: Uint8Array | undefined;
  stride?: number | undefined;
}

const job = workerData as Job;
const { dim, k, train, test } = job;
const n = train.length / dim;
const out = new Int32Array((job.to - job.from) * k).fill(-1);

function scanMatches(q: number, masks: Uint8Array, stride: number): void {
  const base = q * stride;
  const qOff = q * dim;
  // The k best so far, kept sorted by ascending distance (k is small).
  const dists: number[] = [];
  const ids: number[] = [];
  for (let byte = 0; byte < stride; byte++) {
    const bits = masks[base + byte] as number;
    if (bits === 0) continue;
    for (let b = 0; b < 8; b++) {
      if ((bits & (1 << b)) === 0) continue;
      const i = byte * 8 + b;
      if (i >= n) break;
      const worst = dists.length === k ? (dists[k - 1] as number) : Infinity;
      let d = 0;
      const off = i * dim;
      for (let j = 0; j < dim && d <= worst; j++) {
        const x = (train[off + j] as number) - (test[qOff + j] as number);
        d += x * x;
      }
      if (d >= worst) continue;
      let at = dists.length;
      while (at > 0 && (dists[at - 1] as number) > d) at--;
      dists.splice(at, 0, d);
      ids.splice(at, 0, i);
      if (dists.length > k) {
        dists.pop();
        ids.pop();
      }
    }
  }
  ids.forEach((id, j) => (out[(q - job.from) * k + j] = id));
}

if (job.masks) {
  for (let q = job.from; q < job.to; q++) scanMatches(q, job.masks, job.stride as number);
} else {
  const bf = new hnswlib.BruteforceSearch('l2', dim);
  bf.initIndex(Math.max(1, n));
  for (let i = 0; i < n; i++) bf.addPoint(Array.from(train.subarray(i * dim, (i + 1) * dim)), i);
  for (let q = job.from; q < job.to; q++) {
    const res = bf.searchKnn(Array.from(test.subarray(q * dim, (q + 1) * dim)), k);
    res.neighbors.forEach((label, j) => (out[(q - job.from) * k + j] = label));
  }
}
parentPort?.postMessage(out, [out.buffer]);
