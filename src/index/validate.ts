/** Checks shared by both indexes: bad input is refused before it can touch the index. */
import { InvalidArgumentError } from '../runtime/errors.js';
import type { IndexPoint, Metric, SearchQuery } from './types.js';
import { METRICS } from './types.js';

export const MAX_DIM = 4096;
export const MAX_K = 10_000;

export function checkIndexOptions(dim: number, metric: Metric): void {
  if (!Number.isInteger(dim) || dim < 1 || dim > MAX_DIM) throw new InvalidArgumentError(`dim must be an integer from 1 to ${MAX_DIM}, got ${dim}`);
  if (!METRICS.includes(metric)) throw new InvalidArgumentError(`metric must be one of ${METRICS.join(', ')}, got ${String(metric)}`);
}

/** Throws unless `v` has `dim` finite numbers (and, for cosine, is not all zero). */
export function checkVector(v: ArrayLike<number>, dim: number, metric: Metric, path: string): void {
  if (v.length !== dim) throw new InvalidArgumentError(`${path} has ${v.length} dimensions; the index has ${dim}`);
  let nonZero = false;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as number;
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new InvalidArgumentError(`${path}[${i}] must be a finite number, got ${String(x)}`);
    if (x !== 0) nonZero = true;
  }
  if (metric === 'cosine' && !nonZero) throw new InvalidArgumentError(`${path} is all zeros, which has no direction under the cosine metric`);
}

export function checkPoints(points: readonly IndexPoint[], dim: number, metric: Metric): void {
  points.forEach((p, i) => {
    if (typeof p.id !== 'string' || p.id.length === 0) throw new InvalidArgumentError(`points[${i}].id must be a non-empty string`);
    checkVector(p.vector, dim, metric, `points[${i}].vector`);
  });
}

export function checkQuery(q: SearchQuery, dim: number, metric: Metric): void {
  if (!Number.isInteger(q.k) || q.k < 1 || q.k > MAX_K) throw new InvalidArgumentError(`k must be an integer from 1 to ${MAX_K}, got ${q.k}`);
  if (q.ef !== undefined && (!Number.isInteger(q.ef) || q.ef < 1 || q.ef > MAX_K)) {
    throw new InvalidArgumentError(`ef must be an integer from 1 to ${MAX_K}, got ${q.ef}`);
  }
  checkVector(q.vector, dim, metric, 'vector');
}
