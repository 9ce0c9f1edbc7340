/**
 * The requests a {@link RaftHost} takes for its groups: proposals, linearizable reads (on the
 * leader, on a follower through its leader or its lease: raft-reads.ts), waits for an index to
 * be applied, leadership transfers and membership changes. Each checks its arguments, steps the
 * request into the group's core, marks the group dirty (its turn sends and persists what the
 * request needs) and returns the promise its waiter settles (raft-waiters.ts). The API and its
 * contracts are documented on RaftHost; what a request throws synchronously (bad input, unknown
 * group, a stopped host) comes back as a rejection.
 */
import { InvalidArgumentError, UnavailableError } from '../runtime/errors.js';
import type { ConfChange } from '../raft/membership.js';
import type { NodeId } from '../raft/types.js';
import type { GroupReplica } from './raft-group.js';
import type { HostLoop } from './raft-host-loop.js';
import type { HostCounters } from './raft-host-status.js';
import type { RaftHostOptions, WriteGate } from './raft-options.js';
import { askLeaderRead, requestRead, waitApplied, type ReadDeps, type ReadMode } from './raft-reads.js';
import type { WriteConcern } from './raft-state-machine.js';
import { activeTrace, endSpan } from '../runtime/tracing.js';
import type { HostTraces } from './raft-trace.js';

/** A follower asks for its next read lease once this many ticks or fewer are left of the one it holds. */
const LEASE_RENEW_TICKS = 2;

/** What the requests get from their host (raft-host.ts). */
export interface RequestDeps {
  nodeId: string;
  opts: RaftHostOptions;
  loop: HostLoop;
  counters: HostCounters;
  traces: HostTraces;
  writeGate: WriteGate | undefined;
  /** The largest entry a proposal may carry, in bytes. */
  maxEntryBytes(): number;
  /** The group, for a request: throws once the host has stopped (or stopped itself), or when it has no such group. */
  serving(groupId: string): GroupReplica;
  notLeader(g: GroupReplica, reason: string, leader: string | null): Error;
}

/** The requests of one host (each documented on RaftHost's method of the same name). */
export class HostRequests {
  private readonly loop: HostLoop;
  private readonly readDeps: ReadDeps;
  private readSeq = 0;

  constructor(private readonly deps: RequestDeps) {
    const loop = (this.loop = deps.loop);
    this.readDeps = {
      nextId: () => ++this.readSeq,
      markDirty: (g) => loop.markDirty(g),
      notLeader: (g, reason, leader) => deps.notLeader(g, reason, leader),
    };
  }

  propose(groupId: string, data: Uint8Array, o: { concern: WriteConcern; timeoutMs: number }): Promise<{ index: number; result: unknown }> {
    return settle(() => this.proposeNow(groupId, data, o));
  }

  private proposeNow(groupId: string, data: Uint8Array, o: { concern: WriteConcern; timeoutMs: number }): Promise<{ index: number; result: unknown }> {
    const g = this.deps.serving(groupId);
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('data must be a Uint8Array');
    const max = this.deps.maxEntryBytes();
    if (data.length > max) throw new InvalidArgumentError(`data is ${data.length} bytes; the limit is ${max} bytes (the NATS server's max payload less framing)`);
    checkTimeout(o.timeoutMs);
    if (o.concern !== 'majority' && o.concern !== 'all' && o.concern !== 'leader') throw new InvalidArgumentError(`concern must be 'majority', 'all' or 'leader', got ${String(o.concern)}`);
    if (g.failed) return Promise.reject(new UnavailableError(`group ${groupId}: ${g.failed}`));
    const refused = this.deps.writeGate?.();
    if (refused) {
      this.deps.counters.refused(refused);
      return Promise.reject(refused);
    }
    const res = g.core.propose([data]);
    if (!res.ok) return Promise.reject(this.deps.notLeader(g, res.reason, res.leader));
    this.loop.markDirty(g);
    const done = g.waiters.proposal(res.index, res.term, o.concern, o.timeoutMs);
    const parent = activeTrace();
    if (parent !== undefined) {
      const span = this.deps.traces.proposed(parent, g.traces, res.index, res.term);
      span.setAttribute('shoal.raft.write_concern', o.concern);
      done.then(
        () => endSpan(span),
        (err: unknown) => endSpan(span, err),
      );
    }
    return done;
  }

  readBarrier(groupId: string, o: { mode: ReadMode; timeoutMs: number }): Promise<void> {
    return settle(() => {
      checkTimeout(o.timeoutMs);
      this.loop.catchUp();
      return requestRead(this.deps.serving(groupId), o, false, this.readDeps).then(() => undefined);
    });
  }

  readIndex(groupId: string, o: { mode: ReadMode; timeoutMs: number; forPeer?: string }): Promise<{ index: number; term: number }> {
    return settle(() => {
      checkTimeout(o.timeoutMs);
      this.loop.catchUp();
      const g = this.deps.serving(groupId);
      // The term the index is taken in: a follower serving the read checks it is still in it (RaftNode.readIndex).
      const term = g.core.term;
      return requestRead(g, o, true, this.readDeps).then((index) => ({ index, term }));
    });
  }

  followerReadIndex(groupId: string, o: { mode: ReadMode; timeoutMs: number }): Promise<{ index: number; term: number }> {
    return settle(() => {
      checkTimeout(o.timeoutMs);
      this.loop.catchUp();
      const g = this.deps.serving(groupId);
      const term = g.core.term;
      return askLeaderRead(g, o, this.readDeps).then((index) => ({ index, term }));
    });
  }

  leaseRead(groupId: string, timeoutMs: number): Promise<number> | undefined {
    checkTimeout(timeoutMs);
    this.loop.catchUp();
    const g = this.deps.serving(groupId);
    const lease = g.core.followerLease();
    if (lease === undefined || lease.ticksLeft <= LEASE_RENEW_TICKS) {
      g.core.requestLease();
      this.loop.markDirty(g);
    }
    if (lease === undefined) return undefined;
    return waitApplied(g, lease.index, timeoutMs, this.readDeps).then(() => lease.index);
  }

  waitApplied(groupId: string, index: number, timeoutMs: number): Promise<void> {
    return settle(() => {
      checkTimeout(timeoutMs);
      return waitApplied(this.deps.serving(groupId), index, timeoutMs, this.readDeps);
    });
  }

  transferLeadership(groupId: string, to?: string): Promise<void> {
    return settle(() => this.transferNow(groupId, to));
  }

  /** {@link transferLeadership}, throwing what it would reject with synchronously (the loop's hand-over catches it). */
  transferNow(groupId: string, to?: string): Promise<void> {
    const g = this.deps.serving(groupId);
    if (g.core.role !== 'leader') return Promise.reject(this.deps.notLeader(g, 'notLeader', g.core.lead));
    const target = to ?? g.core.bestTransferee() ?? undefined;
    if (!target) return Promise.reject(new UnavailableError(`group ${groupId} has no other voter to hand leadership to`));
    if (target === this.deps.nodeId) return Promise.resolve();
    const res = g.core.transferLeadership(target as NodeId);
    if (!res.ok) return Promise.reject(res.reason === 'invalid' ? new InvalidArgumentError(`transfer to ${target}: ${res.detail ?? res.reason}`) : this.deps.notLeader(g, res.reason, res.leader));
    this.loop.markDirty(g);
    const ms = this.deps.opts.electionTicks * this.deps.opts.tickMs * 4;
    return g.waiters.transfer(ms, `leadership transfer of group ${groupId} to ${target}`);
  }

  changeMembership(groupId: string, change: { addLearner?: string; promote?: string; remove?: string }): Promise<void> {
    return settle(() => this.changeMembershipNow(groupId, change));
  }

  private changeMembershipNow(groupId: string, change: { addLearner?: string; promote?: string; remove?: string }): Promise<void> {
    const g = this.deps.serving(groupId);
    const keys = (['addLearner', 'promote', 'remove'] as const).filter((k) => change[k] !== undefined);
    if (keys.length !== 1) throw new InvalidArgumentError('change must name exactly one of addLearner, promote, remove');
    const type = keys[0] as 'addLearner' | 'promote' | 'remove';
    const node = change[type] as string;
    const cc: ConfChange = { type, node: node as NodeId };
    const res = g.core.proposeConfChange(cc);
    if (!res.ok) {
      if (res.reason === 'invalid') return Promise.reject(new InvalidArgumentError(`membership change of group ${groupId}: ${res.detail ?? ''}`));
      if (res.reason === 'confPending') return Promise.reject(new UnavailableError(`group ${groupId}: ${res.detail ?? 'a change is pending'}; retry`));
      return Promise.reject(this.deps.notLeader(g, res.reason, res.leader));
    }
    this.loop.markDirty(g);
    return g.waiters.conf(res.index, this.deps.opts.electionTicks * this.deps.opts.tickMs * 20);
  }
}

/** Runs `f`, turning a synchronous throw (bad input, unknown group) into a rejection. */
function settle<T>(f: () => Promise<T>): Promise<T> {
  try {
    return f();
  } catch (err) {
    return Promise.reject(err);
  }
}

function checkTimeout(ms: unknown): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) throw new InvalidArgumentError(`timeoutMs must be a positive number of milliseconds, got ${String(ms)}`);
}
