/**
 * Merging the answers of a search fanned out to shards: hits sorted by ascending distance, ties
 * by id in UTF-8 byte order (PROTOCOL.md), no id twice (the best copy wins: during a move a
 * point can be on two shards), at most k.
 */
import type { Hit } from '../../api/types.js';
import { compareUtf8 } from '../../index/utf8.js';

export function compareHits(a: Hit, b: Hit): number {
  return a.distance - b.distance || compareUtf8(a.id, b.id);
}

export function mergeHits(lists: readonly Hit[][], k: number): Hit[] {
  const all = lists.flat();
  all.sort(compareHits);
  const seen = new Set<string>();
  const out: Hit[] = [];
  for (const h of all) {
    if (seen.has(h.id)) continue;
    seen.add(h.id);
    out.push(h);
    if (out.length === k) break;
  }
  return out;
}
