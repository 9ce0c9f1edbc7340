/**
 * The move executor (src/actors/coordinator/move-executor.ts) over scripted ports: what it does
 * when a move's target is lost. (The simulation drives it through whole moves: test/sim/sim-moves.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MoveStopped, runMove, type MovePorts } from '../../src/actors/coordinator/move-executor.js';
import type { MembershipChange, ShardStatus } from '../../src/actors/shard-protocol.js';
import type { MoveRecord } from '../../src/cluster/metadata.js';
import type { Logger } from '../../src/runtime/logger.js';

const noop = (): void => undefined;
const SILENT: Logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => SILENT };

function status(voters: string[], learners: string[]): ShardStatus {
  return {
    node: 'a', role: 'leader', term: 2, leader: 'a', commitIndex: 10, appliedIndex: 10, count: 0,
    progress: [...voters, ...learners].map((n) => ({ node: n, matchIndex: n === 'a' ? 10 : 0, lastContactMs: 0, role: voters.includes(n) ? 'voter' as const : 'learner' as const })),
    voters, learners, lastIndex: 10, snapshot: null,
    reads: { leaseHits: 0, others: 0, leases: 0, rounds: 0 }, followerReads: { reads: 0, requests: 0, leased: 0 },
    health: 'ok', damage: null,
  };
}

/** A shard a,b,c with learner d (the move's target, down for good); the first `failures` membership changes fail. */
function shard(next: string | null, failures: number) {
  let now = 0;
  let epoch = 1;
  const voters = ['a', 'b', 'c'];
  let learners = ['d'];
  const confs: string[] = [];
  const saved: MoveRecord[] = [];
  const ports: MovePorts = {
    now: () => now,
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
    epoch: () => epoch,
    leaderStatus: () => Promise.resolve(status(voters, learners)),
    replicaStatus: () => Promise.resolve(undefined),
    conf: (_uid, _shard, change: MembershipChange) => {
      confs.push(JSON.stringify(change));
      if (failures-- > 0) return Promise.reject(new Error('no leader'));
      if ('remove' in change) learners = learners.filter((n) => n !== change.remove);
      return Promise.resolve();
    },
    transfer: () => Promise.resolve(),
    collect: () => Promise.resolve({ removed: true, hosted: false }),
    isAlive: (n) => n !== 'd',
    save: (m) => {
      saved.push(structuredClone(m));
      // stop once the move starts over elsewhere: that is all this test looks at
      if (m.phase === 'prepare') epoch = 0;
      return Promise.resolve();
    },
    clearBootstrap: () => Promise.resolve(),
    commitPlacement: () => Promise.resolve(),
    retarget: () => next,
    log: SILENT,
  };
  return { ports, confs, saved, learners: () => learners };
}

const move = (): MoveRecord => ({
  id: 'm1', collection: 'c', uid: 'u', shard: 0, from: 'c', to: 'd', reason: 'rebalance', phase: 'copy',
  bytesCopied: 0, bytesTotal: null, startedAt: new Date(0).toISOString(), epoch: 1,
});

/** A move a -> d in `switch`: d votes already, a leads; d never takes leadership over (damaged, say). */
function switching() {
  let leader = 'a';
  let voters = ['a', 'b', 'c', 'd'];
  const transfers: (string | undefined)[] = [];
  const ports: MovePorts = {
    ...shard(null, 0).ports,
    // an executor that keeps asking d stops here instead of spinning
    epoch: () => (transfers.length > 4 ? 0 : 1),
    save: () => Promise.resolve(),
    isAlive: () => true,
    leaderStatus: () => Promise.resolve({ ...status(voters, []), node: leader, leader }),
    transfer: (_uid, _shard, to) => {
      transfers.push(to);
      if (to === 'd') return Promise.reject(new Error('leadership transfer to d did not complete'));
      leader = 'b';
      return Promise.resolve();
    },
    conf: (_uid, _shard, change: MembershipChange) => {
      if ('remove' in change) voters = voters.filter((n) => n !== change.remove);
      return Promise.resolve();
    },
  };
  return { ports, transfers, voters: () => voters };
}

describe('move executor', () => {
  it('move executor - when the new replica does not take over from the source, the next transfer lets the leader pick', async () => {
    const s = switching();
    const done = await runMove({ ...move(), from: 'a', phase: 'switch' }, s.ports);
    assert.equal(done.phase, 'cleanup');
    assert.deepEqual(s.transfers, ['d', undefined]);
    assert.deepEqual(s.voters(), ['b', 'c', 'd']);
  });

  it('move executor - a lost target\'s learner is taken out before the move starts over elsewhere, retried until that lands', async () => {
    const s = shard('e', 2);
    await assert.rejects(runMove(move(), s.ports), MoveStopped);
    assert.deepEqual(s.confs, Array(3).fill(JSON.stringify({ remove: 'd' })), 'the removal is retried until it lands');
    assert.deepEqual(s.learners(), []);
    const last = s.saved[s.saved.length - 1];
    assert.equal(last?.to, 'e');
    assert.equal(last?.phase, 'prepare');
    assert.deepEqual(last?.failedTargets, ['d']);
  });

  it('move executor - a move given up because no other target fits leaves no learner behind', async () => {
    const s = shard(null, 1);
    await assert.rejects(runMove(move(), s.ports), /no other node fits/);
    assert.deepEqual(s.learners(), [], 'the lost target is out of the configuration');
  });
});
