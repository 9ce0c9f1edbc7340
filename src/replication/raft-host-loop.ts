/**
 * The loop of a {@link RaftHost}: what drives its groups' cores between requests. It steps the
 * messages and snapshot chunks the transport delivers into the cores, ticks them from the clock
 * (and catches up on ticks the clock owes before a message or a read uses them), marks the
 * groups that have something to do dirty, and runs one turn over them ({@link TurnPipeline},
 * raft-turns.ts) once the current turn of the event loop is done. Idle groups quiesce; the loop
 * keeps one liveness ping per peer node instead (raft-liveness.ts), and wakes a quiesced
 * follower whose leader's node has been silent for an election timeout.
 */
import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { describeError } from '../runtime/errors.js';
import type { Message, NodeId } from '../raft/types.js';
import type { GroupReplica } from './raft-group.js';
import type { PeerLiveness } from './raft-liveness.js';
import type { SnapshotStreams } from './raft-snapshots.js';
import type { RaftHostOptions, WriteGate } from './raft-options.js';
import type { RaftTransport, SnapshotChunk } from './raft-transport.js';
import type { TurnPipeline } from './raft-turns.js';
import { TickCount } from './tick-count.js';
import { outsideTraces, tracingEnabled } from '../runtime/tracing.js';
import { parseRaftTraceHeader, type HostTraces } from './raft-trace.js';

/** What the loop gets from its host (raft-host.ts). */
export interface LoopDeps {
  nodeId: string;
  opts: RaftHostOptions;
  /** The host's groups, by id (the host adds and removes them). */
  groups: ReadonlyMap<string, GroupReplica>;
  clock: Clock;
  log: Logger;
  transport: RaftTransport;
  snapshots: SnapshotStreams;
  liveness: PeerLiveness;
  turns: TurnPipeline;
  /** Traced work waiting for the next turn (raft-trace.ts). */
  traces: HostTraces;
  /** Runs `fn` once the current turn of the event loop is done (setImmediate in a node). */
  defer(fn: () => void): void;
  /** Whether the host has stopped (or stopped itself): then nothing more is ticked, run or sent. */
  stopped(): boolean;
  writeGate: WriteGate | undefined;
  /** Hands leadership of `groupId` to `to` (RaftHost.transferLeadership). */
  transfer(groupId: string, to: string): Promise<void>;
}

/** The loop of one host: its dirty groups, its ticker and the ticks it owes, and its turn scheduling. */
export class HostLoop {
  private readonly dirty = new Set<GroupReplica>();
  private readonly groups: ReadonlyMap<string, GroupReplica>;
  private readonly clock: Clock;
  private readonly transport: RaftTransport;
  private readonly liveness: PeerLiveness;
  private readonly traces: HostTraces;
  private turnScheduled = false;
  private ticker: Timer | undefined;
  /** The cores' ticks, counted from the clock (tick-count.ts). */
  private readonly ticksOwed: TickCount;
  private ticks = 0;
  /** A turn, run outside any request's trace (it serves many). */
  private readonly runTurn = (): void => this.turn();

  constructor(private readonly deps: LoopDeps) {
    this.groups = deps.groups;
    this.clock = deps.clock;
    this.transport = deps.transport;
    this.liveness = deps.liveness;
    this.traces = deps.traces;
    this.ticksOwed = new TickCount(deps.opts.tickMs, 2 * deps.opts.electionTicks + 2, deps.clock.now());
  }

  /** Receives from the transport and starts ticking. */
  start(): void {
    const opts = this.deps.opts;
    this.transport.start({
      onBatch: (from, msgs, traces) => this.onBatch(from, msgs, traces),
      onChunk: (chunk) => this.onChunk(chunk),
      onUnreachable: (peer, groups) => {
        for (const g of groups) this.groups.get(g)?.core.reportUnreachable(peer as NodeId);
      },
    });
    if (opts.publishAnswers) this.transport.publishAnswers();
    if (opts.readPipeline) this.transport.pipelineReads(opts.heartbeatTicks * opts.tickMs, () => this.flushReleased());
    this.scheduleTick();
  }

  /** Stops ticking (the host is stopping). */
  stopTicking(): void {
    this.ticker?.cancel();
  }

  /** `g` has something to do: a turn runs over it once this turn of the event loop is done. */
  markDirty(g: GroupReplica): void {
    if (g.stopped) return;
    this.dirty.add(g);
    if (!this.turnScheduled && !this.deps.stopped()) {
      this.turnScheduled = true;
      this.deps.defer(outsideTraces(this.runTurn));
    }
  }

  /** `g` was removed from the host: no turn runs over it. */
  forget(g: GroupReplica): void {
    this.dirty.delete(g);
  }

  private scheduleTick(): void {
    this.ticker = this.clock.setTimer(() => {
      if (this.deps.stopped()) return;
      this.tick(true);
      this.scheduleTick();
    }, this.deps.opts.tickMs);
  }

  /**
   * Every tick: tick the groups that are not quiescent, wake followers whose leader's node has
   * been silent for an election timeout, and ping peer nodes that got nothing for a heartbeat
   * interval. A quiescent group costs two field reads here and nothing else.
   */
  private tick(fromTimer: boolean): void {
    const opts = this.deps.opts;
    const now = this.clock.now();
    const n = this.ticksOwed.take(now);
    if (n === 0) return;
    if (fromTimer && ++this.ticks % opts.electionTicks === 0 && this.deps.writeGate?.()) this.handOverLeaderships();
    const silent = this.liveness.tick(this.groups.values(), now, opts.electionTicks * opts.tickMs);
    for (const g of this.groups.values()) {
      const core = g.core;
      if (silent && core.lead !== null && silent.has(core.lead)) core.leaderNodeDown(core.lead);
      if (core.quiesced) continue;
      for (let i = 0; i < n && !core.quiesced; i++) core.tick();
      g.checkAll();
      this.markDirty(g);
    }
    this.transport.ping(this.liveness.peers(), now, opts.heartbeatTicks * opts.tickMs);
    // Frames waiting for an answer that was lost leave once the pipeline's bound has passed.
    if (this.transport.holding()) this.transport.flush(now);
  }

  /** A peer's answers released frames that waited for them and no turn follows: they leave once this event-loop turn is done. */
  private flushReleased(): void {
    this.deps.defer(() => {
      if (!this.deps.stopped()) this.transport.flush(this.clock.now());
    });
  }

  /**
   * Runs the ticks the clock owes when the cores' count is behind it (tick-count.ts): called
   * before a message is stepped and before a read uses a lease. A leader that was paused past its
   * lease must not serve a leased read, nor grant a follower a lease, on the strength of ticks
   * that never ran; the messages and reads waiting for it when it resumes are handled before its
   * late timer fires.
   */
  catchUp(): void {
    if (!this.deps.stopped() && this.ticksOwed.behind(this.clock.now())) this.tick(false);
  }

  /**
   * While this node takes no writes (writeGate), each group it leads is handed to a caught-up
   * voter, if it has one, so that the group takes writes again elsewhere. Tried once an election
   * timeout until it works or the gate opens.
   */
  private handOverLeaderships(): void {
    for (const g of this.groups.values()) {
      if (g.core.role !== 'leader' || g.stopped) continue;
      const to = g.core.bestTransferee();
      if (!to || to === this.deps.nodeId) continue;
      this.deps.transfer(g.id, to).catch(() => undefined);
    }
  }

  private onBatch(from: string, msgs: [string, Message][], traces?: string): boolean {
    this.catchUp();
    this.liveness.heardFrom(from, this.clock.now());
    // A node that must take no writes acknowledges no appends: it could not persist them.
    const gated = this.deps.writeGate?.() !== undefined;
    const traced = traces !== undefined && tracingEnabled() ? parseRaftTraceHeader(traces) : undefined;
    for (const [groupId, m] of msgs) {
      const g = this.groups.get(groupId);
      if (!g || typeof m !== 'object' || m === null) continue;
      // While a snapshot is being restored, the log waits for it; heartbeats still count.
      if ((g.restoring || gated) && (m.type === 'app' || m.type === 'snap')) continue;
      const entryTraces = traced?.get(groupId);
      if (entryTraces && m.type === 'app' && Array.isArray(m.entries)) this.traces.appended(g.traces, m, entryTraces, from);
      try {
        g.core.step(m);
      } catch (err) {
        this.deps.log.warn('raft message dropped', { group: groupId, from, type: String(m.type), error: describeError(err) });
      }
      this.markDirty(g);
    }
    return this.turnScheduled;
  }

  private onChunk(chunk: SnapshotChunk): Promise<boolean> {
    this.liveness.heardFrom(chunk.from, this.clock.now());
    const g = this.groups.get(chunk.group);
    if (!g || this.deps.writeGate?.() !== undefined) return Promise.resolve(false);
    return this.deps.snapshots.receive(g, chunk, () => this.markDirty(g));
  }

  /** One turn: collect every dirty group's Ready, queue all writes, then act after the flush. */
  private turn(): void {
    this.turnScheduled = false;
    if (this.deps.stopped()) return;
    this.deps.turns.run(this.dirty);
  }
}
