/**
 * Compares hits of two indexes that score differently: the HNSW index's exact plan scores with
 * hnswlib's float32 (SIMD) distance in its addon, the flat index in float64 rounded to float32, so
 * the same hit's distance can differ in its last bits. Ids, order, metadata and vectors must be
 * equal; distances within {@link DISTANCE_TOLERANCE} (relative, at least 1 absolute unit).
 */
import assert from 'node:assert/strict';
import type { Hit } from '../../src/index/mod.js';

export const DISTANCE_TOLERANCE = 1e-5;

export function closeDistance(a: number, b: number): boolean {
  return Math.abs(a - b) <= DISTANCE_TOLERANCE * Math.max(1, Math.abs(b));
}

export function assertSameHits(actual: readonly Hit[], expected: readonly Hit[], message: string): void {
  const strip = (hits: readonly Hit[]): unknown[] => hits.map(({ distance: _d, ...rest }) => rest);
  assert.deepEqual(strip(actual), strip(expected), `${message}: the same hits in the same order`);
  actual.forEach((h, i) => {
    const want = (expected[i] as Hit).distance;
    assert.ok(closeDistance(h.distance, want), `${message}: hit ${i} (${h.id}) at distance ${h.distance}, expected ${want}`);
  });
}
