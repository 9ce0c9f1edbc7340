/**
 * Which ids of a write a shard applies, given what its request-id table holds for the request
 * (docs/resharding.md, "A retry is applied once"). Pure; the shard state machine and the
 * cutover model both decide with it.
 *
 * - No entry: every id.
 * - An entry written before entries listed ids: none (the request was applied here, whole).
 * - An entry of this shard's own application at the same map epoch: none — the same request
 *   again (a retry, or a request id reused for another request, which is refused this way).
 * - Otherwise — an entry of another epoch (a retry across a reshard), or one this shard only
 *   imported from a source (another shard applied that part): the ids the entry does not list.
 *   An imported entry never stands for this shard's own part: a request whose parts reach the
 *   source before and this shard after the import must still be applied here.
 */
export interface DedupFacts {
  keys?: readonly string[] | undefined;
  epoch?: number | undefined;
  /** Written by an import, not by this shard applying the request. */
  imported?: boolean | undefined;
}

export function idsToApply(prior: DedupFacts | undefined, epoch: number, ids: readonly string[]): { all: true } | { none: true } | { only: Set<string> } {
  if (!prior) return { all: true };
  if (prior.keys === undefined) return { none: true };
  if (!prior.imported && (prior.epoch ?? 0) === epoch) return { none: true };
  const seen = new Set(prior.keys);
  return { only: new Set(ids.filter((id) => !seen.has(id))) };
}
