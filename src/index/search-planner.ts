/**
 * How an HNSW index answers a filtered search, from how many visible points match (m of n).
 * Three plans (costs measured by bench/filter-plans.ts, quoted at DEFAULT_FILTERED_GRAPH_COST in
 * hnsw-index.ts, in units of an unfiltered search at ef 64 on Fashion-MNIST 60k × 784):
 *
 * - `exact`: the m matches scored one by one in the addon: ~0.002-0.006 units a match. Wins
 *   while m is small: m ≤ k, m·dim within the exact budget, or m² ≤ graphCost·ef·n.
 * - `hnsw-postfilter`: an unfiltered graph search for k' = ⌈max(2k, k + 8) / s⌉ candidates
 *   (s = m/n, so ~2k matches are expected among them; ef raised to k'), keeping the matches:
 *   0.62 units at 50%, 1.59 at 10%, against 1.98 and 5.77 for the bitset search at ef 64. Each
 *   candidate is checked against the filter, so no list of matches is built at all. When fewer
 *   than k candidates match (bad luck, or matches far from the query), the search falls back to
 *   the bitset plan. Used while k' stays within {@link POSTFILTER_MAX_CANDIDATES}.
 * - `hnsw-filtered`: the graph walked with the matches as a bitset (~0.4-0.6 units per n/m).
 *
 * Recall: the k nearest matches are among the k' nearest points whenever the k-th nearest match
 * is, and an unfiltered search for k' at ef ≥ k' finds those at the graph's recall, so the
 * post-filter plan keeps the recall an unfiltered search of k' has.
 */
import type { SearchPlan } from './types.js';

/** Beyond this many candidates, the post-filter plan costs more than walking the graph with a bitset. */
export const POSTFILTER_MAX_CANDIDATES = 2_048;

export interface PlanInputs {
  /** Visible points that match the filter (exact, or an upper bound). */
  matches: number;
  /** Visible points. */
  visible: number;
  dim: number;
  k: number;
  /** The search's ef (at least k). */
  ef: number;
  exactBudget: number;
  filteredGraphCost: number;
  /** The most candidates the post-filter plan may ask for (default {@link POSTFILTER_MAX_CANDIDATES}). */
  postfilterMaxCandidates?: number | undefined;
}

export interface FilteredPlan {
  plan: Exclude<SearchPlan, 'hnsw'>;
  /** For `hnsw-postfilter`: how many candidates the unfiltered search asks for. */
  candidates: number;
}

export function planFiltered(p: PlanInputs): FilteredPlan {
  const m = p.matches;
  if (m <= p.k || m * p.dim <= p.exactBudget || m * m <= p.filteredGraphCost * p.ef * p.visible) return { plan: 'exact', candidates: 0 };
  const candidates = postfilterCandidates(p.k, m, p.visible);
  if (candidates <= (p.postfilterMaxCandidates ?? POSTFILTER_MAX_CANDIDATES)) return { plan: 'hnsw-postfilter', candidates };
  return { plan: 'hnsw-filtered', candidates: 0 };
}

/** k' = ⌈max(2k, k + 8) · n / m⌉, at most n. */
export function postfilterCandidates(k: number, matches: number, visible: number): number {
  return Math.min(visible, Math.ceil((Math.max(2 * k, k + 8) * visible) / Math.max(1, matches)));
}
