/**
 * The coordinator's reshards (docs/resharding.md): `collections.reshard` begins one — the new map
 * and the placement of the shards it adds written into the collection's record — and every tick
 * the active coordinator carries each record's reshard through its phases with the driver
 * (reshard-driver.ts), going on from the phase the record names after a takeover.
 */
import type { CollectionRecord, ReshardRecord } from '../../cluster/metadata.js';
import { placeReplicas } from '../../cluster/placement.js';
import { activeMap, reshardedMap } from '../../cluster/shard-map.js';
import { NotFoundError, UnavailableError, describeError } from '../../runtime/errors.js';
import { leaderSubject, type ReshardStatus } from '../shard-protocol.js';
import type { CoordinatorDeps } from './coordinator.js';
import { ReshardStopped, runReshard, type ReshardPorts, type ReshardShardStatus } from './reshard-driver.js';
import { reshardProgress } from './reshard-moves.js';
import { ReshardProgress } from './reshard-progress.js';

const STATUS_MS = 1_000;
const COMMAND_MS = 10_000;

/** The coordinator's own parts (coordinator.ts), and what a reshard needs of the coordinator itself. */
export interface ReshardsDeps extends Pick<CoordinatorDeps, 'meta' | 'membership' | 'requester' | 'subjects' | 'clock' | 'log' | 'faults'> {
  /** The coordinator's lease epoch (0: not active). */
  epoch(): number;
  sleep(ms: number): Promise<void>;
  /** Changes a collection's record by compare-and-set while the coordinator is active. */
  editCollection(uid: string, edit: (r: CollectionRecord) => boolean): Promise<void>;
}

/** What describe says of a running reshard (PROTOCOL.md, collections.reshard), or null. */
export function reshardingSummary(r: CollectionRecord): { from: number; to: number; phase: ReshardRecord['phase']; progress: number } | null {
  const rs = r.resharding;
  if (!rs) return null;
  return { from: rs.from.shards, to: rs.to.shards, phase: rs.phase, progress: reshardProgress(rs) };
}

export class Reshards {
  private readonly running = new Set<string>();

  constructor(private readonly d: ReshardsDeps) {}

  /** collections.reshard: checks the request, places the shards it adds, and writes the reshard into the record (phase `prepare`). */
  async start(name: string, shards: number, boundaries: string[] | undefined): Promise<{ name: string }> {
    const cur = await this.d.meta.getCollection(name);
    if (!cur) throw new NotFoundError(`collection '${name}' does not exist`);
    const r = cur.value;
    if (r.resharding) throw new UnavailableError(`a reshard of '${name}' from ${r.resharding.from.shards} to ${r.resharding.to.shards} shards runs (phase ${r.resharding.phase}); wait for it to finish`);
    const from = activeMap(r);
    const to = reshardedMap(r.uid, r.sharding, from, shards, boundaries);
    const now = this.d.clock.now();
    const up = this.d.membership.nodes(now).filter((n) => n.state === 'up').map((n) => n.id);
    const added = Math.max(0, to.shards - from.shards);
    if (added > 0 && up.length < r.replicas) throw new UnavailableError(`${up.length} nodes are up; the new shards need ${r.replicas} replicas each`);
    const load = new Map(this.d.membership.nodes(now).map((n) => [n.id, { replicas: n.replicas, leaders: n.leaders }]));
    const placed = added > 0 ? placeReplicas(added, r.replicas, up, load, (n) => this.d.membership.zone(n)).map((p, i) => ({ ...p, shard: from.shards + i })) : [];
    const epoch = this.d.epoch();
    if (epoch === 0) throw new UnavailableError('this node is not the active coordinator');
    const rec: ReshardRecord = { collection: r.name, uid: r.uid, sharding: r.sharding, from, to, phase: 'prepare', epoch, startedAt: new Date(now).toISOString(), fences: {} };
    let raced = false;
    await this.d.editCollection(r.uid, (x) => {
      if (x.resharding) {
        raced = true;
        return false;
      }
      x.resharding = rec;
      x.placement = [...x.placement.filter((p) => p.shard < from.shards), ...placed];
      return true;
    });
    if (raced) throw new UnavailableError(`another reshard of '${name}' began at the same time`);
    this.d.log.info('reshard begun', { collection: name, from: from.shards, to: to.shards });
    return { name };
  }

  /** Every tick while active: carries on each reshard the records name that is not running here. */
  tick(records: CollectionRecord[]): void {
    for (const r of records) {
      const rs = r.resharding;
      if (!rs || rs.phase === 'done' || this.running.has(r.uid)) continue;
      this.running.add(r.uid);
      const rec = structuredClone(rs);
      runReshard(rec, this.ports(rec))
        .then(() => this.d.log.info('reshard done', { collection: r.name, shards: rs.to.shards }))
        .catch((err: unknown) => {
          if (!(err instanceof ReshardStopped)) this.d.log.warn('reshard stopped; the next tick goes on with it', { collection: r.name, error: describeError(err) });
        })
        .finally(() => this.running.delete(r.uid));
    }
  }

  private ports(first: ReshardRecord): ReshardPorts {
    const d = this.d;
    const uid = first.uid;
    const shardOf = (rec: ReshardRecord, group: string): number => {
      const i = rec.to.groups.indexOf(group);
      return i >= 0 ? i : rec.from.groups.indexOf(group);
    };
    // the driver names groups; shards answer on their (uid, shard number) subjects
    let current = first;
    const subject = (group: string): string => leaderSubject(d.subjects, uid, shardOf(current, group));
    const asStatus = (s: ReshardStatus): ReshardShardStatus => ({ state: s.state, appliedIndex: s.appliedIndex, node: s.node, count: s.count, imported: s.imported });
    const progress = new ReshardProgress();
    return {
      sleep: (ms) => d.sleep(ms),
      epoch: () => d.epoch(),
      status: async (group) => {
        try {
          return asStatus(await d.requester.request<ReshardStatus>(subject(group), { type: 'reshardStatus' }, { timeoutMs: STATUS_MS }));
        } catch {
          return undefined;
        }
      },
      command: async (group, step, epoch) => asStatus(await d.requester.request<ReshardStatus>(subject(group), { type: 'reshard', step, epoch, timeoutMs: COMMAND_MS }, { timeoutMs: COMMAND_MS })),
      createGroups: (rec) => {
        // placed by `start`; the nodes start them from the placement
        current = rec;
        return Promise.resolve();
      },
      save: async (rec) => {
        current = rec;
        await d.editCollection(uid, (r) => {
          r.resharding = rec.phase === 'done' ? null : structuredClone(rec);
          return true;
        });
      },
      activate: async (rec) => {
        await d.editCollection(uid, (r) => {
          r.map = rec.to;
          r.shards = rec.to.shards;
          if (rec.sharding.strategy === 'range') r.sharding = { strategy: 'range', boundaries: [...(rec.to.boundaries ?? [])] };
          return true;
        });
        d.log.info('reshard switched: routers use the new map', { collection: rec.collection, epoch: rec.to.epoch });
      },
      dropGroups: async (rec) => {
        await d.editCollection(uid, (r) => {
          const before = r.placement.length;
          r.placement = r.placement.filter((p) => p.shard < rec.to.shards);
          return r.placement.length !== before;
        });
      },
      progress: (rec, st) => progress.observe(rec, st),
      now: () => d.clock.now(),
      ...(d.faults?.has('slow-reshard') ? { beforeStep: (what: 'fence' | 'switch') => d.sleep(3_000) } : {}),
      log: d.log,
    };
  }
}
