/**
 * The lifecycle of the groups a {@link RaftHost} holds: creating a replica (bootstrapping its
 * stored state, or reopening it), removing one, and starting one over for repair; and what the
 * stored state says of a group this node does not run. It adds and removes the host's replicas
 * in the map the host and its loop share; the API and its contracts are documented on RaftHost.
 */
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { InvalidArgumentError, UnavailableError } from '../runtime/errors.js';
import { bootstrapInit, emptyInit, RaftNode } from '../raft/raft-node.js';
import type { NodeId } from '../raft/types.js';
import type { RaftLogStore } from '../storage/raft-log-store.js';
import { GroupReplica } from './raft-group.js';
import type { HostLoop } from './raft-host-loop.js';
import type { CreateGroupOptions, RaftHostDeps, RaftHostOptions } from './raft-options.js';

const GROUP_ID = /^[A-Za-z0-9_.-]{1,200}$/;

/** What the lifecycle gets from its host (raft-host.ts). */
export interface LifecycleDeps {
  nodeId: string;
  opts: RaftHostOptions;
  /** The host's replicas, by id: this module adds and removes them. */
  groups: Map<string, GroupReplica>;
  store: RaftLogStore;
  clock: Clock;
  log: Logger;
  loop: HostLoop;
  /** The transport's largest message, in bytes (the cores' default message size is a quarter of it). */
  maxPayload: number;
  flow: RaftHostDeps['flow'];
  bugs: RaftHostDeps['bugs'];
  /** A replica leaves the host (removed, or reset for repair): its counters go to the host's totals. */
  retired(g: GroupReplica): void;
}

/** The lifecycle of one host's groups (documented on RaftHost's createGroup, removeGroup, votersOf and resetForRepair). */
export class GroupLifecycle {
  private readonly groups: Map<string, GroupReplica>;
  private readonly store: RaftLogStore;
  private seedSeq = 0;

  constructor(private readonly deps: LifecycleDeps) {
    this.groups = deps.groups;
    this.store = deps.store;
  }

  async create(groupId: string, o: CreateGroupOptions): Promise<void> {
    if (typeof groupId !== 'string' || !GROUP_ID.test(groupId)) {
      throw new InvalidArgumentError(`groupId ${JSON.stringify(groupId)} must be 1 to 200 of A-Z a-z 0-9 _ . -`);
    }
    if (this.groups.has(groupId)) return;
    if (!Array.isArray(o.voters) || o.voters.length === 0) throw new InvalidArgumentError('voters must list at least one node');
    const nodeId = this.deps.nodeId as NodeId;
    let state = this.store.load(groupId);
    if (!state) {
      const conf = { voters: o.voters.map((v) => v as NodeId), learners: (o.learners ?? []).map((v) => v as NodeId) };
      const member = conf.voters.includes(nodeId) || conf.learners.includes(nodeId);
      const init = o.join || !member ? emptyInit() : bootstrapInit(conf);
      this.store.init(groupId, init);
      await this.store.flushed();
      state = { hardState: init.hardState, snapshot: init.snapshot, entries: init.entries };
    }
    if (this.groups.has(groupId)) return;
    const { opts, flow, bugs, loop } = this.deps;
    const core = new RaftNode(
      {
        id: nodeId,
        seed: (opts.seed + ++this.seedSeq * 7919) >>> 0,
        electionTicks: opts.electionTicks,
        heartbeatTicks: opts.heartbeatTicks,
        quiesceAfterTicks: opts.quiesceAfterTicks,
        maxSizePerMsg: flow?.maxSizePerMsg ?? Math.floor(this.deps.maxPayload / 4),
        ...(flow?.maxInflightMsgs !== undefined ? { maxInflightMsgs: flow.maxInflightMsgs } : {}),
        ...(bugs ? { bugs } : {}),
      },
      { ...state, applied: o.stateMachine.appliedIndex },
    );
    const g = new GroupReplica(groupId, core, o.stateMachine, this.deps.clock, () => loop.markDirty(g), (m, f) => this.deps.log.warn(m, f));
    g.persistedHard = state.hardState;
    this.groups.set(groupId, g);
    loop.markDirty(g);
  }

  async remove(groupId: string): Promise<void> {
    this.detach(groupId, `group ${groupId} was removed from node ${this.deps.nodeId}`);
    this.store.removeGroup(groupId);
    await this.store.flushed();
  }

  votersOf(groupId: string): string[] | undefined {
    const g = this.groups.get(groupId);
    if (g) return [...g.core.status().conf.voters];
    const state = this.store.load(groupId);
    if (!state) return undefined;
    const core = new RaftNode({ id: this.deps.nodeId as NodeId }, { ...state, applied: 0 });
    return [...core.status().conf.voters];
  }

  async resetForRepair(groupId: string): Promise<void> {
    this.detach(groupId, `group ${groupId} on node ${this.deps.nodeId} is being rebuilt from its peers`);
    const state = this.store.load(groupId);
    this.store.removeGroup(groupId);
    if (state) {
      const init = emptyInit();
      this.store.init(groupId, { hardState: { ...init.hardState, term: state.hardState.term, vote: state.hardState.vote, repairing: true }, snapshot: init.snapshot, entries: [] });
    }
    await this.store.flushed();
  }

  /** Stops this node's running replica of `groupId`, if any: everything waiting on it fails with `why`. */
  private detach(groupId: string, why: string): void {
    const g = this.groups.get(groupId);
    if (!g) return;
    g.stopped = true;
    g.failAll(new UnavailableError(why));
    this.deps.retired(g);
    this.groups.delete(groupId);
    this.deps.loop.forget(g);
  }
}
