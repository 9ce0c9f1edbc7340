/**
 * Membership changes, one server at a time (Raft dissertation §4.1), taking effect when the
 * `config` entry commits (as etcd's). A leader proposes one only after its first entry of the
 * term has committed and while no other change is uncommitted, so every committed configuration
 * differs from the one before by one server and any two majorities of consecutive ones overlap.
 */
import type { ConfState, NodeId } from './types.js';

export type ConfChange =
  | { readonly type: 'addLearner'; readonly node: NodeId }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };

/** The configuration after `change`, or why it cannot be made. */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState | string {
  const isVoter = conf.voters.includes(change.node);
  const isLearner = conf.learners.includes(change.node);
  switch (change.type) {
    case 'addLearner':
      if (isVoter || isLearner) return `${change.node} is already a member`;
      return { voters: conf.voters, learners: [...conf.learners, change.node] };
    case 'promote':
      if (!isLearner) return `${change.node} is not a learner`;
      return { voters: [...conf.voters, change.node], learners: conf.learners.filter((n) => n !== change.node) };
    case 'remove':
      if (!isVoter && !isLearner) return `${change.node} is not a member`;
      if (isVoter && conf.voters.length === 1) return `cannot remove ${change.node}: it is the last voter`;
      return { voters: conf.voters.filter((n) => n !== change.node), learners: conf.learners.filter((n) => n !== change.node) };
    default: {
      const never: never = change;
      return `unknown change ${String(never)}`;
    }
  }
}

/** Votes needed among `voters`. */
export function quorum(voters: readonly NodeId[]): number {
  return Math.floor(voters.length / 2) + 1;
}

/** The largest value that a quorum of voters has reached (the commit rule's "majority match"). */
export function quorumValue(voters: readonly NodeId[], valueOf: (n: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return 0;
  // Called on every acknowledgement a leader steps: sorted in place in a scratch array
  // (insertion sort, descending; groups have a handful of voters), nothing allocated.
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, 2 * scratch.length));
  for (let i = 0; i < n; i++) {
    const v = valueOf(voters[i] as NodeId);
    let j = i;
    while (j > 0 && (scratch[j - 1] as number) < v) {
      scratch[j] = scratch[j - 1] as number;
      j--;
    }
    scratch[j] = v;
  }
  return scratch[quorum(voters) - 1] as number;
}

let scratch = new Float64Array(16);
