/**
 * The simulation's rebalance coordinator, and the part of its nodes' replica managers that moves
 * need: membership changes made by the real move executor (`runMove`,
 * src/actors/coordinator/move-executor.ts) through {@link MovePorts} over the simulated hosts.
 *
 * - The coordinator plans one move at a time of the group's replica, from a voter (sometimes a
 *   crashed one) to a node outside the group, or from nothing while the group has fewer than
 *   three voters, writes the move record to a bucket (a map, written by compare-and-set at the
 *   record's revision) and runs `runMove`. It crashes at random, between phases (around a
 *   record write) or in the middle of one: either it is deposed (its epoch reads 0; requests it
 *   already sent still land) or its process dies (nothing of it runs again). After a delay a
 *   coordinator with the next epoch takes over and resumes the move from the record's phase.
 *   Replicas learn the new epoch a little later, and refuse membership changes of older epochs.
 * - Every request crosses the seeded network (delay, loss, timeout); requests to the shard's
 *   leader subject reach whichever replicas lead and are ready, stale leaders included.
 * - A node's replica manager starts an empty replica that joins when the move record names it
 *   (it learns of the record after a watch delay: before or after the learner is added), and
 *   deletes a replica nothing places on it once the shard's leader says the configuration no
 *   longer holds it (on the coordinator's cleanup request, and now and then by itself).
 *
 * Checks: a move that completes leaves its target a voter and its source out of the committed
 * configuration, with the number of voters it started with (one more when it had no source);
 * while it runs, no committed configuration has fewer voters than it started with minus one,
 * and a voter is removed before the target votes only when the coordinator sees that voter down;
 * no membership change comes before the bootstrap voters are cleared; no node deletes its
 * replica while the committed configuration holds it; and after the faults heal, every move
 * finishes and the placement equals the committed voters, with no learner left.
 *
 * Moves may go back to nodes that held a replica of the group before (as the real planner's do):
 * the replica comes back empty under the same Raft id, with no memory of its votes, and is safe
 * only because a blank log votes for no one and no learner is promoted blank (src/raft).
 */
import { MoveStopped, runMove, type MovePorts } from '../../src/actors/coordinator/move-executor.js';
import type { MembershipChange, ShardStatus } from '../../src/actors/shard-protocol.js';
import type { MoveRecord } from '../../src/cluster/metadata.js';
import type { ConfState, NodeId } from '../../src/raft/types.js';
import type { RaftHost } from '../../src/replication/raft-host.js';
import type { GroupStatus } from '../../src/replication/raft-state-machine.js';
import type { Timer } from '../../src/runtime/clock.js';
import { describeError, InvalidArgumentError, NoRespondersError, NotLeaderError, TimeoutError, UnavailableError } from '../../src/runtime/errors.js';
import type { Logger } from '../../src/runtime/logger.js';

export const GROUP = 'g';
/** Request timeouts, in the coordinator's milliseconds (as coordinator.ts and replica-manager.ts set them). */
const STATUS_MS = 1_000;
const CONF_MS = 10_000;
const TRANSFER_MS = 5_000;
const COLLECT_MS = 5_000;
const COLLECT_ASK_MS = 2_000;

/** What the coordinator and the replica managers see of the simulated cluster. */
export interface MoveWorld {
  readonly ids: readonly NodeId[];
  /** The simulation's step. */
  now(): number;
  setTimer(fn: () => void, steps: number): Timer;
  /** One message between the coordinator (or a replica manager) and a node: its delay in steps, or null when lost. */
  fate(): number | null;
  /** The node's running host, if it is up. */
  host(node: NodeId): RaftHost | undefined;
  /** The node's host when its replica of the group is open. */
  replica(node: NodeId): RaftHost | undefined;
  /** The nodes whose replica leads and is ready: those subscribed to the shard's leader subject. */
  leaders(): NodeId[];
  /** The configuration in force at the highest index committed anywhere so far. */
  committedConf(): ConfState;
  /** Opens the node's replica empty, joining; nothing when the node is down or already has one. */
  openJoiner(node: NodeId): void;
  /** Deletes the node's replica and its data; resolves once that is durable. */
  deleteReplica(node: NodeId): Promise<void>;
  /** Crashes the node; `forGood`: it stays down until the faults heal. */
  crash(node: NodeId, forGood: boolean): void;
  /** A failed check (recorded; the step then fails). */
  fail(message: string): void;
  log: Logger;
}

/** Deliberate mistakes in the coordinator's ports, for the tests that show the checks catch them. */
export interface MoveBugs {
  /** The conf port proposes a change even when the committed configuration already shows it. */
  confNotIdempotent?: boolean;
  /** Retargeting may pick a node already in the shard (it excludes only the move's source, target and failed targets, as coordinator.ts's did before 1f11fff). */
  retargetToMember?: boolean;
}

export interface MoveStats {
  movesPlanned: number;
  movesDone: number;
  movesStopped: number;
  coordinatorCrashes: number;
  retargets: number;
  replicasDeleted: number;
}

/** One coordinator process, holding the lease at `epoch`. */
interface Coordinator {
  epoch: number;
  /** It lost the lease: its epoch reads 0, but what it already sent still lands. */
  deposed: boolean;
  /** Its process died: nothing of it runs again. */
  dead: boolean;
  /** The record's revision it last wrote or read (its compare-and-set). */
  revision: number;
  running: boolean;
  /** The last status of the leader it was given (what runMove decides on). */
  lastLead: ShardStatus | undefined;
}

/** The metadata bucket: the shard's placement (the goal) and bootstrap voters, and the move record. */
interface Bucket {
  placement: NodeId[];
  bootstrap: NodeId[] | null;
  move: MoveRecord | null;
  revision: number;
}

export class SimMoves {
  private readonly bucket: Bucket;
  private epochs = 0;
  private active: Coordinator | null = null;
  /** The latest coordinator epoch the replicas know (they refuse membership changes of older ones). */
  private knownEpoch = 0;
  private nextTakeover = 0;
  private seq = 0;
  /** The move under way and the voters of the committed configuration when it was planned. */
  private planned: { id: string; voters: number } | null = null;
  /** No committed configuration may have fewer voters (the last move's starting voters, less one). */
  private voterFloor: number;
  private readonly collecting = new Map<NodeId, RaftHost>();
  private readonly downSince = new Map<NodeId, number>();
  private healing = false;
  // Per seed: the coordinator's milliseconds per step, how long the membership view takes to see
  // a node down, and how often things go wrong.
  private readonly msPerStep: number;
  private readonly aliveLag: number;
  private readonly crashP: number;
  private readonly saveCrashP: number;
  private readonly sendCrashP: number;
  private readonly moverCrashP: number;
  private readonly epochLag: number;
  private readonly watchDelay: number;

  constructor(
    private readonly w: MoveWorld,
    private readonly rnd: () => number,
    voters: readonly NodeId[],
    private readonly stats: MoveStats,
    private readonly bugs: MoveBugs = {},
  ) {
    this.bucket = { placement: [...voters], bootstrap: [...voters], move: null, revision: 1 };
    this.voterFloor = voters.length;
    this.msPerStep = this.pick([10, 25, 50]);
    this.aliveLag = this.pick([0, 20, 80]);
    this.crashP = this.pick([0, 0.005, 0.02]);
    this.saveCrashP = this.pick([0, 0.1, 0.3]);
    this.sendCrashP = this.pick([0, 0.05, 0.15]);
    this.moverCrashP = this.pick([0, 0.005, 0.02]);
    this.epochLag = this.pick([0, 10]);
    this.watchDelay = this.pick([0, 5, 30, 100]);
    this.nextTakeover = Math.floor(this.rnd() * 20);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)] as T;
  }

  private steps(ms: number): number {
    return Math.max(1, Math.ceil(ms / this.msPerStep));
  }

  /** Whether the node's replica manager keeps a replica: the placement names it, or a move targets it. */
  wantsReplica(node: NodeId): boolean {
    return this.bucket.placement.includes(node) || this.bucket.move?.to === node;
  }

  /** A move is in the bucket (planned and not finished). */
  busy(): boolean {
    return this.bucket.move !== null;
  }

  describe(): string {
    const m = this.bucket.move;
    return `placement ${this.bucket.placement.join(',')}; ${m ? `move ${m.id} ${m.from ?? '-'}->${m.to} in ${m.phase}` : 'no move'}; coordinator ${this.active ? `epoch ${this.active.epoch}` : 'down'}`;
  }

  /** From now on nothing fails: a coordinator takes over at once if none is active. */
  heal(): void {
    this.healing = true;
    if (!this.active) this.nextTakeover = this.w.now();
  }

  /** One step: takeovers, planning, crashes of the coordinator and of the move's nodes, and collection. */
  step(faulty: boolean): void {
    const now = this.w.now();
    for (const id of this.w.ids) {
      if (!this.w.host(id)) {
        if (!this.downSince.has(id)) this.downSince.set(id, now);
      } else this.downSince.delete(id);
    }
    if (!this.active && now >= this.nextTakeover) this.takeover();
    const c = this.active;
    const move = this.bucket.move;
    if (faulty && c && move) {
      if (this.rnd() < this.crashP) this.crashCoordinator(c);
      const r = this.rnd();
      // The target, now and then for good (so that it is given up on and replaced), or the source.
      if (r < this.moverCrashP) this.w.crash(move.to as NodeId, this.rnd() < 0.5);
      else if (r < 2 * this.moverCrashP && move.from !== null) this.w.crash(move.from as NodeId, false);
    }
    if (faulty && c && this.active === c && !move && !c.running && this.rnd() < 0.05) this.plan(c);
    // The replica managers' periodic collection of replicas nothing places on their node.
    for (const id of this.w.ids) {
      if (this.w.replica(id) && !this.wantsReplica(id) && this.rnd() < 0.02) void this.collect(id);
    }
  }

  /** After a restart, or when a record names the node: start its replica if it should have one. */
  reconcile(node: NodeId): void {
    const host = this.w.host(node);
    if (!host || this.collecting.get(node) === host || !this.wantsReplica(node)) return;
    this.w.openJoiner(node);
  }

  /** A configuration was committed: while a move runs, it keeps all voters but one. */
  confCommitted(conf: ConfState): void {
    if (conf.voters.length < this.voterFloor) {
      this.w.fail(`a committed configuration has ${conf.voters.length} voters (${conf.voters.join(',')}); moves keep at least ${this.voterFloor}`);
    }
  }

  // ------------------------------------------------------------ the coordinator

  private takeover(): void {
    const c: Coordinator = { epoch: ++this.epochs, deposed: false, dead: false, revision: this.bucket.revision, running: false, lastLead: undefined };
    this.active = c;
    const lag = Math.floor(this.rnd() * (this.epochLag + 1));
    this.w.setTimer(() => (this.knownEpoch = Math.max(this.knownEpoch, c.epoch)), lag);
    const m = this.bucket.move;
    this.w.log.info('coordinator takes over', { epoch: c.epoch, move: m ? `${m.id} ${m.phase}` : null });
    if (m) this.launch(c, structuredClone(m));
  }

  /** The coordinator loses its lease (`deposed`) or its process dies (`dies`; by default either). */
  private crashCoordinator(c: Coordinator, how: 'deposed' | 'dies' = this.rnd() < 0.5 ? 'dies' : 'deposed'): void {
    if (this.healing || c.dead || c.deposed) return;
    if (how === 'dies') c.dead = true;
    else c.deposed = true;
    this.w.log.info('coordinator crashes', { epoch: c.epoch, how: c.dead ? 'dies' : 'deposed' });
    this.stats.coordinatorCrashes++;
    if (this.active === c) this.active = null;
    this.nextTakeover = this.w.now() + 1 + Math.floor(this.rnd() * 60);
  }

  private plan(c: Coordinator): void {
    const placement = this.bucket.placement;
    const conf = this.w.committedConf();
    const up = (n: NodeId): boolean => this.w.host(n) !== undefined;
    // Nodes that held a replica of the group before are targets too (they rejoin blank).
    const outside = this.w.ids.filter((n) => !placement.includes(n) && !conf.voters.includes(n) && !conf.learners.includes(n));
    // As the real planner, mostly an up node; now and then one that just went down unnoticed.
    const targets = this.rnd() < 0.9 ? outside.filter(up) : outside;
    if (targets.length === 0) return;
    const to = this.pick(targets);
    let from: NodeId | null;
    if (placement.length < 3 && this.rnd() < 0.7) from = null;
    else {
      const down = placement.filter((n) => !up(n));
      from = down.length > 0 && this.rnd() < 0.5 ? this.pick(down) : this.pick(placement);
    }
    const move: MoveRecord = {
      id: `m${++this.seq}`,
      collection: 'sim',
      uid: 'u',
      shard: 0,
      from,
      to,
      reason: from === null ? 'repair' : 'rebalance',
      phase: 'prepare',
      bytesCopied: 0,
      bytesTotal: null,
      startedAt: new Date(this.w.now() * this.msPerStep).toISOString(),
      epoch: c.epoch,
    };
    this.planned = { id: move.id, voters: conf.voters.length };
    this.voterFloor = conf.voters.length - 1;
    this.stats.movesPlanned++;
    this.w.log.info('move planned', { move: move.id, from, to, voters: conf.voters.join(',') });
    this.write(c, move);
    this.launch(c, move);
  }

  private launch(c: Coordinator, move: MoveRecord): void {
    c.running = true;
    runMove(move, this.ports(c, move)).then(
      () => {
        c.running = false;
        this.finished(c, move);
      },
      (err: unknown) => {
        c.running = false;
        if (!(err instanceof MoveStopped)) {
          this.w.fail(`runMove failed with something other than MoveStopped: ${describeError(err)}`);
          return;
        }
        // Deposed: the next coordinator goes on with it. Still active: the move is given up.
        if (this.active !== c || c.deposed || c.dead) return;
        this.w.log.info('move given up', { move: move.id, error: describeError(err) });
        if (this.bucket.revision === c.revision && this.bucket.move?.id === move.id) {
          this.removeRecord();
          this.stats.movesStopped++;
        }
      },
    );
  }

  private finished(c: Coordinator, move: MoveRecord): void {
    // A deposed coordinator's move may end too (its last request was answered after it lost the
    // lease); the next coordinator finishes it again and is the one checked (the shard may have
    // moved on meanwhile).
    if (this.active === c && !c.deposed) this.checkFinished(move);
    // As the real coordinator: the record goes, by compare-and-set (a deposed one may find it changed).
    if (this.bucket.revision === c.revision && this.bucket.move?.id === move.id) {
      this.removeRecord();
      this.stats.movesDone++;
    }
  }

  private checkFinished(move: MoveRecord): void {
    const conf = this.w.committedConf();
    const planned = this.planned?.id === move.id ? this.planned.voters : undefined;
    if (!conf.voters.includes(move.to as NodeId)) this.w.fail(`move ${move.id} finished but ${move.to} is not a voter (voters ${conf.voters.join(',')})`);
    if (move.from !== null && (conf.voters.includes(move.from as NodeId) || conf.learners.includes(move.from as NodeId))) {
      this.w.fail(`move ${move.id} finished but ${move.from} is still in the configuration (voters ${conf.voters.join(',')}; learners ${conf.learners.join(',')})`);
    }
    if (planned !== undefined && conf.voters.length !== planned + (move.from === null ? 1 : 0)) {
      this.w.fail(`move ${move.id} (${move.from ?? '-'}->${move.to}) began with ${planned} voters and ended with ${conf.voters.length} (${conf.voters.join(',')})`);
    }
    this.w.log.info('move done', { move: move.id, voters: conf.voters.join(',') });
  }

  private removeRecord(): void {
    this.bucket.move = null;
    this.bucket.revision++;
    this.planned = null;
  }

  /** Writes the record; the replica managers learn of it after the watch's delay. */
  private write(c: Coordinator, move: MoveRecord): void {
    this.bucket.move = structuredClone(move);
    c.revision = ++this.bucket.revision;
    const to = move.to as NodeId;
    this.w.setTimer(() => this.reconcile(to), Math.floor(this.rnd() * (this.watchDelay + 1)));
  }

  private isAlive(node: NodeId): boolean {
    const since = this.downSince.get(node);
    return since === undefined || this.w.now() - since < this.aliveLag;
  }

  /** Mirrors coordinator.ts: an up node not excluded, the least loaded first; but never one already in the shard (unless the bug says so). */
  private retarget(move: MoveRecord): string | null {
    this.stats.retargets++;
    const conf = this.w.committedConf();
    const excluded = new Set<string>([move.to, ...(move.failedTargets ?? []), ...(move.from !== null ? [move.from] : [])]);
    const members = new Set<string>([...this.bucket.placement, ...conf.voters, ...conf.learners]);
    if (!this.bugs.retargetToMember) for (const n of members) excluded.add(n);
    const load = (n: NodeId): number => (this.w.replica(n) ? 1 : 0);
    const nodes = this.w.ids.filter((n) => this.isAlive(n) && this.w.host(n) && !excluded.has(n));
    nodes.sort((a, b) => load(a) - load(b) || (a < b ? -1 : 1));
    const next = nodes[0] ?? null;
    return next;
  }

  private ports(c: Coordinator, move: MoveRecord): MovePorts {
    const alive = (): boolean => !c.dead;
    const hang = <T>(): Promise<T> => new Promise<T>(() => undefined);
    const active = (): boolean => this.active === c && !c.deposed && !c.dead;
    return {
      now: () => this.w.now() * this.msPerStep,
      sleep: (ms) => new Promise<void>((resolve) => this.w.setTimer(() => (c.dead ? undefined : resolve()), this.steps(ms))),
      epoch: () => (active() ? c.epoch : 0),
      leaderStatus: async () => {
        const st = await this.request(alive, STATUS_MS, () => this.atLeader((node, host) => shardStatus(node, host.status(GROUP)))).catch(() => undefined);
        c.lastLead = st;
        return st;
      },
      replicaStatus: (node) =>
        this.request(alive, STATUS_MS, () => {
          const host = this.w.replica(node as NodeId);
          if (!host) throw new NoRespondersError(`no replica on ${node}`);
          return Promise.resolve(shardStatus(node as NodeId, host.status(GROUP)));
        }).catch(() => undefined),
      conf: (_uid, _shard, change, epoch) => {
        this.checkRemoval(c, move, change);
        return this.sent(c, this.request(alive, CONF_MS, () => this.atLeader((node, host) => this.serveConf(node, host, change, epoch))));
      },
      transfer: (_uid, _shard, to) => this.sent(c, this.request(alive, TRANSFER_MS, () => this.atLeader((node, host) => serveTransfer(node, host, to)))),
      collect: (node) =>
        this.sent(c, this.request(alive, COLLECT_MS, async () => {
          if (!this.w.host(node as NodeId)) throw new NoRespondersError(`${node} is down`);
          const removed = await this.collect(node as NodeId);
          return { removed, hosted: this.w.replica(node as NodeId) !== undefined };
        })),
      isAlive: (node) => this.isAlive(node as NodeId),
      save: (m) => {
        if (c.dead) return hang();
        if (this.bucket.revision !== c.revision) return Promise.reject(new MoveStopped(`move ${m.id} was changed by another coordinator`));
        // The coordinator may die around a phase's record write: just before it, or just after.
        const crash = !this.healing && this.rnd() < this.saveCrashP ? (this.rnd() < 0.5 ? 'before' : 'after') : null;
        if (crash === 'before') {
          this.crashCoordinator(c, 'dies');
          return hang();
        }
        this.write(c, m);
        if (crash === 'after') {
          this.crashCoordinator(c, 'dies');
          return hang();
        }
        return Promise.resolve();
      },
      clearBootstrap: () => {
        if (c.dead) return hang();
        if (!active()) return Promise.reject(new MoveStopped('this coordinator is no longer active'));
        this.bucket.bootstrap = null;
        return Promise.resolve();
      },
      commitPlacement: (m) => {
        if (c.dead) return hang();
        if (!active()) return Promise.reject(new MoveStopped('this coordinator is no longer active'));
        const next = this.bucket.placement.filter((n) => n !== m.from);
        if (!next.includes(m.to as NodeId)) next.push(m.to as NodeId);
        this.bucket.placement = next;
        return Promise.resolve();
      },
      retarget: (m) => this.retarget(m),
      log: this.w.log,
    };
  }

  /** A request that changes something has been sent: the coordinator may crash while it is in flight (it still lands). */
  private sent<T>(c: Coordinator, request: Promise<T>): Promise<T> {
    if (!this.healing && this.rnd() < this.sendCrashP) this.crashCoordinator(c);
    return request;
  }

  /** With a live source the shard keeps every replica until the new one votes: a voter goes first only when seen down. */
  private checkRemoval(c: Coordinator, move: MoveRecord, change: MembershipChange): void {
    if (!('remove' in change) || change.remove !== move.from) return;
    const lead = c.lastLead;
    if (lead && lead.voters.includes(change.remove) && !lead.voters.includes(move.to) && this.isAlive(change.remove as NodeId)) {
      this.w.fail(`move ${move.id} removes voter ${change.remove}, which the coordinator sees up, before ${move.to} votes`);
    }
  }

  /** The leader replica's side of `conf` (replica-requests.ts): fenced by epoch, and idempotent. */
  private async serveConf(node: NodeId, host: RaftHost, change: MembershipChange, epoch: number): Promise<void> {
    // Once the membership changes, a bootstrap voter that lost its state must join, not write the first configuration again.
    if (this.bucket.bootstrap !== null) this.w.fail(`a membership change (${JSON.stringify(change)}) before the shard's bootstrap voters were cleared`);
    if (epoch < this.knownEpoch) throw new UnavailableError(`a membership change from coordinator epoch ${epoch} refused; epoch ${this.knownEpoch} is current`);
    const core = host.inspect(GROUP);
    if (core.role !== 'leader') throw new NotLeaderError(`${node} does not lead`);
    const conf = core.conf;
    const done =
      'addLearner' in change
        ? conf.learners.includes(change.addLearner as NodeId) || conf.voters.includes(change.addLearner as NodeId)
        : 'promote' in change
          ? conf.voters.includes(change.promote as NodeId)
          : !conf.voters.includes(change.remove as NodeId) && !conf.learners.includes(change.remove as NodeId);
    if (!done || this.bugs.confNotIdempotent) await host.changeMembership(GROUP, change);
  }

  // ------------------------------------------------------------ the replica managers

  /** A node's replica manager deletes its replica if nothing places it there and the shard's leader says the configuration no longer holds it. */
  private async collect(node: NodeId): Promise<boolean> {
    const host = this.w.replica(node);
    if (!host || this.collecting.get(node) === host || this.wantsReplica(node)) return false;
    this.collecting.set(node, host);
    try {
      const st = await this.request(() => this.w.host(node) === host, COLLECT_ASK_MS, () => this.atLeader((l, h) => shardStatus(l, h.status(GROUP)))).catch(() => undefined);
      const out = st !== undefined && st.role === 'leader' && st.node !== node && !st.voters.includes(node) && !st.learners.includes(node);
      // still nothing places it here (a move may have targeted this node meanwhile)
      if (!out || this.w.replica(node) !== host || this.wantsReplica(node)) return false;
      const conf = this.w.committedConf();
      if (conf.voters.includes(node) || conf.learners.includes(node)) {
        this.w.fail(`${node} deletes its replica while the committed configuration holds it (voters ${conf.voters.join(',')}; learners ${conf.learners.join(',')})`);
      }
      this.stats.replicasDeleted++;
      this.w.log.info('replica deleted', { node });
      await this.w.deleteReplica(node);
      return true;
    } finally {
      if (this.collecting.get(node) === host) this.collecting.delete(node);
      this.reconcile(node);
    }
  }

  // ------------------------------------------------------------ the network

  /** Serves a request on the shard's leader subject: one of the replicas that lead and are ready. */
  private atLeader<T>(serve: (node: NodeId, host: RaftHost) => T | Promise<T>): Promise<T> {
    const leaders = this.w.leaders();
    if (leaders.length === 0) throw new NoRespondersError('no replica leads the shard');
    const node = this.pick(leaders);
    return Promise.resolve(serve(node, this.w.replica(node) as RaftHost));
  }

  /**
   * A request: delivered after a delay or lost, served there, answered after another delay or
   * lost; rejects with TimeoutError after `timeoutMs`. Nothing resolves once `alive` says the
   * sender is gone.
   */
  private request<T>(alive: () => boolean, timeoutMs: number, serve: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        if (alive()) f();
      };
      const timer = this.w.setTimer(() => settle(() => reject(new TimeoutError(`request timed out after ${timeoutMs} ms`))), this.steps(timeoutMs));
      const there = this.w.fate();
      if (there === null) return;
      this.w.setTimer(() => {
        let served: Promise<T>;
        try {
          served = serve();
        } catch (err) {
          served = Promise.reject(err);
        }
        const answer = (f: () => void): void => {
          const back = this.w.fate();
          if (back !== null) this.w.setTimer(() => settle(f), back);
        };
        served.then(
          (v) => answer(() => resolve(v)),
          (err: unknown) => answer(() => reject(err)),
        );
      }, there);
    });
  }

  /** After healing: the placement (the goal) is what the committed configuration holds, and no learner was left behind. */
  checkSettled(conf: ConfState): void {
    const placed = [...this.bucket.placement].sort().join(',');
    const voters = [...conf.voters].sort().join(',');
    if (placed !== voters) this.w.fail(`after healing, the placement is ${placed} but the voters are ${voters}`);
    if (conf.learners.length > 0) this.w.fail(`after healing, learners ${conf.learners.join(',')} are left in the configuration (voters ${voters})`);
  }
}

/** The leader's side of `transfer` (replica-requests.ts). */
async function serveTransfer(node: NodeId, host: RaftHost, to: string | undefined): Promise<void> {
  const core = host.inspect(GROUP);
  if (core.role !== 'leader') throw new NotLeaderError(`${node} does not lead`);
  if (to !== undefined && !core.conf.voters.includes(to as NodeId)) throw new InvalidArgumentError(`${to} is not a voter`);
  if (to !== node) await host.transferLeadership(GROUP, to);
}

/** A replica's status as the replica actor answers it (replica-factory.ts). */
function shardStatus(node: NodeId, st: GroupStatus): ShardStatus {
  return {
    node,
    role: st.role,
    term: st.term,
    leader: st.leader,
    commitIndex: st.commitIndex,
    appliedIndex: st.appliedIndex,
    count: st.appliedIndex,
    progress: st.progress.map((p) => ({ node: p.node, matchIndex: p.matchIndex, lastContactMs: p.lastContactMs, role: p.role })),
    voters: st.voters,
    learners: st.learners,
    lastIndex: st.lastIndex,
    snapshot: st.snapshot ?? null,
    reads: st.reads,
    followerReads: { reads: 0, requests: 0, leased: 0 },
    health: st.damaged ? 'repairing' : 'ok',
    damage: null,
  };
}
