/**
 * A replica whose data was found damaged when it opened and that cannot be rebuilt (its shard has
 * no other voter: docs/operations.md, Corruption): no state machine and no Raft group, and nothing
 * deleted. Its resources answer `status` (health `failed`, and the damage) and refuse everything
 * else with UNAVAILABLE naming the file.
 */
import type { CollectionRecord } from '../../cluster/metadata.js';
import { parseFilter } from '../../index/mod.js';
import type { RoleChange } from '../../replication/raft-state-machine.js';
import { UnavailableError } from '../../runtime/errors.js';
import type { ReplicaDamage, ShardStatus } from '../shard-protocol.js';
import type { ReplicaResources } from './replica-actor.js';

export interface Broken {
  collection: string;
  shard: number;
  damage: ReplicaDamage;
  why: string;
}

/** Resources of a replica that cannot open: every request but status is refused. */
export function brokenResources(r: CollectionRecord, shard: number, self: string, b: Broken): ReplicaResources {
  const refuse = (): Error => new UnavailableError(`shard ${r.name}/${shard} on ${self} serves nothing: ${b.why} (${b.damage.problem})`);
  const fail = (): Promise<never> => Promise.reject(refuse());
  const role: RoleChange = { role: 'learner', term: 0, leader: null, ready: false };
  const status = (): Omit<ShardStatus, 'node' | 'count' | 'followerReads'> => ({
    role: 'learner', term: 0, leader: null, commitIndex: 0, appliedIndex: 0, lastIndex: 0, voters: [], learners: [], snapshot: null,
    reads: { leaseHits: 0, others: 0, leases: 0, rounds: 0 }, progress: [], health: 'failed', damage: b.damage,
  });
  return {
    store: {
      appliedIndex: 0,
      servingEpoch: null,
      reshard: null,
      count: () => 0,
      pull: () => {
        throw refuse();
      },
      search: fail,
      get: fail,
    },
    group: {
      propose: fail,
      readBarrier: fail,
      readIndex: fail,
      followerReadIndex: fail,
      term: () => 0,
      waitApplied: fail,
      leaseRead: () => undefined,
      onRoleChange: (listener) => {
        listener(role);
        return () => undefined;
      },
      status,
      health: () => ({ health: 'failed', why: `${b.why}: ${b.damage.problem}` }),
      transferLeadership: fail,
      changeMembership: fail,
    },
    parseFilter: (f) => parseFilter(f),
    close: () => Promise.resolve(),
  };
}
