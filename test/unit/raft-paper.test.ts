/**
 * One test per claim of the Raft paper ("In Search of an Understandable Consensus Algorithm
 * (Extended Version)", Ongaro and Ousterhout, 2014), each citing its section; "diss." cites
 * Ongaro's dissertation (2014) for pre-vote, leader stickiness, check-quorum, leases,
 * leadership transfer and single-server membership changes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeEntry } from '../../src/raft/entry.js';
import type { Entry, LogIndex, Message, Term } from '../../src/raft/types.js';
import { bytes, id, RaftNet } from '../helpers/raft-net.js';

const NO_STICKY = { checkQuorum: false };

/** Ticks every node, delivering as it goes, until one leads; returns it. */
function electSomeone(net: RaftNet): string {
  for (let i = 0; i < 200; i++) {
    net.tickAll();
    net.deliverAll();
    const l = [...net.nodes.entries()].find(([, n]) => n.core.role === 'leader');
    if (l && l[1].core.isReadyLeader()) return l[0];
  }
  throw new Error('no leader elected');
}

function types(ms: readonly Message[]): string[] {
  return ms.map((m) => `${m.from}->${m.to}:${m.type}`);
}

describe('raft paper §5.1 basics', () => {
  it('raft §5.1 - servers start as followers', () => {
    const net = new RaftNet(['a', 'b', 'c']);
    for (const n of ['a', 'b', 'c']) assert.equal(net.core(n).role, 'follower');
  });

  it('raft §5.1 - a server that sees a larger term adopts it, and a leader that does reverts to follower', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    const a = net.core('a');
    assert.equal(a.role, 'leader');
    a.step({ type: 'app', from: id('b'), to: id('a'), term: (a.term + 5) as Term, prevIndex: 0 as LogIndex, prevTerm: 0 as Term, entries: [], commit: 0 as LogIndex });
    assert.equal(a.role, 'follower');
    assert.equal(a.term, 7);
  });

  it('raft §5.1 - a request with a stale term is rejected', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    const b = net.core('b');
    const before = b.log.lastIndex();
    b.step({ type: 'app', from: id('c'), to: id('b'), term: 1 as Term, prevIndex: before as LogIndex, prevTerm: b.log.lastTerm() as Term, entries: [makeEntry((before + 1) as LogIndex, 1 as Term, 'normal', bytes('stale'))], commit: 0 as LogIndex });
    const rd = b.ready();
    assert.equal(b.log.lastIndex(), before, 'the stale append added nothing');
    const resp = rd.messages.find((m) => m.type === 'appResp');
    assert.ok(resp && resp.type === 'appResp' && resp.reject && resp.term === b.term, 'the stale sender is told the current term');
  });
});

describe('raft paper §5.2 leader election', () => {
  it('raft §5.2 - a follower that hears nothing for an election timeout campaigns: new term, votes for itself, asks every voter', () => {
    const net = new RaftNet(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    const a = net.core('a');
    for (let i = 0; i < 2 * a.cfg.electionTicks && a.role === 'follower'; i++) a.tick();
    assert.equal(a.role, 'candidate');
    assert.equal(a.term, 2);
    assert.equal(a.vote, 'a');
    assert.deepEqual(types(a.ready().messages).sort(), ['a->b:vote', 'a->c:vote']);
  });

  it('raft §5.2 - election timeouts are randomized in [timeout, 2 × timeout)', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const net = new RaftNet(['a', 'b', 'c'], { preVote: false, checkQuorum: false, seed });
      const a = net.core('a');
      let t = 0;
      while (a.role === 'follower') {
        a.tick();
        t++;
      }
      assert.ok(t >= a.cfg.electionTicks && t < 2 * a.cfg.electionTicks, `timeout ${t}`);
      seen.add(t);
    }
    assert.ok(seen.size >= 4, `only ${seen.size} distinct timeouts`);
  });

  it('raft §5.2 - a candidate with votes from a majority becomes leader and heartbeats', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    assert.equal(net.core('a').role, 'leader');
    assert.equal(net.core('b').lead, 'a');
    net.tick('a', net.core('a').cfg.heartbeatTicks);
    assert.deepEqual(types(net.queue.filter((m) => m.type === 'heartbeat')).sort(), ['a->b:heartbeat', 'a->c:heartbeat']);
  });

  it('raft §5.2 - each server votes for at most one candidate per term, first come first served', () => {
    const net = new RaftNet(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    const c = net.core('c');
    const ask = (from: string): Message => ({ type: 'vote', from: id(from), to: id('c'), term: 2 as Term, lastIndex: 1 as LogIndex, lastTerm: 1 as Term, transfer: false });
    c.step(ask('a'));
    c.step(ask('b'));
    const votes = c.ready().messages.filter((m) => m.type === 'voteResp');
    assert.deepEqual(votes.map((m) => (m.type === 'voteResp' ? `${m.to}:${m.reject}` : '')), ['a:false', 'b:true']);
  });

  it('raft §5.2 - a candidate that hears from a leader of its term returns to follower', () => {
    const net = new RaftNet(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    const a = net.core('a');
    while (a.role !== 'candidate') a.tick();
    a.step({ type: 'heartbeat', from: id('b'), to: id('a'), term: a.term as Term, commit: 0 as LogIndex, seq: 1, quiesce: false });
    assert.equal(a.role, 'follower');
    assert.equal(a.lead, 'b');
  });

  it('raft §5.2 - split votes end: randomized timeouts elect a leader', () => {
    const net = new RaftNet(['a', 'b', 'c', 'd', 'e'], { checkQuorum: false });
    for (let i = 0; i < 100 && ![...net.nodes.values()].some((n) => n.core.role === 'leader'); i++) {
      net.tickAll();
      net.deliverAll();
    }
    const leaders = [...net.nodes.values()].filter((n) => n.core.role === 'leader');
    assert.equal(leaders.length, 1);
  });
});

describe('raft paper §5.3 log replication', () => {
  it('raft §5.3 - the leader appends a proposal and replicates it; once a majority has it, it commits and every replica applies it', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    net.propose('a', 'x');
    net.tick('a', 2);
    net.deliverAll();
    for (const n of ['a', 'b', 'c']) assert.deepEqual(net.appliedData(n), ['x'], n);
  });

  it('raft §5.3 - an entry is not committed while only a minority has it', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    const before = net.core('a').log.committed;
    net.isolate('b');
    net.isolate('c');
    net.propose('a', 'x');
    assert.equal(net.core('a').log.committed, before);
    assert.deepEqual(net.appliedData('a'), []);
  });

  it('raft §5.3 - a follower refuses entries whose previous index and term it does not have', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    const b = net.core('b');
    b.step({ type: 'app', from: id('a'), to: id('b'), term: 2 as Term, prevIndex: 5 as LogIndex, prevTerm: 2 as Term, entries: [makeEntry(6 as LogIndex, 2 as Term, 'normal', bytes('x'))], commit: 0 as LogIndex });
    const resp = b.ready().messages[0];
    assert.ok(resp?.type === 'appResp' && resp.reject);
    assert.equal(b.log.lastIndex(), 1);
  });

  it('raft §5.3 - a conflicting entry and all that follow it are deleted; the leader never rewrites its own log', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    net.isolate('a');
    net.core('a').propose([bytes('lost-1'), bytes('lost-2')]);
    net.deliverAll();
    net.heal();
    net.isolate('a');
    net.elect('b');
    net.propose('b', 'kept');
    net.heal();
    const aLogBefore = net.core('b').log.all().map((e) => e.term);
    net.tick('b', 2);
    net.deliverAll();
    const a = net.core('a');
    assert.deepEqual(a.log.all().map((e) => e.term), net.core('b').log.all().map((e) => e.term));
    assert.ok(!a.log.all().some((e) => new TextDecoder().decode(e.data).startsWith('lost')), 'the uncommitted conflicting entries are gone');
    assert.deepEqual(net.core('b').log.all().map((e) => e.term), aLogBefore, "the leader's own log did not change");
  });

  it('raft §5.3 - fast backtracking: a follower far behind in an old term is found in a few round trips, not one per entry', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    net.isolate('c');
    for (let i = 0; i < 50; i++) net.core('a').propose([bytes(`e${i}`)]);
    net.deliverAll();
    net.heal();
    const before = net.trace.length;
    net.tick('a', 2);
    net.deliverAll();
    const rejects = net.trace.slice(before).filter((m) => m.type === 'appResp' && m.reject && m.from === 'c').length;
    assert.equal(net.core('c').log.lastIndex(), net.core('a').log.lastIndex());
    assert.ok(rejects <= 2, `${rejects} rejections`);
  });

  it('raft §5.3 - appends are pipelined within the bound on messages in flight per follower', () => {
    const net = new RaftNet(['a', 'b', 'c'], { ...NO_STICKY, maxSizePerMsg: 1, maxInflightMsgs: 3 });
    net.elect('a');
    net.tick('a', 2);
    net.deliverAll();
    const a = net.core('a');
    for (let i = 0; i < 10; i++) a.propose([bytes(`p${i}`)]);
    const sent = a.ready().messages.filter((m) => m.type === 'app' && m.to === 'b');
    assert.equal(sent.length, 3, 'three appends of one entry each, then the pipeline is full');
  });
});

describe('raft §5.3 - lost appends are told from appends in flight', () => {
  /** A network of `names` where a leads, its first entry committed everywhere. */
  const started = (names: string[]): { net: RaftNet; a: ReturnType<RaftNet['core']> } => {
    const net = new RaftNet(names, NO_STICKY);
    net.elect('a');
    net.tick('a', 2);
    net.deliverAll();
    return { net, a: net.core('a') };
  };
  const matchOf = (leader: ReturnType<RaftNet['core']>, peer: string): number => leader.status().progress.find((p) => p.node === peer)?.match ?? -1;
  /** Entries sent to `to` in appends since `from` in the trace, by index. */
  const sentTo = (net: RaftNet, to: string, from: number): number[] =>
    net.trace.slice(from).flatMap((m) => (m.type === 'app' && m.to === to ? m.entries.map((e) => e.index as number) : []));

  it('raft §5.3 - a heartbeat answered before an append arrives does not make the leader send the entry again', () => {
    const { net, a } = started(['a', 'b', 'c']);
    // A heartbeat goes out; an entry is proposed and sent before its answer comes back.
    net.tick('a', a.cfg.heartbeatTicks);
    a.propose([bytes('x')]);
    net.flushReadies();
    assert.deepEqual(types(net.queue), ['a->b:heartbeat', 'a->c:heartbeat', 'a->b:app', 'a->c:app']);
    const before = net.trace.length;
    net.deliverAll();
    const index = a.log.lastIndex();
    assert.deepEqual(sentTo(net, 'b', before), [index], 'the entry went to b once');
    assert.deepEqual(sentTo(net, 'c', before), [index], 'and to c once');
    assert.equal(a.status().probes, 0, 'the leader never went back to probing');
    assert.equal(net.core('b').log.lastIndex(), index);
  });

  it('raft §5.3 - an append lost on the way is sent again after the next heartbeat answer', () => {
    const { net, a } = started(['a', 'b', 'c']);
    net.dropIf = (m) => m.type === 'app' && m.to === 'b' && m.entries.length > 0;
    a.propose([bytes('x')]);
    net.deliverAll();
    net.dropIf = () => false;
    const index = a.log.lastIndex();
    assert.ok(net.core('b').log.lastIndex() < index, 'b missed the entry');
    assert.equal(a.log.committed, index, 'c made the quorum');
    net.tick('a', a.cfg.heartbeatTicks);
    net.deliverAll();
    assert.equal(net.core('b').log.lastIndex(), index, 'b has the entry after one heartbeat');
    assert.equal(a.status().probes, 1, 'one probe, counted');
    assert.deepEqual(net.appliedData('b'), ['x']);
  });

  /**
   * A slow link: messages `slow` selects leave the network and come back 40 steps late, in order.
   * Call `at(step)` at each step, before delivering: it sets the clock and requeues those due.
   */
  const slowLink = (net: RaftNet, slow: (m: Message) => boolean, lose: (m: Message) => boolean = () => false): { at(step: number): void } => {
    const held: { m: Message; due: number }[] = [];
    const back = new Set<Message>();
    let now = 0;
    net.dropIf = (m) => {
      if (lose(m)) return true;
      if (!slow(m) || back.has(m)) return false;
      held.push({ m, due: now + 40 });
      return true;
    };
    return {
      at(step: number): void {
        now = step;
        while (held.length > 0 && (held[0] as { due: number }).due <= step) {
          const { m } = held.shift() as { m: Message; due: number };
          back.add(m);
          net.queue.push(m);
        }
      },
    };
  };

  it('raft §5.3 - a lost last append is sent again when the peer answers heartbeats many rounds late (reads start rounds faster than it answers)', () => {
    const { net, a } = started(['a', 'b', 'c', 'd', 'e']);
    net.dropIf = (m) => m.type === 'app' && m.to === 'b' && m.entries.length > 0;
    a.propose([bytes('x')]);
    net.deliverAll();
    const index = a.log.lastIndex();
    assert.ok(net.core('b').log.lastIndex() < index, 'b missed the last entry');
    // From now on b's heartbeat answers reach the leader 40 steps late; a read starts a round at every step.
    const link = slowLink(net, (m) => m.type === 'heartbeatResp' && m.from === 'b');
    let step = 0;
    for (; step < 200 && net.core('b').log.lastIndex() < index; step++) {
      a.readIndex(step + 1, false);
      if (step % a.cfg.heartbeatTicks === 0) a.tick();
      link.at(step);
      net.deliverAll();
    }
    assert.equal(net.core('b').log.lastIndex(), index, `b has the entry (after ${step} steps)`);
  });

  it('raft §5.3 - a slow follower (everything it sends arrives 40 steps late) under writes and reads is not probed: each entry goes to it once', () => {
    const { net, a } = started(['a', 'b', 'c', 'd', 'e']);
    const link = slowLink(net, (m) => m.from === 'b');
    const before = net.trace.length;
    for (let step = 0; step < 300; step++) {
      a.propose([bytes(`w${step}`)]);
      a.readIndex(step + 1, false);
      if (step % a.cfg.heartbeatTicks === 0) a.tick();
      link.at(step);
      net.deliverAll();
    }
    link.at(Infinity);
    net.deliverAll();
    const sent = sentTo(net, 'b', before);
    assert.equal(a.status().probes, 0, 'no probe');
    assert.equal(sent.length, new Set(sent).size, `no entry sent twice (${sent.length} sent, ${new Set(sent).size} distinct)`);
    assert.equal(net.core('b').log.lastIndex(), a.log.lastIndex(), 'b caught up');
  });

  it('raft §5.3 - a slow follower that misses the last write, while reads go on: it is sent again', () => {
    const { net, a } = started(['a', 'b', 'c', 'd', 'e']);
    let last = 0;
    let dropped = false;
    // The last write's append to b is lost, once.
    const link = slowLink(net, (m) => m.from === 'b', (m) => !dropped && last > 0 && m.type === 'app' && m.to === 'b' && m.entries.some((e) => e.index === last) && (dropped = true));
    let step = 0;
    for (; step < 600; step++) {
      if (step < 100) {
        const r = a.propose([bytes(`w${step}`)]);
        if (step === 99 && r.ok) last = r.index;
      }
      a.readIndex(step + 1, false);
      if (step % a.cfg.heartbeatTicks === 0) a.tick();
      link.at(step);
      net.deliverAll();
      if (step > 100 && net.core('b').log.lastIndex() === last) break;
    }
    assert.ok(dropped, 'the last append was dropped');
    assert.equal(net.core('b').log.lastIndex(), last, `b got the last write again (after ${step} steps)`);
  });

  it('raft §5.3 - a copy of an old heartbeat answer, delivered again after newer acknowledgements, lowers no match and makes no probe', () => {
    const { net, a } = started(['a', 'b', 'c']);
    let saved: Message | undefined;
    net.dropIf = (m) => {
      if (m.type === 'heartbeatResp' && m.from === 'b' && !saved) saved = m;
      return false;
    };
    net.tick('a', a.cfg.heartbeatTicks);
    net.deliverAll();
    assert.ok(saved, "b answered a heartbeat");
    for (const w of ['x', 'y', 'z']) net.propose('a', w);
    const match = matchOf(a, 'b');
    assert.ok(match > (saved as Extract<Message, { type: 'heartbeatResp' }>).lastIndex, 'b acknowledged more since');
    a.step(saved as Message);
    assert.equal(matchOf(a, 'b'), match, 'the match stands');
    assert.equal(a.status().probes, 0, 'no probe');
  });

  it('raft §5.3 - an acknowledgement lost on the way: the leader finds the match again after the next heartbeat answer', () => {
    const { net, a } = started(['a', 'b', 'c']);
    net.dropIf = (m) => m.type === 'appResp' && m.from === 'b';
    a.propose([bytes('x')]);
    net.deliverAll();
    net.dropIf = () => false;
    const index = a.log.lastIndex();
    assert.equal(net.core('b').log.lastIndex(), index, 'b has the entry');
    assert.ok(matchOf(a, 'b') < index, 'the leader does not know');
    net.tick('a', a.cfg.heartbeatTicks);
    net.deliverAll();
    assert.equal(matchOf(a, 'b'), index, 'it knows after one heartbeat');
  });
});

describe('raft paper §5.4 safety', () => {
  it('raft §5.4.1 - a voter denies its vote to a candidate whose log is less up-to-date (last term, then length)', () => {
    const net = new RaftNet(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    net.elect('a');
    net.propose('a', 'x');
    const b = net.core('b');
    const ask = (lastIndex: number, lastTerm: number, term: number): boolean => {
      b.step({ type: 'vote', from: id('c'), to: id('b'), term: term as Term, lastIndex: lastIndex as LogIndex, lastTerm: lastTerm as Term, transfer: false });
      const r = b.ready().messages.find((m) => m.type === 'voteResp');
      return r?.type === 'voteResp' && !r.reject;
    };
    assert.equal(ask(b.log.lastIndex() - 1, b.log.lastTerm(), 10), false, 'same last term, shorter log');
    assert.equal(ask(100, 1, 11), false, 'older last term, however long');
    assert.equal(ask(b.log.lastIndex(), b.log.lastTerm(), 12), true, 'as up-to-date');
  });

  it('raft §5.4.2 (Figure 8) - entries of an earlier term are not committed by counting replicas; a core that does loses a committed entry', () => {
    for (const buggy of [false, true]) {
      const cfg = { preVote: false, checkQuorum: false, maxSizePerMsg: 1, bugs: { commitOldTermByCount: buggy } };
      const net = new RaftNet(['s1', 's2', 's3'], cfg);
      net.elect('s1');
      net.tick('s1', 2);
      net.deliverAll();
      // (a) s1 leads term 2 and appends X at index 3, which reaches nobody; s1 crashes.
      net.isolate('s1');
      net.core('s1').propose([bytes('X')]);
      net.deliverAll();
      net.restart('s1', cfg);
      // (b) s2 leads term 3 with s3's vote; its no-op Y at index 3 reaches nobody; s2 crashes.
      net.dropIf = (m) => m.from === 's2' && m.type === 'app';
      net.elect('s2');
      assert.equal(net.core('s2').term, 3);
      net.restart('s2', cfg);
      // (c) s1 leads term 4 with s3's vote and replicates X to s3, but not its own no-op.
      net.heal();
      net.isolate('s2');
      let noops = 0;
      net.dropIf = (m) => m.type === 'app' && m.entries.some((e) => e.type === 'noop' && e.term === 4) && noops++ > 0;
      net.elect('s1');
      net.tick('s1', 2);
      net.deliverAll();
      assert.equal(net.core('s3').log.termAt(3), 2, 's3 holds X');
      const xCommitted = net.core('s1').log.committed >= 3;
      assert.equal(xCommitted, buggy, buggy ? 'the bug commits X by counting s1 and s3' : 'X (term 2) must not be committed by counting in term 4');
      // (d) s1 crashes; s2 wins term 5 with s3's vote (its last entry, term 3, beats X's term 2) and replaces X by Y.
      net.restart('s1', cfg);
      net.heal();
      net.isolate('s1');
      net.dropIf = () => false;
      net.elect('s2');
      net.tick('s2', 2);
      net.deliverAll();
      assert.equal(net.core('s3').log.termAt(3), 3, 'Y replaced X on s3');
      if (buggy) assert.ok(net.node('s1').hard.commit >= 3, 'with the bug, a committed entry was lost: the safety violation §5.4.2 prevents');
    }
  });

  it('raft §5.4.3 - a new leader has every committed entry (leader completeness)', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    net.propose('a', 'c1');
    net.propose('a', 'c2');
    net.isolate('a');
    net.elect('b');
    const b = net.core('b');
    const data = b.log.all().map((e) => new TextDecoder().decode(e.data));
    assert.ok(data.includes('c1') && data.includes('c2'));
  });
});

describe('raft paper §5.5, §7, §8', () => {
  it('raft §5.5 - a repeated AppendEntries changes nothing (RPCs are idempotent)', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    net.propose('a', 'x');
    const app = net.trace.filter((m) => m.type === 'app' && m.to === 'b' && m.entries.length > 0).pop();
    assert.ok(app);
    const before = net.core('b').log.all().slice();
    net.core('b').step(app);
    net.deliverAll();
    assert.deepEqual(net.core('b').log.all(), before);
  });

  it('raft §7 - a follower that needs compacted entries gets the snapshot point and discards its log', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    net.isolate('c');
    for (let i = 0; i < 10; i++) net.propose('a', `s${i}`);
    const a = net.core('a');
    a.compact(a.compactableIndex());
    net.heal();
    net.tick('a', 2);
    net.deliverAll();
    const snap = net.trace.find((m) => m.type === 'snap' && m.to === 'c');
    assert.ok(snap, 'InstallSnapshot was sent');
    assert.equal(net.core('c').log.snapIndex, a.log.snapIndex);
    assert.equal(net.core('c').log.committed, a.log.committed);
  });

  it('raft §7 - a snapshot that covers a prefix of the log keeps the entries after it', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    for (let i = 0; i < 5; i++) net.propose('a', `k${i}`);
    const b = net.core('b');
    const last = b.log.lastIndex();
    b.step({ type: 'snap', from: id('a'), to: id('b'), term: b.term as Term, snapshot: { index: 3 as LogIndex, term: b.log.termAt(3) as Term, conf: b.conf } });
    assert.equal(b.log.lastIndex(), last, 'entries after the snapshot point remain');
  });

  it('raft §8 - a new leader appends a no-op entry of its term and only then serves reads', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    const a = net.core('a');
    const noop = a.log.entry(a.log.lastIndex());
    assert.equal(noop?.type, 'noop');
    assert.equal(noop?.term, a.term);
    assert.ok(a.isReadyLeader());
  });

  it('raft §8 - a read is confirmed by a heartbeat round with a majority (ReadIndex), and fails on a deposed leader', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    net.propose('a', 'w');
    const a = net.core('a');
    a.readIndex(7, false);
    const rd = a.ready();
    assert.equal(rd.readStates.length, 0, 'not before the round');
    net.queue.push(...rd.messages);
    net.deliverAll();
    assert.equal(a.status().readRounds, 1, 'the read took one heartbeat round, and status counts it');
    const seen: number[] = [];
    a.readIndex(8, false);
    net.isolate('a');
    net.deliverAll();
    assert.equal(a.ready().readStates.length, 0, 'no quorum, no read');
    // deposed: a higher term arrives
    a.step({ type: 'heartbeat', from: id('b'), to: id('a'), term: (a.term + 1) as Term, commit: 0 as LogIndex, seq: 1, quiesce: false });
    for (const f of a.ready().readFailures) seen.push(f.id);
    assert.deepEqual(seen, [8]);
  });
});

describe('raft §8 read rounds', () => {
  it('raft §8 - with three voters a read round goes to one voter, the one the host sends to anyway when it says so, and its acknowledgement confirms the read', () => {
    for (const hinted of ['b', 'c']) {
      const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
      net.elect('a');
      net.propose('a', 'w');
      const a = net.core('a');
      a.preferReadPeers(new Set([hinted]));
      a.readIndex(7, false);
      const rd = a.ready();
      const beats = rd.messages.filter((m) => m.type === 'heartbeat');
      assert.deepEqual(beats.map((m) => m.to), [id(hinted)], `the round goes to ${hinted} alone`);
      net.queue.push(...rd.messages);
      net.deliverAll();
      assert.ok(a.status().readRounds >= 1);
    }
    // Five voters need two acknowledgements: the round goes to every peer.
    const net5 = new RaftNet(['a', 'b', 'c', 'd', 'e'], NO_STICKY);
    net5.elect('a');
    net5.propose('a', 'w');
    const a5 = net5.core('a');
    a5.preferReadPeers(new Set(['b']));
    a5.readIndex(9, false);
    assert.equal(a5.ready().messages.filter((m) => m.type === 'heartbeat').length, 4);
  });
});

describe('raft dissertation extensions', () => {
  it('raft diss. §9.6 - pre-vote: a partitioned node that rejoins does not raise the term or depose the leader', () => {
    const net = new RaftNet(['a', 'b', 'c'], { checkQuorum: true });
    const leader = electSomeone(net);
    const other = ['a', 'b', 'c'].find((n) => n !== leader) as string;
    const term = net.core(leader).term;
    net.isolate(other);
    net.tick(other, 100);
    net.deliverAll();
    assert.equal(net.core(other).term, term, 'the isolated node never raised its term');
    net.heal();
    net.tickAll(3);
    net.deliverAll();
    assert.equal(net.core(leader).role, 'leader');
    assert.equal(net.core(leader).term, term);
  });

  it('raft diss. §4.2.3 - leader stickiness: a voter that heard from a leader within the timeout ignores vote requests', () => {
    const net = new RaftNet(['a', 'b', 'c'], { preVote: false, checkQuorum: true });
    electSomeone(net);
    const b = net.core('b');
    net.tick('b', 0);
    b.step({ type: 'heartbeat', from: id(b.lead ?? 'a'), to: id('b'), term: b.term as Term, commit: 0 as LogIndex, seq: 99, quiesce: false });
    b.ready();
    b.step({ type: 'vote', from: id('c'), to: id('b'), term: (b.term + 1) as Term, lastIndex: 100 as LogIndex, lastTerm: 100 as Term, transfer: false });
    assert.equal(b.ready().messages.filter((m) => m.type === 'voteResp').length, 0);
  });

  it('raft diss. §6.2 - check-quorum: a leader that hears from no majority for an election timeout steps down', () => {
    const net = new RaftNet(['a', 'b', 'c'], { checkQuorum: true });
    const leader = electSomeone(net);
    net.isolate(leader);
    net.tick(leader, 2 * net.core(leader).cfg.electionTicks + 1);
    assert.equal(net.core(leader).role, 'follower');
  });

  it('raft diss. §6.4.1 - a leased read answers without a round while a quorum acknowledged recently, and not after quiet', () => {
    const net = new RaftNet(['a', 'b', 'c'], { checkQuorum: true });
    const leader = electSomeone(net);
    const l = net.core(leader);
    net.tick(leader, 2);
    net.deliverAll();
    assert.equal(l.leasedReadIndex(), l.status().commit, 'inside the lease the commit index may be read at once');
    l.readIndex(1, true);
    assert.equal(l.ready().readStates.length, 1, 'served from the lease');
    net.isolate(leader);
    net.tick(leader, l.cfg.electionTicks - 1);
    assert.equal(l.leasedReadIndex(), undefined, 'no lease, no index without a round');
    l.readIndex(2, true);
    assert.equal(l.ready().readStates.length, 0, 'the lease ran out: a quorum round is needed');
  });

  it('follower read lease - granted inside the leader lease, timed from the ask, and it holds commits back until the holder has the entry', () => {
    const net = new RaftNet(['a', 'b', 'c'], { checkQuorum: true });
    const leader = electSomeone(net);
    const l = net.core(leader);
    const [f, g] = ['a', 'b', 'c'].filter((n) => n !== leader) as [string, string];
    const fc = net.core(f);
    net.tick(leader, 2);
    net.deliverAll();
    assert.equal(fc.followerLease(), undefined, 'no lease before asking');
    fc.requestLease();
    net.deliverAll();
    const lease = fc.followerLease();
    assert.ok(lease, 'the leader granted a lease inside its own');
    assert.equal(lease.index, fc.log.lastIndex(), 'a lease read waits for everything in the holder\'s log');
    assert.ok(lease.ticksLeft >= 1 && lease.ticksLeft < l.cfg.electionTicks - 2, `the lease is shorter than the leader's (${lease.ticksLeft} ticks)`);
    assert.equal(l.status().leases, 1);
    // The holder stops hearing from the leader: a write commits with the other follower's
    // acknowledgement alone only once the holder's lease has run out on the leader.
    net.isolate(f);
    const before = l.status().commit;
    assert.ok(l.propose([bytes('w')]).ok);
    net.deliverAll();
    assert.equal(l.status().commit, before, 'not committed while the isolated follower holds a lease');
    assert.ok(net.core(g).log.lastIndex() > before, 'the other follower has the entry');
    for (let t = 0; t < l.cfg.electionTicks && l.status().commit === before; t++) {
      net.tick(leader);
      net.deliverAll();
    }
    assert.ok(l.status().commit > before, 'committed once the lease ran out');
    assert.equal(l.status().leases, 0);
    for (let t = 0; t < lease.ticksLeft; t++) fc.tick();
    assert.equal(fc.followerLease(), undefined, 'the holder\'s own lease ran out first');
  });

  it('follower read lease - a leadership transfer waits for the leases to run out; none is granted meanwhile', () => {
    const net = new RaftNet(['a', 'b', 'c'], { checkQuorum: true });
    const leader = electSomeone(net);
    const l = net.core(leader);
    const [f, g] = ['a', 'b', 'c'].filter((n) => n !== leader) as [string, string];
    net.tick(leader, 2);
    net.deliverAll();
    net.core(f).requestLease();
    net.deliverAll();
    assert.ok(net.core(f).followerLease());
    assert.ok(l.transferLeadership(id(g)).ok);
    net.deliverAll();
    assert.ok(!net.trace.some((m) => m.type === 'timeoutNow'), 'no TimeoutNow while a follower holds a lease');
    net.core(g).requestLease();
    net.deliverAll();
    assert.equal(net.core(g).followerLease(), undefined, 'no lease is granted during a transfer');
    for (let t = 0; t < l.cfg.electionTicks && l.role === 'leader'; t++) {
      net.tick(leader);
      net.deliverAll();
    }
    assert.ok(net.trace.some((m) => m.type === 'timeoutNow' && m.to === id(g)), 'TimeoutNow once the lease ran out');
    assert.equal(net.core(g).role, 'leader', 'the transfer completed');
  });

  it('raft §8 on a follower - with three voters the leader answers a follower\'s read index at once; the follower\'s term check is what makes it safe', () => {
    const net = new RaftNet(['a', 'b', 'c'], { checkQuorum: true });
    const old = electSomeone(net);
    const [x, y] = ['a', 'b', 'c'].filter((n) => n !== old) as [string, string];
    const l = net.core(old);
    l.readIndex(1, false, id(x));
    const rd = l.ready();
    assert.deepEqual(rd.readStates, [{ id: 1, index: l.status().commit }], 'answered with no heartbeat round');
    assert.equal(rd.messages.filter((m) => m.type === 'heartbeat').length, 0);
    l.advance(rd);
    // The leader is cut off but does not know it yet; the other two elect one of them and commit a write.
    net.isolate(old);
    for (let i = 0; i < 4 * l.cfg.electionTicks && !net.core(x).isReadyLeader() && !net.core(y).isReadyLeader(); i++) {
      net.tick(x);
      net.tick(y);
      net.deliverAll();
    }
    const [g, f] = net.core(x).isReadyLeader() ? [x, y] : [y, x];
    const ng = net.core(g);
    assert.ok(ng.isReadyLeader(), 'one of the other two leads the majority');
    net.propose(g, 'w');
    assert.equal(l.role, 'leader', 'the old leader still believes it leads');
    l.readIndex(2, false, id(f));
    const stale = l.ready();
    l.advance(stale);
    const answer = stale.readStates[0];
    assert.ok(answer, 'the stale leader answers at once too');
    assert.ok(answer.index < ng.status().commit, 'its index misses the write the new leader committed');
    assert.notEqual(net.core(f).term, l.term, 'the follower has moved to a later term: its check refuses the answer');
  });

  it('raft §8 on a follower - with five voters a follower\'s read index still takes a heartbeat round', () => {
    const net = new RaftNet(['a', 'b', 'c', 'd', 'e'], { checkQuorum: true });
    const leader = electSomeone(net);
    const l = net.core(leader);
    const f = ['a', 'b', 'c', 'd', 'e'].find((n) => n !== leader) as string;
    l.readIndex(1, false, id(f));
    const rd = l.ready();
    assert.equal(rd.readStates.length, 0, 'not answered before a round');
    assert.ok(rd.messages.some((m) => m.type === 'heartbeat'), 'a heartbeat round confirms it');
  });

  it('raft §8 on a follower - a leased read index for a follower tells it the commit index when it lags, and only then', () => {
    const net = new RaftNet(['a', 'b', 'c'], { checkQuorum: true });
    const leader = electSomeone(net);
    const l = net.core(leader);
    const f = ['a', 'b', 'c'].find((n) => n !== leader) as string;
    net.tick(leader, 2);
    net.deliverAll();
    // The leader commits a write once the followers acknowledge it; they hear of that commit only later.
    assert.ok(l.propose([new TextEncoder().encode('w')]).ok);
    net.deliverAll();
    const committed = l.status().commit;
    assert.ok(net.core(f).status().commit < committed, 'the follower does not know the new commit index yet');
    l.readIndex(7, true, id(f));
    const rd = l.ready();
    assert.deepEqual(rd.readStates, [{ id: 7, index: committed }]);
    assert.ok(rd.messages.some((m) => m.type === 'app' && m.to === id(f) && m.commit === committed), 'an empty append carries the commit index to the follower');
    net.queue.push(...rd.messages);
    l.advance(rd);
    net.deliverAll();
    assert.equal(net.core(f).status().commit, committed, 'the follower learned it');
    l.readIndex(8, true, id(f));
    const again = l.ready();
    assert.equal(again.readStates.length, 1);
    assert.equal(again.messages.filter((m) => m.to === id(f)).length, 0, 'a follower that knows the commit index is sent nothing');
    l.advance(again);
  });

  it('raft diss. §3.10 - leadership transfer: the target catches up and wins at once', () => {
    const net = new RaftNet(['a', 'b', 'c'], { checkQuorum: true });
    const leader = electSomeone(net);
    const target = ['a', 'b', 'c'].find((n) => n !== leader) as string;
    net.propose(leader, 'before');
    assert.ok(net.core(leader).transferLeadership(id(target)).ok);
    net.deliverAll();
    assert.equal(net.core(target).role, 'leader');
    assert.equal(net.core(leader).role, 'follower');
  });

  it('raft diss. §3.10 - a leader that must hand off (withdrawn, or removed) tries the next voter when the one it chose does not take over', () => {
    const net = new RaftNet(['a', 'b', 'c'], NO_STICKY);
    net.elect('a');
    net.propose('a', 'x');
    net.tick('a', 2);
    net.deliverAll();
    const a = net.core('a');
    assert.equal(a.bestTransferee(), 'b', 'b and c match alike; b comes first');
    // b is down (or damaged, which keeps it from campaigning); a handing off must not wait on it for ever
    net.isolate('b');
    a.withdraw();
    for (let i = 0; i < 4 * a.cfg.electionTicks && net.core('c').role !== 'leader'; i++) {
      net.tick('a');
      net.tick('c');
      net.deliverAll();
    }
    assert.equal(net.core('c').role, 'leader', 'c took over');
  });

  it('raft diss. §4.1 - one server at a time: a learner receives the log without voting, is promoted, then counts', () => {
    const net = new RaftNet(['a', 'b', 'c', 'd'], NO_STICKY, ['a', 'b', 'c']);
    net.elect('a');
    net.tick('a', 2);
    net.deliverAll();
    const a = net.core('a');
    assert.ok(a.proposeConfChange({ type: 'addLearner', node: id('d') }).ok);
    assert.equal(a.proposeConfChange({ type: 'promote', node: id('d') }).ok, false, 'one change at a time');
    net.deliverAll();
    net.propose('a', 'x');
    net.tick('a', 2);
    net.deliverAll();
    assert.deepEqual(net.appliedData('d'), ['x']);
    assert.equal(net.core('d').isVoter(), false);
    assert.ok(a.proposeConfChange({ type: 'promote', node: id('d') }).ok);
    net.deliverAll();
    net.tick('a', 2);
    net.deliverAll();
    assert.deepEqual([...a.conf.voters].sort(), ['a', 'b', 'c', 'd']);
    assert.equal(a.proposeConfChange({ type: 'remove', node: id('a') }).ok, false, 'a leader does not remove itself; it transfers first');
  });

  it('raft checksums - a replica that finds a corrupt entry at restart neither votes nor campaigns until a leader repairs its log', () => {
    const net = new RaftNet(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    net.elect('a');
    net.propose('a', 'p1');
    net.propose('a', 'p2');
    const c = net.node('c');
    const bad = c.entries[c.entries.length - 1] as Entry;
    c.entries[c.entries.length - 1] = { ...bad, data: bytes('tampered') };
    const core = net.restart('c').core;
    assert.equal(core.damaged, true);
    assert.ok(core.log.lastIndex() < bad.index, 'the corrupt entry is not served');
    net.flushReadies();
    assert.equal(net.node('c').hard.repairing, true, 'the damage is persisted');
    assert.ok(!net.node('c').entries.some((e) => e.index >= bad.index), 'and the corrupt entry deleted from storage');
    core.step({ type: 'preVote', from: id('b'), to: id('c'), term: (core.term + 1) as Term, lastIndex: 100 as LogIndex, lastTerm: 40 as Term });
    const r = core.ready().messages.find((m) => m.type === 'preVoteResp');
    assert.ok(r?.type === 'preVoteResp' && r.reject, 'a damaged replica refuses votes, even to a far more up-to-date candidate');
    for (let i = 0; i < 40; i++) core.tick();
    assert.notEqual(core.role, 'candidate');
    net.flushReadies();
    net.queue = [];
    net.tick('a', 2);
    net.deliverAll();
    net.propose('a', 'p3');
    net.tick('a', 2);
    net.deliverAll();
    net.deliverAll();
    assert.equal(net.core('c').damaged, false, 'repaired by the leader');
    assert.equal(net.core('c').log.entry(bad.index)?.crc, net.core('a').log.entry(bad.index)?.crc);
  });
});
