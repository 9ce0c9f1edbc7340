/**
 * How the Raft core catches up a member that has none of the log (§7, and diss. §4.2.1 on
 * catching up new servers): past `newPeerSnapshotAfter` applied entries it is sent a snapshot of
 * the leader's state machine at its applied index, never the log from index 1.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyInit } from '../../src/raft/raft-node.js';
import type { Message } from '../../src/raft/types.js';
import { id, RaftNet } from '../helpers/raft-net.js';

const NO_STICKY = { checkQuorum: false };

/** Three voters a, b, c with `writes` entries applied, and an empty d added as a learner. */
function withLearner(writes: number, cfg: { newPeerSnapshotAfter?: number } = {}): RaftNet {
  const net = new RaftNet(['a', 'b', 'c'], { ...NO_STICKY, ...cfg });
  net.elect('a');
  for (let i = 0; i < writes; i++) net.propose('a', `w${i}`);
  net.add('d', emptyInit());
  assert.ok(net.core('a').proposeConfChange({ type: 'addLearner', node: id('d') }).ok);
  net.deliverAll();
  net.tick('a', 2);
  net.deliverAll();
  return net;
}

const toD = (net: RaftNet): Message[] => net.trace.filter((m) => m.to === 'd');

describe('raft new member', () => {
  it('raft §7 new member - a learner with an empty log is sent a snapshot at the leader\'s applied index, not the log from index 1', () => {
    const net = withLearner(20);
    const a = net.core('a');
    const d = net.core('d');
    const snaps = toD(net).filter((m) => m.type === 'snap');
    assert.equal(snaps.length, 1, 'one snapshot');
    const snap = snaps[0] as Extract<Message, { type: 'snap' }>;
    // The snapshot covers every write (22 entries at least: the configuration, the no-op, 20 writes).
    assert.ok(snap.snapshot.index >= 22, `snapshot at ${snap.snapshot.index}`);
    assert.equal(snap.snapshot.term, a.log.termAt(snap.snapshot.index));
    const fromStart = toD(net).filter((m) => m.type === 'app' && m.prevIndex === 0 && m.entries.length > 0);
    assert.deepEqual(fromStart, [], 'no append carried the log from index 1');
    // d starts its log at the snapshot point and takes only what follows by appends.
    assert.equal(d.log.snapIndex, snap.snapshot.index);
    assert.equal(d.log.committed, a.log.committed);
    assert.equal(d.log.lastIndex(), a.log.lastIndex());
    assert.ok(net.node('d').applied.every((e) => e.index > snap.snapshot.index), 'd applied no entry the snapshot covers');
    // It goes on replicating normally.
    net.propose('a', 'after');
    net.tick('a', 2);
    net.deliverAll();
    assert.equal(d.log.committed, a.log.committed);
    assert.deepEqual(net.appliedData('d'), ['after']);
    const pd = a.status().progress.find((p) => p.node === 'd');
    assert.equal(pd?.state, 'replicate');
  });

  it('raft §7 new member - with no more applied than newPeerSnapshotAfter entries, the learner gets the log', () => {
    const net = withLearner(3, { newPeerSnapshotAfter: 100 });
    assert.equal(toD(net).filter((m) => m.type === 'snap').length, 0, 'no snapshot');
    assert.ok(toD(net).some((m) => m.type === 'app' && m.prevIndex === 0 && m.entries.length > 0), 'the log from index 1');
    assert.deepEqual(net.appliedData('d'), ['w0', 'w1', 'w2']);
    assert.equal(net.core('d').log.snapIndex, 0);
  });

  it('raft §7 new member - a follower that holds part of the log gets the entries it lacks, never a snapshot', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    net.isolate('c');
    for (let i = 0; i < 20; i++) net.propose('a', `w${i}`);
    net.heal();
    net.tick('a', 2);
    net.deliverAll();
    assert.equal(net.trace.filter((m) => m.type === 'snap').length, 0);
    assert.equal(net.core('c').log.committed, net.core('a').log.committed);
    assert.equal(net.appliedData('c').length, 20);
  });

  it('raft §7 new member - a failed snapshot stream is retried as a snapshot', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    for (let i = 0; i < 5; i++) net.propose('a', `w${i}`);
    net.add('d', emptyInit());
    let dropped = 0;
    net.dropIf = (m) => m.type === 'snap' && m.to === 'd' && dropped++ === 0;
    const a = net.core('a');
    assert.ok(a.proposeConfChange({ type: 'addLearner', node: id('d') }).ok);
    net.deliverAll();
    assert.equal(a.status().progress.find((p) => p.node === 'd')?.state, 'snapshot');
    a.reportSnapshot(id('d'), false);
    net.tick('a', 2);
    net.deliverAll();
    assert.equal(net.trace.filter((m) => m.type === 'snap' && m.to === 'd').length, 1, 'the second snapshot arrived');
    assert.equal(net.core('d').log.committed, a.log.committed);
    assert.equal(net.trace.filter((m) => m.to === 'd' && m.type === 'app' && m.prevIndex === 0 && m.entries.length > 0).length, 0);
  });
});

describe('raft blank replicas', () => {
  it('raft blank - a replica with a blank log votes for no one (it may be a node that held the group before, deleted its data and rejoined under the same id)', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.add('d', emptyInit());
    const d = net.core('d');
    for (const type of ['vote', 'preVote'] as const) {
      d.step({ type, from: id('a'), to: id('d'), term: 5 as never, lastIndex: 0 as never, lastTerm: 0 as never } as Message);
    }
    const answers = d.ready().messages.filter((m) => m.type === 'voteResp' || m.type === 'preVoteResp');
    assert.equal(answers.length, 2);
    assert.ok(answers.every((m) => (m as { reject: boolean }).reject), 'both refused');
  });

  it('raft blank - a learner that has nothing of the log yet is not promoted (no voter starts blank); once caught up, it is', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    const a = net.core('a');
    assert.ok(a.proposeConfChange({ type: 'addLearner', node: id('d') }).ok);
    // the change commits among a, b, c while d is not there to hear anything
    net.deliverAll();
    const early = a.proposeConfChange({ type: 'promote', node: id('d') });
    assert.equal(early.ok, false);
    assert.match((early as { detail?: string }).detail ?? '', /nothing of the log/);
    net.add('d', emptyInit());
    net.tick('a', 2);
    net.deliverAll();
    net.tick('a', 2);
    net.deliverAll();
    assert.ok(a.proposeConfChange({ type: 'promote', node: id('d') }).ok, 'promoted once it holds the log');
  });
});
