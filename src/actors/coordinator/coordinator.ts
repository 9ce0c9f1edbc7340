/**
 * The rebalance coordinator (DESIGN.md, Moves): one active per cluster, chosen by the lease in
 * lease.ts, on standby on every node. While active, every tick it reads the cluster (nodes and
 * their states, the collections' placements, the moves in the bucket), asks the pure planner
 * (src/cluster/planner.ts) what to do — repair dead nodes' replicas, drain nodes being removed,
 * even the cluster out — and carries each move through its phases (move-executor.ts). It also
 * answers the operations of PROTOCOL.md that change placement: nodes.maintenance, nodes.remove
 * and rebalance.*. Everything it writes is a compare-and-set stamped with its lease epoch.
 *
 * A running reshard counts as one move per (source, target) pair (reshard-moves.ts): its pairs
 * show in `rebalance.status` with reason `reshard`, and take slots of `maxConcurrentMoves`, so
 * planned moves wait for them. The reshard itself starts at once (an operator asked for it, and
 * its pairs cut over together).
 */
import { randomBytes } from 'node:crypto';
import type { MembershipView } from '../../cluster/membership.js';
import { RevisionConflictError, type CollectionRecord, type MetadataStore, type MoveRecord, type RebalanceRecord } from '../../cluster/metadata.js';
import { planMoves, underReplicated, type PlanInput, type PlannedMove } from '../../cluster/planner.js';
import type { Clock } from '../../runtime/clock.js';
import { NotFoundError, TimeoutError, UnavailableError, describeError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import type { Subjects } from '../../runtime/subjects.js';
import type { Requester } from '../router/shard-client.js';
import { leaderSubject, replicaActorName, type MembershipChange, type ShardStatus } from '../shard-protocol.js';
import { LeaseKeeper } from './lease.js';
import { MoveStopped, runMove, type MovePorts } from './move-executor.js';
import { reshardMoves, reshardMovesInFlight } from './reshard-moves.js';
import { Leaderships } from './leaderships.js';
import { Reshards } from './reshards.js';
import { MoveProgress, type MoveProgressEntry } from './move-progress.js';

export const DEFAULT_REBALANCE: Omit<RebalanceRecord, 'epoch'> = {
  maxConcurrentMoves: 2,
  maxBytesPerSec: 50 * 1024 * 1024,
  auto: true,
  replaceAfterMs: null,
  paused: false,
  done: 0,
  failed: 0,
};

/** How long a shard status request may take. */
const STATUS_MS = 1_000;
/** Leaderships are evened out every this many ticks. */
const LEADER_EVERY_TICKS = 3;

export interface CoordinatorDeps {
  node: string;
  meta: MetadataStore;
  membership: MembershipView;
  requester: Requester;
  subjects: Subjects;
  clock: Clock;
  log: Logger;
  /** The node's own `--replace-after-ms`, used while the cluster's is not configured. */
  replaceAfterMs: number;
  /** Test faults (SHOAL_FAULTS): `slow-switch` waits 2 s before each step of a move's switch. */
  faults?: ReadonlySet<string>;
}

export interface RebalanceStatus {
  coordinator: string | null;
  state: 'idle' | 'running' | 'paused';
  auto: boolean;
  throttle: { maxConcurrentMoves: number; maxBytesPerSec: number; replaceAfterMs: number };
  moves: (Omit<MoveRecord, 'uid' | 'epoch' | 'failedTargets' | 'phase'> & { phase: MoveRecord['phase'] | 'planned' })[];
  done: number;
  failed: number;
  pending: number;
}

interface Running {
  move: MoveRecord;
  revision: number;
  done: Promise<void>;
}

export class Coordinator {
  readonly lease: LeaseKeeper;
  private readonly running = new Map<string, Running>();
  private config: RebalanceRecord = { ...DEFAULT_REBALANCE, epoch: 0 };
  private pending = 0;
  private ticks = 0;
  /** The collections as the last tick read them. */
  private lastRecords: CollectionRecord[] = [];
  /** Shards under-replicated at the last tick (while active). */
  private under = 0;
  /** Moves the running reshards count as (one per pair), at the last tick. */
  private reshardPairs = 0;
  /** When each move in flight (reshard pairs included) last progressed, for the metrics. */
  private readonly progress = new MoveProgress();

  readonly reshards: Reshards;
  private readonly leaderships: Leaderships;

  constructor(private readonly deps: CoordinatorDeps) {
    // A node being removed hands coordination to another one.
    this.lease = new LeaseKeeper(deps.meta, deps.node, () => deps.clock.now(), undefined, () => !['draining', 'removed'].includes(deps.membership.admin(deps.node)));
    this.leaderships = new Leaderships(deps);
    this.reshards = new Reshards({
      ...deps,
      epoch: () => this.lease.epoch(),
      sleep: (ms) => this.sleep(ms),
      editCollection: (uid, edit) => this.editCollection(uid, edit),
    });
  }

  get active(): boolean {
    return this.lease.epoch() > 0;
  }

  /** Renews (or takes) the lease. Runs every tick on its own, so that slow planning never lets the lease lapse. */
  async renew(): Promise<void> {
    await this.lease.tick();
  }

  /** One round of work while active: resume, plan and start moves; even out leaderships. */
  async tick(): Promise<void> {
    const epoch = this.lease.epoch();
    if (epoch === 0) return this.progress.clear();
    this.ticks++;
    await this.loadConfig(epoch);
    const records = (await this.deps.meta.listCollections()).map((v) => v.value);
    this.lastRecords = records;
    const moves = await this.deps.meta.listMoves();
    // moves a previous coordinator left: go on from their phase
    for (const { value, revision } of moves) if (!this.running.has(value.id)) this.launch(value, revision);
    // reshards, begun by collections.reshard or left by a previous coordinator
    this.reshards.tick(records);
    await this.finishDrains(records);
    const requested = this.config.requested === true;
    const input = this.planInput(records, requested || this.config.auto);
    this.under = underReplicated(input).length;
    this.reshardPairs = reshardMovesInFlight(records);
    const room = this.config.paused ? 0 : Math.max(0, this.config.maxConcurrentMoves - this.running.size - this.reshardPairs);
    const all = planMoves(input, 1_000);
    const now = all.slice(0, room);
    this.pending = all.length - now.length;
    for (const m of now) await this.create(m, m.reason);
    this.progress.observe([...[...this.running.values()].map((r) => r.move), ...records.flatMap((r) => reshardMoves(r))], this.deps.clock.now());
    if (requested && all.length === 0 && this.running.size === 0) await this.updateConfig((r) => ({ ...r, requested: false }));
    if (this.ticks % LEADER_EVERY_TICKS === 0) await this.leaderships.even(records, this.planInput(records, false), (this.config.auto || requested) && !this.config.paused);
  }

  /** For metrics: null on standby. */
  stats(): { movesInFlight: number; done: number; failed: number; pending: number; underReplicated: number; moves: MoveProgressEntry[] } | null {
    if (!this.active) return null;
    return { movesInFlight: this.running.size + this.reshardPairs, done: this.config.done, failed: this.config.failed, pending: this.pending, underReplicated: this.under, moves: this.progress.list() };
  }

  /** Stops acting (node shutdown): the lease is released, moves stop at their current phase. */
  async stop(): Promise<void> {
    await this.lease.release().catch(() => undefined);
  }

  // ------------------------------------------------------------------ operations

  async status(): Promise<RebalanceStatus> {
    const records = (await this.deps.meta.listCollections()).map((v) => v.value);
    const moves = [
      ...(await this.deps.meta.listMoves()).map(({ value: { uid: _u, epoch: _e, failedTargets: _f, ...m } }) => m),
      ...records.flatMap((r) => reshardMoves(r)),
    ];
    const cfg = this.active ? this.config : ((await this.deps.meta.getControl<RebalanceRecord>('rebalance'))?.value ?? { ...DEFAULT_REBALANCE, epoch: 0 });
    const lease = await this.deps.meta.getControl<{ node: string }>('coordinator');
    return {
      coordinator: this.active ? this.deps.node : (lease?.value.node ?? null),
      state: cfg.paused ? 'paused' : moves.length > 0 || (this.active && this.pending > 0) ? 'running' : 'idle',
      auto: cfg.auto,
      throttle: { maxConcurrentMoves: cfg.maxConcurrentMoves, maxBytesPerSec: cfg.maxBytesPerSec, replaceAfterMs: cfg.replaceAfterMs ?? this.deps.replaceAfterMs },
      moves,
      done: cfg.done,
      failed: cfg.failed,
      pending: this.active ? this.pending : 0,
    };
  }

  /**
   * rebalance.start. With `dryRun`, the reply's `moves` are the moves a rebalance would make now
   * (phase `planned`, ids `plan-<n>`), and nothing is applied.
   */
  async start(dryRun: boolean): Promise<RebalanceStatus> {
    this.mustBeActive();
    if (dryRun) {
      const records = (await this.deps.meta.listCollections()).map((v) => v.value);
      const planned = planMoves(this.planInput(records, true), 1_000);
      const at = new Date().toISOString();
      const moves = planned.map((m: PlannedMove, i) => ({ id: `plan-${i + 1}`, collection: m.collection, shard: m.shard, from: m.from, to: m.to, reason: m.reason, phase: 'planned' as const, bytesCopied: 0, bytesTotal: null, startedAt: at }));
      return { ...(await this.status()), moves, pending: moves.length };
    }
    // kept in the bucket: a coordinator that takes over goes on with it
    await this.updateConfig((r) => ({ ...r, requested: true }));
    return this.status();
  }

  async configure(c: { maxConcurrentMoves?: number; maxBytesPerSec?: number; auto?: boolean; replaceAfterMs?: number; paused?: boolean }): Promise<RebalanceStatus> {
    await this.updateConfig((r) => ({ ...r, ...c }));
    return this.status();
  }

  async maintenance(node: string, on: boolean, deadline: number): Promise<{ node: string; state: string; leaders: number }> {
    this.mustBeActive();
    await this.setAdmin(node, on ? 'maintenance' : 'active', (cur) => cur === 'removed' || cur === 'draining' ? `node ${node} is ${cur}` : null);
    if (!on) {
      const records = (await this.deps.meta.listCollections()).map((v) => v.value);
      return { node, state: this.deps.membership.stateOf(node, this.deps.clock.now()), leaders: (await this.leaderships.on(records, node)).length };
    }
    for (;;) {
      const records = (await this.deps.meta.listCollections()).map((v) => v.value);
      const led = await this.leaderships.on(records, node);
      if (led.length === 0) return { node, state: 'maintenance', leaders: 0 };
      if (this.deps.clock.now() >= deadline) {
        throw new TimeoutError(`node ${node} still leads ${led.length} shard${led.length === 1 ? '' : 's'} (${led.map((s) => `${s.collection}/${s.shard}`).join(', ')}); its leaderships are being handed away`);
      }
      await this.leaderships.even(records, this.planInput(records, false), false);
      await this.sleep(Math.min(300, Math.max(1, deadline - this.deps.clock.now())));
    }
  }

  async remove(node: string): Promise<{ node: string; state: 'draining'; moves: number }> {
    this.mustBeActive();
    const rec = await this.deps.meta.getNode(node);
    if (!rec || rec.value.admin === 'removed') throw new NotFoundError(`node ${node} is not registered`);
    const records = (await this.deps.meta.listCollections()).map((v) => v.value);
    const now = this.deps.clock.now();
    // the nodes that stay: up, or alive in maintenance (they keep their replicas)
    const others = this.deps.membership.nodes(now).filter((n) => n.id !== node && (n.state === 'up' || n.state === 'maintenance')).map((n) => n.id);
    const need = Math.max(0, ...records.map((r) => r.replicas));
    if (others.length < need) {
      throw new UnavailableError(`removing ${node} would leave ${others.length} live node${others.length === 1 ? '' : 's'} for collections of ${need} replicas; add a node first`);
    }
    await this.setAdmin(node, 'draining', (cur) => (cur === 'removed' ? `node ${node} is removed` : null));
    const moves = records.reduce((n, r) => n + r.placement.filter((p) => p.replicas.includes(node)).length, 0);
    return { node, state: 'draining', moves };
  }

  // ------------------------------------------------------------------ moves

  private planInput(records: CollectionRecord[], rebalance: boolean): PlanInput {
    const now = this.deps.clock.now();
    const view = this.deps.membership;
    const inFlight = [...this.running.values()].map((r) => ({ uid: r.move.uid, shard: r.move.shard, from: r.move.from, to: r.move.to }));
    return {
      nodes: view.nodes(now).map((n) => ({ id: n.id, state: n.state, zone: n.zone })),
      shards: records.flatMap((r) =>
        r.placement.map((p) => ({
          collection: r.name,
          uid: r.uid,
          shard: p.shard,
          replicas: r.replicas,
          voters: [...p.replicas],
          learners: inFlight.filter((m) => m.uid === r.uid && m.shard === p.shard).map((m) => m.to),
          leader: null,
        })),
      ),
      inFlight,
      rebalance,
    };
  }

  private async create(m: PlannedMove, reason: MoveRecord['reason']): Promise<void> {
    const move: MoveRecord = {
      id: `m-${randomBytes(4).toString('hex')}`,
      collection: m.collection,
      uid: m.uid,
      shard: m.shard,
      from: m.from,
      to: m.to,
      reason,
      phase: 'prepare',
      bytesCopied: 0,
      bytesTotal: null,
      startedAt: new Date().toISOString(),
      epoch: this.lease.epoch(),
    };
    if (move.epoch === 0) return;
    const revision = await this.deps.meta.putMove(move, null);
    this.deps.log.info('move planned', { move: move.id, shard: `${m.collection}/${m.shard}`, from: m.from, to: m.to, reason });
    this.launch(move, revision);
  }

  private launch(move: MoveRecord, revision: number): void {
    const entry: Running = { move, revision, done: Promise.resolve() };
    this.running.set(move.id, entry);
    entry.done = runMove(move, this.ports(entry)).then(
      async () => {
        this.running.delete(move.id);
        await this.deps.meta.deleteMove(move.id, entry.revision);
        await this.updateConfig((r) => ({ ...r, done: r.done + 1 })).catch(() => undefined);
        this.deps.log.info('move done', { move: move.id, shard: `${move.collection}/${move.shard}`, from: move.from, to: move.to });
      },
      async (err: unknown) => {
        this.running.delete(move.id);
        if (!this.active) return; // deposed: the next coordinator goes on with it
        this.deps.log.warn('move failed', { move: move.id, error: describeError(err) });
        if (err instanceof MoveStopped) {
          await this.deps.meta.deleteMove(move.id, entry.revision).catch(() => undefined);
          await this.updateConfig((r) => ({ ...r, failed: r.failed + 1 })).catch(() => undefined);
        }
      },
    );
  }

  private ports(entry: Running): MovePorts {
    const d = this.deps;
    const exists = async (uid: string): Promise<CollectionRecord> => {
      const r = (await d.meta.listCollections()).map((v) => v.value).find((x) => x.uid === uid);
      if (!r) throw new MoveStopped(`collection of move ${entry.move.id} was dropped`);
      return r;
    };
    return {
      now: () => d.clock.now(),
      sleep: (ms) => this.sleep(ms),
      epoch: () => this.lease.epoch(),
      leaderStatus: async (uid, shard) => {
        try {
          return await d.requester.request<ShardStatus>(leaderSubject(d.subjects, uid, shard), { type: 'status' }, { timeoutMs: STATUS_MS });
        } catch {
          await exists(uid);
          return undefined;
        }
      },
      replicaStatus: (node, uid, shard) =>
        d.requester.request<ShardStatus>(d.subjects.actor(node, replicaActorName(uid, shard)), { type: 'status' }, { timeoutMs: STATUS_MS }).catch(() => undefined),
      conf: async (uid, shard, change: MembershipChange, epoch) => {
        await d.requester.request(leaderSubject(d.subjects, uid, shard), { type: 'conf', change, epoch, timeoutMs: 10_000 }, { timeoutMs: 10_000 });
      },
      transfer: async (uid, shard, to) => {
        await d.requester.request(leaderSubject(d.subjects, uid, shard), { type: 'transfer', ...(to ? { to } : {}), timeoutMs: 5_000 }, { timeoutMs: 5_000 });
      },
      collect: (node, uid, shard) => d.requester.request(d.subjects.actor(node, 'replicas'), { type: 'collect', uid, shard }, { timeoutMs: 5_000 }),
      isAlive: (node) => d.membership.isAlive(node, d.clock.now()),
      save: async (move) => {
        try {
          entry.revision = await d.meta.putMove(move, entry.revision);
        } catch (err) {
          if (err instanceof RevisionConflictError) throw new MoveStopped(`move ${move.id} was changed by another coordinator`);
          throw err;
        }
      },
      clearBootstrap: async (_collection, uid, shard) => {
        await this.editCollection(uid, (r) => {
          const p = r.placement[shard];
          if (!p || p.bootstrap === null) return false;
          p.bootstrap = null;
          return true;
        });
      },
      commitPlacement: async (move) => {
        await this.editCollection(move.uid, (r) => {
          const p = r.placement[move.shard];
          if (!p) return false;
          const next = p.replicas.filter((n) => n !== move.from);
          if (!next.includes(move.to)) next.push(move.to);
          if (next.length === p.replicas.length && next.every((n, i) => n === p.replicas[i])) return false;
          p.replicas = next;
          return true;
        });
      },
      retarget: (move) => this.retarget(move),
      ...(d.faults?.has('slow-switch') ? { beforeSwitchStep: () => this.sleep(2_000) } : {}),
      log: d.log,
    };
  }

  /** Another up node for a move whose target died: not in the shard, not tried before; distinct zone first, then least loaded. */
  private retarget(move: MoveRecord): string | null {
    const now = this.deps.clock.now();
    const view = this.deps.membership;
    const excluded = new Set([move.to, ...(move.failedTargets ?? []), ...(move.from ? [move.from] : [])]);
    const records = this.lastRecords.find((r) => r.uid === move.uid);
    const holders = records?.placement[move.shard]?.replicas.filter((n) => n !== move.from) ?? [];
    for (const h of holders) excluded.add(h);
    const zoneOf = (n: string): string => view.zone(n) ?? `node:${n}`;
    const used = new Map<string, number>();
    for (const h of holders) used.set(zoneOf(h), (used.get(zoneOf(h)) ?? 0) + 1);
    const nodes = view.nodes(now).filter((n) => n.state === 'up' && !excluded.has(n.id));
    nodes.sort((a, b) => (used.get(zoneOf(a.id)) ?? 0) - (used.get(zoneOf(b.id)) ?? 0) || a.replicas - b.replicas || (a.id < b.id ? -1 : 1));
    return nodes[0]?.id ?? null;
  }

  /** Changes a collection's record by compare-and-set, while this coordinator is active. `edit` returns false when nothing changes. */
  private async editCollection(uid: string, edit: (r: CollectionRecord) => boolean): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      if (!this.active) throw new MoveStopped('this coordinator is no longer active');
      const cur = (await this.deps.meta.listCollections()).find((v) => v.value.uid === uid);
      if (!cur) throw new MoveStopped(`collection ${uid} was dropped`);
      const r = structuredClone(cur.value);
      if (!edit(r)) return;
      try {
        await this.deps.meta.updateCollection(r, cur.revision);
        return;
      } catch (err) {
        if (!(err instanceof RevisionConflictError)) throw err;
      }
    }
    throw new UnavailableError(`collection ${uid} kept changing`);
  }

  /** A draining node that holds no replica and no move any more is removed. */
  private async finishDrains(records: CollectionRecord[]): Promise<void> {
    for (const n of this.deps.membership.nodes(this.deps.clock.now())) {
      if (n.state !== 'draining') continue;
      const holds = records.some((r) => r.placement.some((p) => p.replicas.includes(n.id)));
      const moving = [...this.running.values()].some((m) => m.move.from === n.id || m.move.to === n.id);
      if (holds || moving) continue;
      await this.setAdmin(n.id, 'removed', () => null).catch((err: unknown) => this.deps.log.warn('could not mark a drained node removed', { target: n.id, error: describeError(err) }));
      this.deps.log.info('node removed', { target: n.id });
    }
  }

  // ------------------------------------------------------------------ records

  private async loadConfig(epoch: number): Promise<void> {
    const cur = await this.deps.meta.getControl<RebalanceRecord>('rebalance');
    if (cur) {
      this.config = cur.value;
    } else {
      this.config = { ...DEFAULT_REBALANCE, epoch };
      await this.deps.meta.putControl('rebalance', this.config, null).catch(() => undefined);
    }
  }

  private async updateConfig(change: (r: RebalanceRecord) => RebalanceRecord): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const epoch = this.lease.epoch();
      if (epoch === 0) throw this.notActive();
      const cur = await this.deps.meta.getControl<RebalanceRecord>('rebalance');
      const next = { ...change(cur?.value ?? { ...DEFAULT_REBALANCE, epoch }), epoch };
      try {
        await this.deps.meta.putControl('rebalance', next, cur ? cur.revision : null);
        this.config = next;
        return;
      } catch (err) {
        if (!(err instanceof RevisionConflictError)) throw err;
      }
    }
    throw new UnavailableError('the rebalance settings kept changing; try again');
  }

  private async setAdmin(node: string, admin: 'active' | 'maintenance' | 'draining' | 'removed', refuse: (cur: string) => string | null): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const cur = await this.deps.meta.getNode(node);
      if (!cur) throw new NotFoundError(`node ${node} is not registered`);
      const why = refuse(cur.value.admin ?? 'active');
      if (why) throw new UnavailableError(why);
      if ((cur.value.admin ?? 'active') === admin) return;
      try {
        await this.deps.meta.updateNode({ ...cur.value, admin }, cur.revision);
        this.deps.membership.know(node, { ...cur.value, admin });
        return;
      } catch (err) {
        if (!(err instanceof RevisionConflictError)) throw err;
      }
    }
    throw new UnavailableError(`node ${node}'s record kept changing; try again`);
  }

  private mustBeActive(): void {
    if (!this.active) throw this.notActive();
  }

  private notActive(): Error {
    return new UnavailableError(`node ${this.deps.node} is not the active coordinator${this.lease.holder ? ` (${this.lease.holder} is)` : ''}; retry`);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.deps.clock.setTimer(r, ms));
  }
}
