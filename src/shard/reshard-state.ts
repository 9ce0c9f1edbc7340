/**
 * What one shard knows of its collection's shard maps, and what it decides from them
 * (docs/resharding.md): which epoch it serves, whether a write or read at a router's epoch is
 * admitted, which keys of a write go to its journal, which points are hidden, and how the
 * reshard commands of its Raft log change it. Pure and deterministic: every replica applies the
 * same commands in the same order and decides alike. The state is plain data, kept with the
 * shard's meta.
 */

/** A collection's shard map (src/cluster/shard-map.ts has the map's rules; a shard only reads it). */
export interface ShardMap {
  epoch: number;
  shards: number;
  boundaries?: string[];
  groups: string[];
}

/** Which shard number owns a key under a map: the collection's sharding strategy, given by whoever opens the shard. */
export type OwnerOf = (map: ShardMap) => (key: string) => number;

export interface ReshardState {
  /** The map the shard serves, or served last (a shard the new map dropped: `retired`). */
  active: ShardMap;
  /** The map a running reshard goes to (from its `begin` to its `end`), else null. */
  next: ShardMap | null;
  /** Whether this shard, as a source, has committed `fence` for `next`: writes of its moving keys are refused. */
  fenced: boolean;
  /** The log index of that `fence`: the end of this shard's journal, which its targets' imports must reach before they switch. */
  fencedAt: number | null;
  /** Whether the shard has committed `switch` for `next`: it serves `next`, and refuses `active`'s epoch. */
  switched: boolean;
  /** Per source shard number: the source's log index this shard's imports have reached (0 while its copy runs). */
  cursors: Record<number, number>;
  /** Per source shard number, while its copy runs: the lowest source index of the copy's pages applied (reshard-import.ts). */
  copyLows: Record<number, number>;
}

/** A command of the shard's log that changes its maps. */
export type ReshardCommand =
  /** `from`: the map the shard serves until the switch (a shard that never resharded has no state yet; it starts from this). */
  | { type: 'reshard-begin'; from: ShardMap; next: ShardMap }
  | { type: 'reshard-fence'; epoch: number }
  /** `need`: per source, the index its fence was committed at; a target refuses to switch before its cursor reaches it. */
  | { type: 'reshard-switch'; epoch: number; need: Record<number, number> }
  | { type: 'reshard-end'; epoch: number };

/** Why a request is not admitted. */
export type Refusal =
  /** The request's epoch is not the one this shard serves; `epoch` is the one it serves (a router with an older map refreshes it; with a newer one, waits for the shard). */
  | { code: 'STALE_MAP'; epoch: number }
  /** A write of a key that is moving to another shard, after the fence: retried until the switch. */
  | { code: 'MOVING'; keys: string[] }
  /** A key this shard does not own at the request's epoch: a router's mistake, never applied. */
  | { code: 'WRONG_SHARD'; keys: string[] };

export type WriteAdmission = { ok: true; journal: string[] } | ({ ok: false } & Refusal);

export function initialReshardState(map: ShardMap): ReshardState {
  return { active: map, next: null, fenced: false, fencedAt: null, switched: false, cursors: {}, copyLows: {} };
}

/** The state of a group a reshard from `from` to `to` creates: begun, owning nothing until it switches. */
export function newShardState(from: ShardMap, to: ShardMap): ReshardState {
  return { ...initialReshardState(from), next: to };
}

/** A shard's decisions for one state; build a new one after each reshard command (they are rare). */
export class ShardOwnership {
  private readonly activeOwner: (key: string) => number;
  private readonly nextOwner: ((key: string) => number) | undefined;

  constructor(
    ownerOf: OwnerOf,
    readonly shard: number,
    readonly state: ReshardState,
  ) {
    this.activeOwner = ownerOf(state.active);
    this.nextOwner = state.next ? ownerOf(state.next) : undefined;
  }

  /** The epoch this shard serves, or null for a shard the switched-to map has no place for. */
  get serving(): number | null {
    const map = this.state.switched ? (this.state.next as ShardMap) : this.state.active;
    return this.shard < map.shards ? map.epoch : null;
  }

  /** The epoch a refusal tells routers about: the newest this shard knows to be in force. */
  private get known(): number {
    return this.state.switched ? (this.state.next as ShardMap).epoch : this.state.active.epoch;
  }

  private ownerAtEpoch(epoch: number): ((key: string) => number) | undefined {
    if (epoch === this.state.active.epoch) return this.activeOwner;
    if (epoch === this.state.next?.epoch) return this.nextOwner;
    return undefined;
  }

  /** The shard number that owns `key` at `epoch`, or undefined for an epoch this shard does not know. */
  ownerAt(key: string, epoch: number): number | undefined {
    return this.ownerAtEpoch(epoch)?.(key);
  }

  /** Whether this shard owns `key` at `epoch` (of the maps it knows). */
  owns(key: string, epoch: number): boolean {
    return this.ownerAtEpoch(epoch)?.(key) === this.shard;
  }

  /** A point this shard holds is visible (returned by search, get and count) when it owns it at the epoch it serves. */
  visible(key: string): boolean {
    const serving = this.serving;
    return serving !== null && this.owns(key, serving);
  }

  /** Whether `key` is one of this shard's moving keys: owned at the active epoch, not at the next. */
  moving(key: string): boolean {
    return this.state.next !== null && this.owns(key, this.state.active.epoch) && !this.owns(key, this.state.next.epoch);
  }

  /** A read at the router's `epoch`: admitted only at the epoch this shard serves. */
  admitRead(epoch: number): { ok: true } | { ok: false; code: 'STALE_MAP'; epoch: number } {
    return epoch === this.serving ? { ok: true } : { ok: false, code: 'STALE_MAP', epoch: this.known };
  }

  /**
   * A write of `keys` at the router's `epoch`, decided when its entry is applied (in log order):
   * refused at an epoch this shard does not serve, for a key it does not own, and after the fence
   * for a moving key. Admitted, `journal` lists its moving keys (written to the journal for their targets).
   */
  admitWrite(epoch: number, keys: readonly string[]): WriteAdmission {
    const read = this.admitRead(epoch);
    if (!read.ok) return read;
    const wrong = keys.filter((k) => !this.owns(k, epoch));
    if (wrong.length > 0) return { ok: false, code: 'WRONG_SHARD', keys: wrong };
    if (this.state.switched || this.state.next === null) return { ok: true, journal: [] };
    const moving = keys.filter((k) => this.moving(k));
    if (moving.length > 0 && this.state.fenced) return { ok: false, code: 'MOVING', keys: moving };
    return { ok: true, journal: moving };
  }

  /** The keys of an import this shard may take: those it owns at the next epoch. */
  importable(keys: readonly string[]): { ok: true } | { ok: false; keys: string[] } {
    if (this.state.next === null || this.state.switched) return { ok: false, keys: [...keys] };
    const wrong = keys.filter((k) => !this.owns(k, (this.state.next as ShardMap).epoch));
    return wrong.length === 0 ? { ok: true } : { ok: false, keys: wrong };
  }
}

/**
 * The state after a reshard command, or why it does nothing: commands are idempotent (repeating
 * one the shard has applied changes nothing) and refused out of order (a `switch` before the
 * `begin`, or before the imports reached the sources' fences), so a coordinator that takes over
 * may send any of them again. `index` is the command's log index.
 */
export function applyReshard(state: ReshardState, cmd: ReshardCommand, index: number): { state: ReshardState } | { unchanged: string } {
  switch (cmd.type) {
    case 'reshard-begin': {
      if (state.next?.epoch === cmd.next.epoch) return { unchanged: `epoch ${cmd.next.epoch} already begun` };
      if (cmd.next.epoch <= state.active.epoch) return { unchanged: `epoch ${cmd.next.epoch} is not after the active ${state.active.epoch}` };
      if (state.next !== null) return { unchanged: `the reshard to epoch ${state.next.epoch} runs` };
      if (cmd.next.epoch !== state.active.epoch + 1) return { unchanged: `epoch ${cmd.next.epoch} does not follow the active ${state.active.epoch}` };
      return { state: { ...state, next: cmd.next, fenced: false, fencedAt: null, switched: false, cursors: {}, copyLows: {} } };
    }
    case 'reshard-fence': {
      if (state.next?.epoch !== cmd.epoch) return { unchanged: `no reshard to epoch ${cmd.epoch} runs` };
      if (state.fenced) return { unchanged: 'already fenced' };
      return { state: { ...state, fenced: true, fencedAt: index } };
    }
    case 'reshard-switch': {
      if (state.next?.epoch !== cmd.epoch) return { unchanged: `no reshard to epoch ${cmd.epoch} runs` };
      if (state.switched) return { unchanged: 'already switched' };
      const behind = Object.entries(cmd.need).filter(([source, f]) => (state.cursors[Number(source)] ?? 0) < f);
      if (behind.length > 0) return { unchanged: `imports behind the fences: ${behind.map(([s, f]) => `shard ${s} at ${state.cursors[Number(s)] ?? 0} of ${f}`).join(', ')}` };
      return { state: { ...state, switched: true } };
    }
    case 'reshard-end': {
      if (state.next?.epoch !== cmd.epoch) return { unchanged: `no reshard to epoch ${cmd.epoch} runs` };
      if (!state.switched) return { unchanged: 'not switched yet' };
      return { state: { active: state.next, next: null, fenced: false, fencedAt: null, switched: false, cursors: {}, copyLows: {} } };
    }
  }
}
