/**
 * Carries one reshard through its phases (docs/resharding.md), as the move executor carries a
 * move: every phase checks the shards' state before acting and is safe to repeat, and every
 * write of the record is stamped with the coordinator's lease epoch, so a coordinator that takes
 * over goes on from the phase the record names.
 *
 * - `prepare`: the new map's new groups are created (already begun), and every group of the old
 *   map commits `begin`;
 * - `copy`: every target's imports have a cursor for each of its sources (the first import, the
 *   source's points at one index, is in);
 * - `catch-up`: every cursor is within {@link RESHARD_CATCH_UP_ENTRIES} of its source's applied index;
 * - `fence`: every source commits `fence`; the indexes of those entries are kept in the record;
 * - `switch`: every group of both maps commits `switch`, all at once (a target refuses it until its cursors
 *   reach the fences), and only then does the collection's record take the new map;
 * - `cleanup`: every group of the new map commits `end`, and the groups the new map dropped are deleted.
 *
 * While it waits in `copy` and `catch-up`, the driver hands each round of statuses to `progress`
 * (reshard-progress.ts: the bytes of each pair) and writes the record with them at most every
 * {@link RESHARD_PROGRESS_EVERY_MS}; every phase's write carries the latest too.
 */
import type { ReshardPairRecord, ReshardRecord } from '../../cluster/metadata.js';
import { movePairs } from '../../cluster/shard-map.js';
import type { ReshardCommand, ReshardState } from '../../shard/reshard-state.js';
import type { Logger } from '../../runtime/logger.js';
import { describeError } from '../../runtime/errors.js';
import type { ImportTally } from '../shard-protocol.js';
import { pairTotals } from './reshard-moves.js';

export const RESHARD_PHASES = ['prepare', 'copy', 'catch-up', 'fence', 'switch', 'cleanup', 'done'] as const;
export type ReshardPhase = ReshardRecord['phase'];

/** Imports are caught up once within this many entries of their sources. */
export const RESHARD_CATCH_UP_ENTRIES = 100;
/** How often a phase that waits looks again. */
export const RESHARD_POLL_MS = 250;
/** The pairs' bytes are written into the record at most this often (as a move's, move-executor.ts). */
export const RESHARD_PROGRESS_EVERY_MS = 1_000;

/** The `resharding` of a collection's record (src/cluster/metadata.ts). */
export type { ReshardRecord };

/** What the driver reads of one group. */
export interface ReshardShardStatus {
  /** Null for a shard that has not begun any reshard yet. */
  state: ReshardState | null;
  appliedIndex: number;
  /** The node that answered (its leader); its point count; what its importers proposed (ReshardStatus). */
  node?: string | undefined;
  count?: number | undefined;
  imported?: ImportTally | undefined;
}

export interface ReshardPorts {
  sleep(ms: number): Promise<void>;
  /** The lease epoch held now; 0 once this coordinator is deposed (the reshard stops). */
  epoch(): number;
  /** The group's status from its leader, or undefined without one now. */
  status(group: string): Promise<ReshardShardStatus | undefined>;
  /** A reshard command through the group's leader; resolves with the status after it applied. Idempotent there. */
  command(group: string, cmd: ReshardCommand, epoch: number): Promise<ReshardShardStatus>;
  /** Places and starts the new groups of `rec.to`, each already begun (idempotent). */
  createGroups(rec: ReshardRecord, groups: string[]): Promise<void>;
  /** Writes the record (compare-and-set, stamped with `epoch`); throws once deposed or on a conflict. */
  save(rec: ReshardRecord): Promise<void>;
  /** The collection's record takes `rec.to` as its map (compare-and-set): routers learn of it from here. */
  activate(rec: ReshardRecord): Promise<void>;
  /** Deletes the groups the new map dropped (idempotent). */
  dropGroups(rec: ReshardRecord, groups: string[]): Promise<void>;
  /** The pairs' figures after a round of statuses of every group (reshard-progress.ts); without it, the record has none. */
  progress?(rec: ReshardRecord, st: ReadonlyMap<string, ReshardShardStatus>): ReshardPairRecord[];
  /** Milliseconds, for spacing the progress writes (needed with `progress`). */
  now?(): number;
  /** Test hook (SHOAL_FAULTS=slow-reshard): a wait before the fence and before the switch, so that a test can crash things in the middle. */
  beforeStep?(what: 'fence' | 'switch'): Promise<void>;
  log: Logger;
}

export class ReshardStopped extends Error {}

/** The groups of `to` that `from` does not have. */
function newGroups(rec: ReshardRecord): string[] {
  const old = new Set(rec.from.groups);
  return rec.to.groups.filter((g) => !old.has(g));
}

export async function runReshard(rec: ReshardRecord, p: ReshardPorts): Promise<ReshardRecord> {
  const name = `reshard of ${rec.collection} to epoch ${rec.to.epoch}`;
  const live = (): number => {
    const e = p.epoch();
    if (e === 0) throw new ReshardStopped(`${name}: this coordinator is no longer active`);
    return e;
  };
  const advance = async (phase: ReshardPhase): Promise<void> => {
    rec.phase = phase;
    rec.epoch = live();
    await p.save(rec);
  };
  const pairs = movePairs(rec.sharding, rec.from, rec.to);
  const allGroups = [...new Set([...rec.from.groups, ...rec.to.groups])];
  /** Sends `cmd` to `group` until it is applied, through leader changes. */
  const command = async (group: string, cmd: ReshardCommand): Promise<ReshardShardStatus> => {
    for (;;) {
      const epoch = live();
      try {
        return await p.command(group, cmd, epoch);
      } catch (err) {
        p.log.debug('reshard command failed; again', { group, cmd: cmd.type, error: describeError(err) });
        await p.sleep(RESHARD_POLL_MS);
      }
    }
  };
  const statuses = async (groups: string[]): Promise<Map<string, ReshardShardStatus> | undefined> => {
    const out = new Map<string, ReshardShardStatus>();
    for (const g of groups) {
      const st = await p.status(g).catch(() => undefined);
      if (!st) return undefined;
      out.set(g, st);
    }
    return out;
  };
  let lastProgressSave = -Infinity;
  /** Takes the pairs' figures from a round of statuses; writes them at most every RESHARD_PROGRESS_EVERY_MS. */
  const noteProgress = async (st: Map<string, ReshardShardStatus>): Promise<void> => {
    if (!p.progress) return;
    const pairs = p.progress(rec, st);
    const t = pairTotals(pairs);
    rec.pairs = pairs;
    rec.bytesCopied = t.bytesCopied;
    if (t.bytesTotal === undefined) delete rec.bytesTotal;
    else rec.bytesTotal = t.bytesTotal;
    const now = p.now?.() ?? 0;
    if (now - lastProgressSave < RESHARD_PROGRESS_EVERY_MS) return;
    lastProgressSave = now;
    rec.epoch = live();
    await p.save(rec);
  };
  /** Waits until `done` holds of the statuses of every group of both maps. */
  const waitUntil = async (done: (st: Map<string, ReshardShardStatus>) => boolean): Promise<void> => {
    for (;;) {
      live();
      const st = await statuses(allGroups);
      if (st) await noteProgress(st);
      if (st && done(st)) return;
      await p.sleep(RESHARD_POLL_MS);
    }
  };
  const cursor = (st: Map<string, ReshardShardStatus>, target: number, source: number): number =>
    (st.get(rec.to.groups[target] as string) as ReshardShardStatus).state?.cursors[source] ?? 0;
  const applied = (st: Map<string, ReshardShardStatus>, source: number): number => (st.get(rec.from.groups[source] as string) as ReshardShardStatus).appliedIndex;

  for (;;) {
    switch (rec.phase) {
      case 'prepare':
        await p.createGroups(rec, newGroups(rec));
        for (const g of rec.from.groups) await command(g, { type: 'reshard-begin', from: rec.from, next: rec.to });
        await advance('copy');
        break;
      case 'copy':
        await waitUntil((st) => pairs.every(({ source, target }) => cursor(st, target, source) > 0));
        await advance('catch-up');
        break;
      case 'catch-up':
        await waitUntil((st) => pairs.every(({ source, target }) => applied(st, source) - cursor(st, target, source) <= RESHARD_CATCH_UP_ENTRIES));
        await advance('fence');
        break;
      case 'fence': {
        await p.beforeStep?.('fence');
        const fences: Record<number, number> = {};
        for (let source = 0; source < rec.from.shards; source++) {
          const st = await command(rec.from.groups[source] as string, { type: 'reshard-fence', epoch: rec.to.epoch });
          const at = st.state?.fencedAt ?? null;
          if (at === null) throw new Error(`${name}: shard ${source} applied its fence but reports none`);
          fences[source] = at;
        }
        rec.fences = fences;
        await advance('switch');
        break;
      }
      case 'switch': {
        // Every group at once: from a group's switch until the record takes the new map, requests
        // on either map may be refused and retried, so the switches are not made one after another.
        // Any order is safe: no router uses the new map before the record has it.
        await p.beforeStep?.('switch');
        await Promise.all(
          allGroups.map(async (g) => {
            const target = rec.to.groups.indexOf(g);
            const need: Record<number, number> = {};
            for (const pr of pairs) if (pr.target === target) need[pr.source] = rec.fences[pr.source] as number;
            // A target refuses to switch until its imports reach the fences: ask again until it has.
            for (;;) {
              const st = await command(g, { type: 'reshard-switch', epoch: rec.to.epoch, need });
              if (st.state?.switched || st.state?.active.epoch === rec.to.epoch) break;
              await p.sleep(RESHARD_POLL_MS);
            }
          }),
        );
        live();
        await p.activate(rec);
        await advance('cleanup');
        break;
      }
      case 'cleanup': {
        for (const g of rec.to.groups) await command(g, { type: 'reshard-end', epoch: rec.to.epoch });
        const kept = new Set(rec.to.groups);
        await p.dropGroups(rec, rec.from.groups.filter((g) => !kept.has(g)));
        await advance('done');
        break;
      }
      case 'done':
        return rec;
    }
  }
}
