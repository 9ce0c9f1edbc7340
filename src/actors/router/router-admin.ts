/**
 * The admin operations of a router. Collections change only by compare-and-set in the metadata
 * bucket; the nodes watching it start or stop their replicas. Describe, list and health ask the
 * shards themselves (their leaders know their followers' progress).
 */
import { randomBytes } from 'node:crypto';
import type { CollectionSpec, ShardDescription } from '../../api/types.js';
import { sameSettings, validateCreate, validateEmpty, validateNamed } from '../../api/validate.js';
import type { CachedCollection, CollectionCache } from '../../cluster/collection-cache.js';
import type { MembershipView } from '../../cluster/membership.js';
import type { CollectionRecord, MetadataStore } from '../../cluster/metadata.js';
import type { ChangeStreams } from '../../cluster/change-streams.js';
import { placeReplicas } from '../../cluster/placement.js';
import type { Clock } from '../../runtime/clock.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, ShoalError, TimeoutError, UnavailableError } from '../../runtime/errors.js';
import { callShard } from './shard-client.js';
import type { Subjects } from '../../runtime/subjects.js';
import { validateConfigure, validateMaintenance, validateRebalanceStart, validateRemove, validateReshard, validateTransferLeader } from '../../api/ops.js';
import * as f from '../../api/fields.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import { coordinatorSubject, type CoordinatorOp } from '../coordinator/coordinator-actor.js';
import { reshardingSummary } from '../coordinator/reshards.js';
import type { Requester } from './shard-client.js';
import { leaderSubject, replicaActorName, type ShardStatus } from '../shard-protocol.js';

export interface AdminRouterDeps {
  requester: Requester;
  subjects: Subjects;
  meta: MetadataStore;
  collections: CollectionCache;
  membership: MembershipView;
  /** The system's clock, which the membership view's heartbeat times are read on. */
  clock: Clock;
  /** This node's coordinator (active or standby): rebalance.status reads the bucket through it when no coordinator answers. */
  coordinator: Coordinator;
  /** The JetStream streams of change streams (docs/changes.md): created and deleted with their collections. */
  changeStreams?: ChangeStreams;
}

/** How long a router keeps asking for an active coordinator (a takeover takes up to ~6 s). */
const COORDINATOR_RETRY_MS = 200;

/** How long describe/list/health wait for one shard's status before reporting it as unknown. */
export const STATUS_TIMEOUT_MS = 1_000;
/** A follower heard from within this long, and alive, is healthy. */
export const HEALTHY_CONTACT_MS = 2_000;

export class AdminRouter {
  constructor(private readonly deps: AdminRouterDeps) {}

  async create(raw: unknown): Promise<{ collection: unknown }> {
    const start = this.deps.clock.now();
    const spec = validateCreate(raw);
    const { timeoutMs, ...settings } = spec;
    const deadline = start + timeoutMs;
    const existing = await this.deps.meta.getCollection(settings.name);
    if (existing) return { collection: await this.describeRecord(await this.streamOf(this.checkSame(existing.value, settings)), deadline) };
    const record = await this.createRecord(settings, deadline);
    return { collection: await this.describeRecord(record, deadline) };
  }

  /**
   * Places and records a new collection (`extra` goes into its record), and waits for its shards'
   * leaders. A concurrent create of the same name with the same settings (and no `extra`) is that
   * one's record; otherwise ALREADY_EXISTS.
   */
  async createRecord(settings: CollectionSpec, deadline: number, extra: Partial<CollectionRecord> = {}): Promise<CollectionRecord> {
    // a router that just started has not heard every node yet
    const warm = Math.min(this.deps.membership.warmAt(), deadline);
    if (this.deps.clock.now() < warm) await this.sleep(warm - this.deps.clock.now());
    const now = this.deps.clock.now();
    const up = this.deps.membership.up(now);
    if (settings.replicas > up.length) {
      throw new UnavailableError(`replicas ${settings.replicas} needs ${settings.replicas} nodes up; ${up.length} ${up.length === 1 ? 'is' : 'are'} up${up.length ? ` (${up.join(', ')})` : ''}`);
    }
    const load = new Map(this.deps.membership.nodes(now).map((n) => [n.id, { replicas: n.replicas, leaders: n.leaders }]));
    const record: CollectionRecord = {
      ...settings,
      uid: randomBytes(6).toString('hex'),
      createdAt: new Date().toISOString(),
      placement: placeReplicas(settings.shards, settings.replicas, up, load, (n) => this.deps.membership.zone(n)),
      ...extra,
    };
    // The stream exists before any replica can publish to it, and starts empty.
    if (record.changeStream) await this.changeStreams().createFresh(record.name);
    try {
      await this.deps.meta.createCollection(record);
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      // someone created it concurrently: fine if with the same settings
      const now2 = await this.deps.meta.getCollection(settings.name);
      if (!now2 || Object.keys(extra).length > 0) throw err;
      return this.streamOf(this.checkSame(now2.value, settings));
    }
    await this.waitForLeaders(record, deadline);
    return record;
  }

  async drop(raw: unknown): Promise<{ dropped: boolean }> {
    const { name } = validateNamed(raw, 'collections.drop');
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await this.deps.meta.getCollection(name);
      if (!existing) throw new NotFoundError(`collection '${name}' does not exist`);
      if (await this.deps.meta.deleteCollection(name, existing.revision)) {
        this.deps.collections.forget(name);
        // after the record: no replica of the collection is meant to publish any more
        if (existing.value.changeStream) await this.changeStreams().remove(name);
        return { dropped: true };
      }
    }
    throw new UnavailableError(`collection '${name}' kept changing while being dropped; try again`);
  }

  async describe(raw: unknown): Promise<{ collection: unknown }> {
    const { name, timeoutMs } = validateNamed(raw, 'collections.describe');
    const c = await this.deps.collections.get(name);
    if (!c) throw new NotFoundError(`collection '${name}' does not exist`);
    return { collection: await this.describeRecord(c.record, this.deps.clock.now() + timeoutMs) };
  }

  async list(raw: unknown): Promise<{ collections: unknown[] }> {
    const { timeoutMs } = validateEmpty(raw, 'collections.list');
    const deadline = this.deps.clock.now() + timeoutMs;
    const all = (await this.deps.meta.listCollections()).map((v) => v.value);
    const described = await Promise.all(all.map((r) => this.shardStatuses(r, deadline)));
    return {
      collections: all.map((r, i) => ({
        name: r.name,
        dim: r.dim,
        metric: r.metric,
        shards: r.shards,
        replicas: r.replicas,
        count: (described[i] ?? []).reduce((n, s) => n + (s?.count ?? 0), 0),
      })),
    };
  }

  async status(raw: unknown): Promise<unknown> {
    validateEmpty(raw, 'cluster.status');
    for (const n of await this.deps.meta.listNodes()) this.deps.membership.know(n.id, n, this.deps.clock.now());
    const moves = (await this.deps.meta.listMoves()).map((v) => v.value);
    const records = (await this.deps.meta.listCollections()).map((v) => v.value);
    const now = this.deps.clock.now();
    const nodes = this.deps.membership.nodes(now).map((n) => {
      const own = { ...n, moves: moves.filter((m) => m.from === n.id || m.to === n.id).length };
      if (this.deps.membership.isAlive(n.id, now)) return own;
      // A node not heard from leads nothing; what it holds is what the placements give it (its
      // last heartbeat's figures go stale).
      const replicas = records.reduce((k, r) => k + r.placement.filter((p) => p.replicas.includes(n.id)).length, 0);
      return { ...own, replicas, leaders: 0 };
    });
    return { nodes, epoch: await this.deps.meta.epoch() };
  }

  /**
   * An operation of the coordinator's (nodes.*, rebalance.*): validated here, answered by the
   * active coordinator wherever it runs. While none is active (one takes over within 10 s of the
   * last one dying) the router keeps asking until the deadline.
   */
  async operate(op: CoordinatorOp, raw: unknown): Promise<unknown> {
    const timeoutMs = this.validateOp(op, raw);
    const deadline = this.deps.clock.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      const remaining = Math.floor(deadline - this.deps.clock.now());
      if (remaining < 1) break;
      try {
        return await this.deps.requester.request(coordinatorSubject(this.deps.subjects), { op, body: raw, timeoutMs: remaining }, { timeoutMs: remaining });
      } catch (err) {
        last = err;
        const code = err instanceof ShoalError ? err.code : '';
        const standby = code === 'UNAVAILABLE' && /not the active coordinator/.test((err as Error).message);
        if (code !== 'NO_RESPONDERS' && !standby) throw err;
        if (op === 'rebalance.status') return this.deps.coordinator.status();
        await this.sleep(Math.min(COORDINATOR_RETRY_MS, Math.max(1, deadline - this.deps.clock.now())));
      }
    }
    if (last instanceof ShoalError && last.code === 'TIMEOUT') throw last;
    throw new UnavailableError(`no coordinator is active before the deadline (another node takes over within 10 s of the last one stopping); retry${last ? ` (last: ${(last as Error).message})` : ''}`);
  }

  private validateOp(op: CoordinatorOp, raw: unknown): number {
    switch (op) {
      case 'nodes.maintenance':
        return validateMaintenance(raw).timeoutMs;
      case 'nodes.remove':
        return validateRemove(raw).timeoutMs;
      case 'rebalance.start':
        return validateRebalanceStart(raw).timeoutMs;
      case 'rebalance.configure':
        return validateConfigure(raw).timeoutMs;
      case 'collections.reshard':
        return validateReshard(raw).timeoutMs;
      default:
        return f.timeoutMs(f.body(raw, op, ['timeoutMs'])['timeoutMs']);
    }
  }

  /** collections.reshard (PROTOCOL.md): begun by the coordinator; the reply is the collection's describe, which shows the reshard. */
  async reshard(raw: unknown): Promise<{ collection: unknown }> {
    const { name } = (await this.operate('collections.reshard', raw)) as { name: string };
    const fresh = await this.deps.collections.refresh(name);
    if (!fresh) throw new NotFoundError(`collection '${name}' does not exist`);
    return { collection: await this.describeRecord(fresh.record, this.deps.clock.now() + STATUS_TIMEOUT_MS) };
  }

  /** shards.transfer-leader: the shard's leader hands over (to `to`, or its most caught-up other voter); answered once another replica leads. */
  async transferLeader(raw: unknown): Promise<{ collection: string; shard: number; leader: string; term: number }> {
    const req = validateTransferLeader(raw);
    const deadline = this.deps.clock.now() + req.timeoutMs;
    const c = await this.deps.collections.get(req.collection);
    if (!c) throw new NotFoundError(`collection '${req.collection}' does not exist`);
    if (req.shard >= c.record.placement.length) throw new InvalidArgumentError(`shard must be 0 to ${c.record.placement.length - 1} (collection '${req.collection}' has ${c.record.placement.length} shards), got ${req.shard}`);
    const subject = leaderSubject(this.deps.subjects, c.record.uid, req.shard);
    const what = `shard ${req.collection}/${req.shard}`;
    const before = await callShard<ShardStatus>(this.deps.requester, subject, { type: 'status' }, deadline, what, this.deps.clock);
    if (req.to !== undefined && !before.voters.includes(req.to)) {
      throw new InvalidArgumentError(`to: ${req.to} is not a voter of ${what} (voters: ${before.voters.join(', ')})`);
    }
    if (req.to === before.node) return { collection: req.collection, shard: req.shard, leader: before.node, term: before.term };
    const msLeft = (): number => Math.max(1, Math.floor(deadline - this.deps.clock.now()));
    await callShard(this.deps.requester, subject, { type: 'transfer', ...(req.to !== undefined ? { to: req.to } : {}), timeoutMs: msLeft() }, deadline, what, this.deps.clock);
    for (;;) {
      const now = await callShard<ShardStatus>(this.deps.requester, subject, { type: 'status' }, deadline, what, this.deps.clock);
      if (now.node !== before.node && (req.to === undefined || now.node === req.to)) return { collection: req.collection, shard: req.shard, leader: now.node, term: now.term };
      if (this.deps.clock.now() >= deadline) throw new TimeoutError(`${what}: ${now.node} still leads`);
      await this.sleep(50);
    }
  }

  async health(raw: unknown): Promise<unknown> {
    const { timeoutMs } = validateEmpty(raw, 'cluster.health');
    const deadline = this.deps.clock.now() + timeoutMs;
    const records = (await this.deps.meta.listCollections()).map((v) => v.value);
    const shards = (
      await Promise.all(
        records.map(async (r) => {
          const statuses = await this.shardStatuses(r, deadline);
          return r.placement.map((p, i) => {
            const st = statuses[i];
            const now = this.deps.clock.now();
            if (!st || st.role !== 'leader') return { collection: r.name, shard: p.shard, leader: null, healthyFollowers: 0, totalFollowers: Math.max(0, p.replicas.length - 1) };
            // The voters of the shard's configuration (during a move's switch there is one more
            // than the placement; a learner being copied is not a follower yet). A follower is
            // healthy when its node is alive and the leader heard from it lately.
            const followers = st.voters.filter((n) => n !== st.node);
            const healthy = followers.filter((n) => {
              const pr = st.progress.find((x) => x.node === n);
              return this.deps.membership.isAlive(n, now) && pr !== undefined && pr.lastContactMs !== null && pr.lastContactMs <= HEALTHY_CONTACT_MS;
            }).length;
            // a shard with fewer voters than its collection's replicas is degraded too
            return { collection: r.name, shard: p.shard, leader: st.node, healthyFollowers: healthy, totalFollowers: Math.max(followers.length, r.replicas - 1) };
          });
        }),
      )
    ).flat();
    return { healthy: shards.every((s) => s.leader !== null && s.healthyFollowers === s.totalFollowers), shards };
  }

  /** The describe reply of a collection: its settings, and per shard its leader and replicas. */
  async describeRecord(r: CollectionRecord, deadline: number): Promise<unknown> {
    const statuses = await this.shardStatuses(r, deadline);
    const shards = r.placement.map((p, i) => this.describeShard(r, p.shard, statuses[i]));
    const { uid: _uid, createdAt: _created, placement: _placement, map: _map, resharding: _rs, restoring: _restoring, ...settings } = r;
    return { ...settings, changeStream: r.changeStream === true, indexes: r.indexes ?? {}, count: shards.reduce((n, s) => n + s.count, 0), shards, resharding: reshardingSummary(r) };
  }

  private describeShard(r: CollectionRecord, shard: number, st: ShardStatus | undefined): ShardDescription {
    // The members of the shard's configuration (learners being copied included), else the placement.
    const goal = r.placement[shard]?.replicas ?? [];
    const placement = st?.role === 'leader' ? [...st.voters, ...st.learners.filter((n) => !st.voters.includes(n))] : goal;
    const now = this.deps.clock.now();
    const lead = st?.role === 'leader' ? st : undefined;
    return {
      shard,
      leader: lead?.node ?? null,
      term: st?.term ?? 0,
      commitIndex: st?.commitIndex ?? 0,
      count: st?.count ?? 0,
      replicas: placement.map((node) => {
        if (lead && node === lead.node) return { node, role: 'leader' as const, matchIndex: lead.appliedIndex, lagMs: 0 };
        const pr = lead?.progress.find((x) => x.node === node);
        const alive = this.deps.membership.isAlive(node, now);
        if (!pr || !alive) return { node, role: 'down' as const, matchIndex: pr?.matchIndex ?? 0, lagMs: pr?.lastContactMs ?? null };
        return { node, role: pr.role === 'learner' ? ('learner' as const) : ('follower' as const), matchIndex: pr.matchIndex, lagMs: pr.lastContactMs };
      }),
    };
  }

  /** Each shard's status from its leader, or, without one, from any replica that answers. */
  private async shardStatuses(r: CollectionRecord, deadline: number): Promise<(ShardStatus | undefined)[]> {
    const timeoutMs = Math.max(1, Math.min(STATUS_TIMEOUT_MS, deadline - this.deps.clock.now()));
    return Promise.all(
      r.placement.map(async (p) => {
        try {
          return await this.deps.requester.request<ShardStatus>(leaderSubject(this.deps.subjects, r.uid, p.shard), { type: 'status' }, { timeoutMs });
        } catch {
          const answers = await Promise.allSettled(
            p.replicas.map((node) => this.deps.requester.request<ShardStatus>(this.deps.subjects.actor(node, replicaActorName(r.uid, p.shard)), { type: 'status' }, { timeoutMs })),
          );
          const ok = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
          return ok.sort((a, b) => b.term - a.term || b.appliedIndex - a.appliedIndex)[0];
        }
      }),
    );
  }

  async waitForLeaders(r: CollectionRecord, deadline: number): Promise<void> {
    const pending = new Set(r.placement.map((p) => p.shard));
    while (pending.size > 0 && this.deps.clock.now() < deadline) {
      await Promise.all(
        [...pending].map(async (shard) => {
          try {
            await this.deps.requester.request(leaderSubject(this.deps.subjects, r.uid, shard), { type: 'status' }, { timeoutMs: Math.max(1, Math.min(500, deadline - this.deps.clock.now())) });
            pending.delete(shard);
          } catch (err) {
            if (!(err instanceof ShoalError)) throw err;
          }
        }),
      );
      if (pending.size > 0) await this.sleep(50);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.deps.clock.setTimer(r, ms));
  }

  private checkSame(existing: CollectionRecord, wanted: CollectionSpec): CollectionRecord {
    if (sameSettings(existing, wanted)) return existing;
    const diffs = (['dim', 'metric', 'shards', 'replicas'] as const)
      .filter((k) => existing[k] !== wanted[k])
      .map((k) => `${k} ${String(existing[k])} (asked ${String(wanted[k])})`);
    const more = JSON.stringify(existing.sharding) !== JSON.stringify(wanted.sharding) ? ['sharding'] : [];
    const hnsw = JSON.stringify(existing.hnsw) !== JSON.stringify(wanted.hnsw) ? ['hnsw'] : [];
    const stream = (existing.changeStream === true) !== (wanted.changeStream === true) ? [`changeStream ${existing.changeStream === true} (asked ${wanted.changeStream === true})`] : [];
    // Both sorted by field (validateCreate stores them so).
    const indexes = JSON.stringify(existing.indexes ?? {}) !== JSON.stringify(wanted.indexes ?? {}) ? [`indexes ${JSON.stringify(existing.indexes ?? {})} (asked ${JSON.stringify(wanted.indexes ?? {})})`] : [];
    throw new AlreadyExistsError(`collection '${existing.name}' exists with different settings: ${[...diffs, ...more, ...hnsw, ...stream, ...indexes].join(', ')}`);
  }

  /** A create of an existing collection with a change stream makes sure its stream exists (a create that failed after its record was written is finished by its retry). */
  private async streamOf(r: CollectionRecord): Promise<CollectionRecord> {
    if (r.changeStream) await this.changeStreams().ensure(r.name);
    return r;
  }

  private changeStreams(): ChangeStreams {
    if (!this.deps.changeStreams) throw new UnavailableError('this router cannot reach JetStream streams: change streams are not available');
    return this.deps.changeStreams;
  }
}

export type { CachedCollection };
