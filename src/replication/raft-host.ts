/**
 * The Raft host: one per node, hosting many groups' replicas on one transport and one log store
 * (NATS and LMDB in a node: {@link RaftHost.start}; their in-memory twins in the simulation and
 * the host's unit tests: {@link RaftHost.open}). It drives every group's pure core (src/raft) in turns of the event loop:
 * it steps inbound messages, ticks and local requests into the cores, marks their groups dirty,
 * and runs a turn over them ({@link TurnPipeline}, raft-turns.ts: one transaction for all their
 * writes; nothing that promises durability leaves before that transaction is flushed).
 *
 * This file is the host's public API, the wiring of its parts, and its own stop (stop, crash,
 * fail-stop). Each part is a file of its own and gets what it needs from here, as the turns do:
 * the groups' lifecycle (raft-host-groups.ts), the requests (raft-host-requests.ts), the loop
 * that steps messages, ticks and schedules turns (raft-host-loop.ts), the turns
 * (raft-turns.ts), and the status and counters (raft-host-status.ts).
 */
import * as zlib from 'node:zlib';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { InvalidArgumentError, NotFoundError, NotLeaderError, UnavailableError, describeError } from '../runtime/errors.js';
import { useNativeCrc32 } from '../raft/crc32.js';
import type { RaftNodeView } from '../raft/raft-node.js';
import { LmdbRaftLogStore } from '../storage/lmdb-raft-log-store.js';
import type { RaftLogStore } from '../storage/raft-log-store.js';
import type { GroupReplica } from './raft-group.js';
import { parseRaftHostOptions, type CreateGroupOptions, type RaftHostDeps, type RaftHostOptions, type RaftHostStartOptions } from './raft-options.js';

export type { CreateGroupOptions, RaftHostDeps, RaftHostStartOptions };
import { PeerLiveness } from './raft-liveness.js';
import type { ReadMode } from './raft-reads.js';
import { SnapshotStreams } from './raft-snapshots.js';
import type { GroupStatus, RoleChange, SnapshotProgress, WriteConcern } from './raft-state-machine.js';
import { NatsRaftTransport } from './nats-raft-transport.js';
import type { RaftTransport, TransportStats } from './raft-transport.js';
import { TurnPipeline, type TurnStats } from './raft-turns.js';
import { HostTraces } from './raft-trace.js';
import { HostLoop } from './raft-host-loop.js';
import { HostCounters, type ReadCounters } from './raft-host-status.js';
import { HostRequests } from './raft-host-requests.js';
import { GroupLifecycle } from './raft-host-groups.js';

export class RaftHost {
  readonly nodeId: string;
  readonly opts: RaftHostOptions;
  private readonly groups = new Map<string, GroupReplica>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly store: RaftLogStore;
  private readonly transport: RaftTransport;
  private readonly snapshots: SnapshotStreams;
  private readonly liveness: PeerLiveness;
  private stopped = false;
  /** Why the host stopped itself (fail-stop), if it did. */
  private fatal: string | null = null;
  /** Traced proposals and appends waiting for their turn (raft-trace.ts). */
  private readonly traces: HostTraces;
  private readonly turns: TurnPipeline;
  /** Steps, ticks and turns (raft-host-loop.ts). */
  private readonly loop: HostLoop;
  /** Creating, removing and repairing replicas (raft-host-groups.ts). */
  private readonly lifecycle: GroupLifecycle;
  /** Status and counters (raft-host-status.ts). */
  private readonly counters: HostCounters;
  /** Proposals, reads, transfers and membership changes (raft-host-requests.ts). */
  private readonly requests: HostRequests;

  private constructor(private readonly deps: RaftHostDeps) {
    this.nodeId = deps.nodeId;
    this.opts = parseRaftHostOptions(deps.options ?? {}, deps.nodeId);
    this.clock = deps.clock;
    this.log = deps.log;
    this.store = deps.store;
    this.transport = deps.transport;
    this.liveness = new PeerLiveness(this.nodeId, this.clock.now());
    this.traces = new HostTraces(deps.nodeId);
    this.snapshots = new SnapshotStreams(this.transport, this.nodeId, this.opts.snapshotChunkBytes, this.opts.snapshotStallMs, this.log, this.clock);
    const o = this.opts;
    this.turns = new TurnPipeline({
      store: this.store, transport: this.transport, snapshots: this.snapshots, log: this.log, traces: this.traces, bugs: deps.bugs ?? {},
      now: () => this.clock.now(),
      compactKeep: o.compactKeep, compactEvery: o.compactEvery, compactBytes: o.compactBytes, compactKeepBytes: o.compactKeepBytes,
      notLeader: (g, reason, leader) => this.notLeader(g, reason, leader),
      markDirty: (g) => this.loop.markDirty(g),
      stopped: () => this.stopped,
      fatal: (err) => this.failStop(err),
    });
    this.loop = new HostLoop({
      nodeId: this.nodeId, opts: o, groups: this.groups, clock: this.clock, log: this.log, transport: this.transport,
      snapshots: this.snapshots, liveness: this.liveness, turns: this.turns, traces: this.traces, writeGate: deps.writeGate,
      defer: deps.defer ?? ((fn) => setImmediate(fn)),
      stopped: () => this.stopped,
      transfer: (groupId, to) => this.requests.transferNow(groupId, to),
    });
    this.lifecycle = new GroupLifecycle({
      nodeId: this.nodeId, opts: o, groups: this.groups, store: this.store, clock: this.clock, log: this.log, loop: this.loop,
      maxPayload: this.transport.maxPayload, flow: deps.flow, bugs: deps.bugs,
      retired: (g) => this.counters.retire(g),
    });
    this.counters = new HostCounters({
      groups: this.groups, clock: this.clock, liveness: this.liveness, snapshots: this.snapshots, transport: this.transport, turns: this.turns,
      fatal: () => this.fatal,
    });
    this.requests = new HostRequests({
      nodeId: this.nodeId, opts: o, loop: this.loop, counters: this.counters, traces: this.traces, writeGate: deps.writeGate,
      maxEntryBytes: () => this.maxEntryBytes(),
      serving: (groupId) => this.serving(groupId),
      notLeader: (g, reason, leader) => this.notLeader(g, reason, leader),
    });
  }

  /** Counters: turns run, turns that wrote, time waiting for flushes, Readys, entries persisted. */
  get stats(): TurnStats {
    return this.counters.turns;
  }

  /** The host of a node: its log in the node's LMDB environment, its messages over NATS. */
  static async start(o: RaftHostStartOptions): Promise<RaftHost> {
    const store = o.store ?? (o.env ? new LmdbRaftLogStore(o.env) : undefined);
    if (!store) throw new InvalidArgumentError('RaftHost.start needs env (the node LMDB environment) or store');
    // Entry checksums of large entries in native code when this Node has it (zlib.crc32: 20.15+).
    useNativeCrc32((zlib as { crc32?: (data: Uint8Array, value: number) => number }).crc32);
    const opts = parseRaftHostOptions(o.options ?? {}, o.nodeId);
    const electionMs = opts.electionTicks * opts.tickMs;
    const transport = new NatsRaftTransport(o.system.nc, o.system.requests, o.system.subjects, o.nodeId, Math.max(2 * electionMs, 500), o.system.log);
    const host = RaftHost.open({
      nodeId: o.nodeId, clock: o.system.clock, log: o.system.log, store, transport, options: { ...o.options, seed: opts.seed },
      ...(o.onFatal ? { onFatal: o.onFatal } : {}),
      ...(o.writeGate ? { writeGate: o.writeGate } : {}),
    });
    await o.system.flush();
    return host;
  }

  /** A host over the given ports, started (it receives and ticks at once). */
  static open(deps: RaftHostDeps): RaftHost {
    const host = new RaftHost(deps);
    host.loop.start();
    return host;
  }

  // ------------------------------------------------------------------ groups (raft-host-groups.ts)

  /** Creates (or reopens from stored state) this node's replica of `groupId`. Idempotent. */
  createGroup(groupId: string, o: CreateGroupOptions): Promise<void> {
    return this.lifecycle.create(groupId, o);
  }

  /** Stops this node's replica of `groupId` and deletes its Raft state (not the state machine's). */
  removeGroup(groupId: string): Promise<void> {
    return this.lifecycle.remove(groupId);
  }

  /**
   * The voters of `groupId` as this node knows them: its running replica's configuration, or the
   * one its stored state reaches (without starting it); undefined when it has neither.
   */
  votersOf(groupId: string): string[] | undefined {
    return this.lifecycle.votersOf(groupId);
  }

  /** Whether this node's replica of `groupId` is repairing its log: it holds less than it acknowledged, and votes for no one until its leader has caught it up. */
  isDamaged(groupId: string): boolean {
    return this.groups.get(groupId)?.core.damaged ?? false;
  }

  /**
   * Starts this node's replica of `groupId` over, for a state machine whose data was found
   * damaged and wiped: stops the running replica (if any), then keeps of its stored state only
   * the term and the vote (so it never votes twice in a term) and stores it as `repairing` with
   * an empty log and no configuration, like a replica that joins. It votes for no one and does
   * not campaign until its leader has sent it the log (a snapshot, when the leader compacted)
   * and an entry of the leader's term is committed here: the same repair as a log cut short at a
   * corrupt entry (raft-state.ts). The caller then calls {@link createGroup} with an empty state
   * machine. Only safe while the group has other voters to copy from (see {@link votersOf}).
   */
  resetForRepair(groupId: string): Promise<void> {
    return this.lifecycle.resetForRepair(groupId);
  }

  // ------------------------------------------------------------------ requests (raft-host-requests.ts)

  /**
   * On the leader: appends `data`, replicates it, and resolves per `concern`: `majority` once
   * committed and applied here (with the state machine's result); `all` once every member
   * applied it; `leader` once durable here (result undefined; it may still be lost if this
   * leader fails before replicating it). Rejects with NotLeaderError (naming the leader when
   * known), UnavailableError, or TimeoutError (outcome unknown); never hangs past `timeoutMs`.
   */
  propose(groupId: string, data: Uint8Array, o: { concern: WriteConcern; timeoutMs: number }): Promise<{ index: number; result: unknown }> {
    return this.requests.propose(groupId, data, o);
  }

  /**
   * A linearizable read barrier (ReadIndex): resolves once this replica, as leader, has
   * confirmed its leadership — with a quorum (`strong`) or by its lease (`leased`) — and applied
   * up to the read index. Then reading the state machine here is linearizable.
   */
  readBarrier(groupId: string, o: { mode: ReadMode; timeoutMs: number }): Promise<void> {
    return this.requests.readBarrier(groupId, o);
  }

  /**
   * On the leader: a read index confirmed like {@link readBarrier}'s, without waiting to apply it
   * here, and the term it was taken in. A follower that has applied it may serve a linearizable
   * read (raft-reads.ts) if it is still in that term when the answer reaches it; name it as
   * `forPeer` so that it hears of the commit index at once (and, with three voters or fewer,
   * completes the quorum itself: no heartbeat round).
   */
  readIndex(groupId: string, o: { mode: ReadMode; timeoutMs: number; forPeer?: string }): Promise<{ index: number; term: number }> {
    return this.requests.readIndex(groupId, o);
  }

  /**
   * On a follower: a read index its leader confirmed (`strong`: by a quorum; `leased`: by its
   * lease), asked for over the Raft transport: the reads of all this node's groups that wait for
   * an index from one peer node go in one frame per turn, and the answers ride back on its reply.
   * Resolves with the index and the term it was given in (this replica was still in that term
   * when the answer arrived: with three voters or fewer that completes the leader's quorum); not
   * yet applied here (then {@link waitApplied}). Rejects with NotLeaderError when this replica
   * knows no leader, the leader refused or the term changed; TimeoutError after `timeoutMs`.
   */
  followerReadIndex(groupId: string, o: { mode: ReadMode; timeoutMs: number }): Promise<{ index: number; term: number }> {
    return this.requests.followerReadIndex(groupId, o);
  }

  /** This replica's current term (a follower checks a read index against it: {@link readIndex}). */
  termOf(groupId: string): number {
    return this.group(groupId).core.term;
  }

  /**
   * On a follower: a `leased` read with no message, through the read lease its leader granted
   * (src/raft/leases.ts). While the lease holds, resolves with the read index once it is applied here;
   * asks for the next lease when this one runs low. Undefined without a lease (one is asked for;
   * meanwhile ask the leader for a read index).
   */
  leaseRead(groupId: string, timeoutMs: number): Promise<number> | undefined {
    return this.requests.leaseRead(groupId, timeoutMs);
  }

  /** Resolves once this replica (leader or not) has applied `index`; rejects with TimeoutError after `timeoutMs`. */
  waitApplied(groupId: string, index: number, timeoutMs: number): Promise<void> {
    return this.requests.waitApplied(groupId, index, timeoutMs);
  }

  /** This replica's current role, term, leader and readiness (what onRoleChange last reported). */
  roleOf(groupId: string): RoleChange {
    return { ...this.group(groupId).role };
  }

  /** Calls `listener` on every change of role, term, leader or readiness; returns the unsubscribe function. */
  onRoleChange(groupId: string, listener: (ev: RoleChange) => void): () => void {
    const g = this.group(groupId);
    g.listeners.add(listener);
    return () => g.listeners.delete(listener);
  }

  /** On the leader: hands leadership to `to` (default: the most caught-up voter); resolves when this replica stops leading. */
  transferLeadership(groupId: string, to?: string): Promise<void> {
    return this.requests.transferLeadership(groupId, to);
  }

  /** On the leader: one membership change; resolves once it is committed and applied here. */
  changeMembership(groupId: string, change: { addLearner?: string; promote?: string; remove?: string }): Promise<void> {
    return this.requests.changeMembership(groupId, change);
  }

  // ------------------------------------------------------------------ status and counters (raft-host-status.ts)

  /** What status pages show of this node's replica of `groupId` (its role, log, members, reads, and its peers' progress and last contact); failed once the host stopped itself. */
  status(groupId: string): GroupStatus {
    return this.counters.status(this.group(groupId));
  }

  /**
   * Limits the bytes per second of snapshot chunks this node receives, shared by all its groups
   * (0 = unlimited, the default), by delaying each chunk's answer, which paces the sender. No wait
   * exceeds `snapshotStallMs / 2`: the limit is exact only above about the senders'
   * `snapshotChunkBytes / (snapshotStallMs / 2)` per stream (snapshot-rate.ts).
   */
  setSnapshotRate(bytesPerSec: number): void {
    this.snapshots.rate.setRate(bytesPerSec);
  }

  /** The snapshot this replica of `groupId` is receiving (bytes so far, the sender's estimate of the total, when it began), or null. */
  snapshotProgress(groupId: string): SnapshotProgress | null {
    return this.group(groupId).snapshotProgress();
  }

  /** Bytes of snapshot chunks this replica of `groupId` received since it was created on this host (streams that failed included). */
  snapshotBytesReceived(groupId: string): number {
    return this.group(groupId).snapshotBytesIn;
  }

  /** The group's Raft core, to read only (the simulation's checkers look at its log and role). */
  inspect(groupId: string): RaftNodeView {
    return this.group(groupId).core;
  }

  /** Snapshot streams since the host started: sent and received whole, failed (either side), and chunk bytes received over all groups (groups removed since included). */
  snapshotStats(): { sent: number; received: number; failed: number; bytesReceived: number } {
    return this.counters.snapshotStats();
  }

  /** Proposals the write gate refused since the host started, by the `limit` property of its error ('other' when it has none). */
  writesRefused(): [string, number][] {
    return this.counters.writesRefused();
  }

  /** The groups this node holds a replica of. */
  groupIds(): string[] {
    return [...this.groups.keys()];
  }

  /** Linearizable reads, since the host started ({@link ReadCounters}). */
  readCounters(): ReadCounters {
    return this.counters.readCounters();
  }

  /** Times this node's leaders went back to probing a follower (RaftStatus.probes), since the host started. */
  probes(): number {
    return this.counters.probes();
  }

  /** Transport counters (requests sent, messages carried, unreachable reports). */
  transportStats(): TransportStats {
    return this.counters.transportStats();
  }

  // ------------------------------------------------------------------ stopping

  /**
   * Fail-stop: the Raft log could not be flushed, so this node can no longer promise durability
   * (the core has already counted that turn's writes as handed out). Like etcd, it stops at once
   * — no more sends, applies or answers — and leaves recovery to a restart from what is on disk.
   */
  private failStop(err: unknown): void {
    if (this.stopped) return;
    this.fatal = `raft log flush failed: ${describeError(err)}`;
    this.log.error('raft host stopped: the raft log could not be flushed; restart the node to recover from disk', { error: describeError(err) });
    this.halt(new UnavailableError(`raft host of node ${this.nodeId} stopped: ${this.fatal}`));
    this.deps.onFatal?.(err instanceof Error ? err : new Error(String(err)));
  }

  /** Stops at once, writing nothing more: every waiting caller fails with `err`. */
  private halt(err: Error): void {
    this.stopped = true;
    this.loop.stopTicking();
    this.transport.stop();
    for (const g of this.groups.values()) {
      g.stopped = true;
      g.failAll(err);
    }
  }

  /** The simulation's crash: stops at once, writing and sending nothing more (what was not flushed is the store's to lose). */
  crash(): void {
    if (!this.stopped) this.halt(new UnavailableError(`node ${this.nodeId} crashed`));
  }

  /** Whether the host stopped itself; why, if it did. */
  failure(): string | null {
    return this.fatal;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.halt(new UnavailableError(`raft host of node ${this.nodeId} is stopping`));
    await this.turns.settled();
    for (const g of this.groups.values()) {
      if (g.unsavedHard) this.store.save(g.id, { hardState: g.unsavedHard, entries: [], snapshot: undefined, truncateFrom: undefined });
    }
    await this.store.flushed();
  }

  // ------------------------------------------------------------------ lookups and errors the parts share

  /** The group, for a request: refused once the host has stopped (or stopped itself). */
  private serving(groupId: string): GroupReplica {
    if (this.stopped) throw new UnavailableError(this.fatal ? `raft host of node ${this.nodeId} stopped: ${this.fatal}` : `raft host of node ${this.nodeId} is stopped`);
    return this.group(groupId);
  }

  private group(groupId: string): GroupReplica {
    const g = this.groups.get(groupId);
    if (!g) throw new NotFoundError(`group ${groupId} has no replica on node ${this.nodeId}`);
    return g;
  }

  private maxEntryBytes(): number {
    return this.transport.maxPayload - 16 * 1024;
  }

  private notLeader(g: GroupReplica, reason: string, leader: string | null): Error {
    if (reason === 'transferring') return new UnavailableError(`group ${g.id}: leadership is being transferred; retry`);
    return new NotLeaderError(`group ${g.id}: node ${this.nodeId} is not the leader${leader && leader !== this.nodeId ? `; the leader is ${leader}` : '; no leader is known'}`);
  }
}
