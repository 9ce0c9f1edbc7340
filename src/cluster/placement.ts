/**
 * Where replicas live: each shard's replicas on distinct nodes, spread evenly. Pure: the same
 * inputs give the same placement on every node.
 */

export interface ShardPlacement {
  shard: number;
  /**
   * The shard's voters as the coordinator last made them: the goal that nodes host replicas for.
   * The Raft configuration of the shard is the truth; this follows it move by move.
   */
  replicas: string[];
  /**
   * The voters the group was created with: a node named here that has no state for the shard
   * bootstraps it with this configuration (all of them write the same entry at index 1). The
   * coordinator sets it to null before the shard's first move; from then on a node with no state
   * only ever joins, empty, as a learner. Absent in records written before moves existed: the same
   * as `replicas`.
   */
  bootstrap?: string[] | null;
}

/** The voters a node with no state for the shard may bootstrap it with, or null (it joins). */
export function bootstrapVoters(p: ShardPlacement | undefined): string[] | null {
  if (!p) return null;
  return p.bootstrap === undefined ? p.replicas : p.bootstrap;
}

/**
 * Places `replicas` copies of each of `shards` shards on `nodes` (all up). Each shard's
 * replicas are on distinct nodes; nodes get as even a count of replicas (and of preferred
 * leaders) as possible, counting what `existing` already gives each node.
 */
export function placeReplicas(
  shards: number,
  replicas: number,
  nodes: string[],
  existing: ReadonlyMap<string, { replicas: number; leaders: number }> = new Map(),
  /** A node's zone (null: a zone of its own): a shard's replicas go to distinct zones first, then distinct nodes. */
  zoneOf: (node: string) => string | null = () => null,
): ShardPlacement[] {
  if (replicas > nodes.length) {
    throw new RangeError(`cannot place ${replicas} replicas on ${nodes.length} nodes`);
  }
  const load = new Map(nodes.map((n) => [n, { ...(existing.get(n) ?? { replicas: 0, leaders: 0 }) }]));
  const out: ShardPlacement[] = [];
  for (let shard = 0; shard < shards; shard++) {
    const chosen: string[] = [];
    const zones = new Map<string, number>();
    const zone = (n: string): string => zoneOf(n) ?? `node:${n}`;
    for (let k = 0; k < replicas; k++) {
      const pick = nodes
        .filter((n) => !chosen.includes(n))
        .sort((a, b) => (zones.get(zone(a)) ?? 0) - (zones.get(zone(b)) ?? 0) || load.get(a)!.replicas - load.get(b)!.replicas || (a < b ? -1 : a > b ? 1 : 0))[0] as string;
      chosen.push(pick);
      zones.set(zone(pick), (zones.get(zone(pick)) ?? 0) + 1);
    }
    // among the chosen, the one leading least leads this shard
    chosen.sort((a, b) => load.get(a)!.leaders - load.get(b)!.leaders || (a < b ? -1 : a > b ? 1 : 0));
    for (const n of chosen) load.get(n)!.replicas++;
    load.get(chosen[0] as string)!.leaders++;
    out.push({ shard, replicas: chosen, bootstrap: [...chosen] });
  }
  return out;
}
