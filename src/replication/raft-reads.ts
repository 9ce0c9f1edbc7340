/**
 * Reads through a group's replica on this node (Raft §8, diss. §6.4). On the leader, a read asks
 * the core for a read index — confirmed by a quorum round (`strong`) or by the lease (`leased`) —
 * and is served once that index is applied here. A follower serves a linearizable read too: it
 * asks the leader for a confirmed read index ({@link requestRead} with `confirmOnly` there), then
 * waits until it has applied that index itself ({@link waitApplied}). Everything committed
 * before the read began is at or below the index, and a replica applies only committed entries,
 * so what the follower then reads is at least as new as the read and never uncommitted.
 */
import type { NodeId } from '../raft/types.js';
import { InvalidArgumentError } from '../runtime/errors.js';
import type { GroupReplica } from './raft-group.js';

export type ReadMode = 'strong' | 'leased';

export interface ReadDeps {
  nextId(): number;
  markDirty(g: GroupReplica): void;
  notLeader(g: GroupReplica, reason: string, leader: string | null): Error;
}

/**
 * On the leader: a read index confirmed per `mode`. Resolves with it once it is applied here, or
 * as soon as it is confirmed when `confirmOnly` (a follower's read asked for it).
 */
export function requestRead(g: GroupReplica, o: { mode: ReadMode; timeoutMs: number; forPeer?: string }, confirmOnly: boolean, deps: ReadDeps): Promise<number> {
  if (o.mode !== 'strong' && o.mode !== 'leased') throw new InvalidArgumentError(`mode must be 'strong' or 'leased', got ${String(o.mode)}`);
  if (g.core.role !== 'leader') return Promise.reject(deps.notLeader(g, 'notLeader', g.core.lead));
  // Inside the lease a read needs no turn of the host: the index is known now. (A follower's
  // read goes through the core, which tells that follower the commit index if it lags.)
  const leaseIndex = o.mode === 'leased' && o.forPeer === undefined ? g.core.leasedReadIndex() : undefined;
  if (leaseIndex !== undefined) g.readStats.leaseHits++;
  else g.readStats.others++;
  if (leaseIndex !== undefined) return confirmOnly ? Promise.resolve(leaseIndex) : waitApplied(g, leaseIndex, o.timeoutMs, deps).then(() => leaseIndex);
  const id = deps.nextId();
  const p = g.waiters.read(id, confirmOnly, o.timeoutMs);
  g.core.readIndex(id, o.mode === 'leased', o.forPeer as NodeId | undefined);
  deps.markDirty(g);
  return p;
}

/**
 * On a follower: the leader's confirmed read index, asked for through the Raft transport (the
 * core's `readReq`, RaftNode.askLeaderReadIndex). The reads of every group of this node that wait
 * for an index from one peer node go to it in one frame per turn, and its answers ride back on
 * the reply. The index is not yet applied here: the caller waits for that ({@link waitApplied}).
 */
export function askLeaderRead(g: GroupReplica, o: { mode: ReadMode; timeoutMs: number }, deps: ReadDeps): Promise<number> {
  if (o.mode !== 'strong' && o.mode !== 'leased') throw new InvalidArgumentError(`mode must be 'strong' or 'leased', got ${String(o.mode)}`);
  if (g.core.role !== 'follower' || g.core.lead === null) return Promise.reject(deps.notLeader(g, 'notLeader', g.core.lead));
  const id = deps.nextId();
  const p = g.waiters.read(id, true, o.timeoutMs);
  g.core.askLeaderReadIndex(id, o.mode === 'leased');
  deps.markDirty(g);
  return p;
}

/** Resolves once this replica has applied `index` (at once if it has). */
export function waitApplied(g: GroupReplica, index: number, timeoutMs: number, deps: ReadDeps): Promise<void> {
  if (!Number.isSafeInteger(index) || index < 0) throw new InvalidArgumentError(`index must be a non-negative integer, got ${String(index)}`);
  if (g.sm.appliedIndex >= index) return Promise.resolve();
  return g.waiters.applyWait(deps.nextId(), index, timeoutMs, () => g.sm.appliedIndex);
}
