/**
 * Exact k-nearest neighbours with hnswlib's BruteforceSearch (an independent exact index, not
 * Shoal's code), for a slice of the queries; with a filter, only base points of the query's
 * (label, bucket) are considered. Posts back an Int32Array of k labels per query (-1 padded).
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
  /** Per base point, and the per-query wanted value; undefined = no filter. */
  filter?: { label: Uint8Array; bucket: Uint8Array; wantLabel: Int16Array; wantBucket: Int16Array };
}

const job = workerData as Job;
const n = job.train.length / job.dim;
const bf = new hnswlib.BruteforceSearch('l2', job.dim);
bf.initIndex(n);
for (let i = 0; i < n; i++) bf.addPoint(Array.from(job.train.subarray(i * job.dim, (i + 1) * job.dim)), i);
const out = new Int32Array((job.to - job.from) * job.k).fill(-1);
for (let q = job.from; q < job.to; q++) {
  const f = job.filter;
  let allowed: ((label: number) => boolean) | undefined;
  if (f) {
    const l = f.wantLabel[q] as number;
    const b = f.wantBucket[q] as number;
    allowed = (i) => f.label[i] === l && (b < 0 || f.bucket[i] === b);
  }
  const res = bf.searchKnn(Array.from(job.test.subarray(q * job.dim, (q + 1) * job.dim)), job.k, allowed);
  res.neighbors.forEach((label, j) => (out[(q - job.from) * job.k + j] = label));
}
parentPort?.postMessage(out, [out.buffer]);
