/**
 * Read pipelining (src/replication/read-pipeline.ts): at most one read-confirming exchange in
 * flight per peer node; asks made meanwhile wait and leave together; frames of answers only are
 * published. The rule on a transport whose sends are recorded, then on real hosts over the
 * in-memory network with a round trip of 10 ms: a follower's reads begun in three turns while its
 * first request is out cost two requests, not three, and every read still sees the write
 * committed before it began.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LogIndex, Message, NodeId, Term } from '../../src/raft/types.js';
import { BatchingTransport, type SnapshotChunk, type TransportHandlers, type Waiting } from '../../src/replication/raft-transport.js';
import { latestHeartbeats } from '../../src/replication/read-pipeline.js';
import { MemoryHosts, MemoryStateMachine } from '../helpers/memory-hosts.js';

type Sent = { kind: 'request' | 'reply' | 'publish'; peer: string; msgs: string[] };

class RecordingTransport extends BatchingTransport<Waiting> {
  readonly maxPayload = 1024 * 1024;
  readonly sent: Sent[] = [];
  start(_h: TransportHandlers): void {}
  stop(): void {}
  sendChunk(_p: string, _c: SnapshotChunk): Promise<boolean> {
    return Promise.resolve(true);
  }
  protected request(peer: string, msgs: [string, Message][]): void {
    this.sent.push({ kind: 'request', peer, msgs: msgs.map(show) });
  }
  protected respond(w: Waiting, msgs: [string, Message][] | undefined): void {
    if (msgs) this.sent.push({ kind: 'reply', peer: w.peer, msgs: msgs.map(show) });
  }
  protected publish(peer: string, msgs: [string, Message][]): void {
    this.sent.push({ kind: 'publish', peer, msgs: msgs.map(show) });
  }
  /** The peer's frame arrived (on the reply to ours when `reply`), `turn` when a turn will follow. */
  answer(peer: string, msgs: [string, Message][], reply: boolean, turn = false): void {
    this.arrived(peer, msgs);
    if (reply) this.exchangeEnded(peer, turn);
  }
  waitingFrom(peer: string): void {
    this.waiting.push({ peer });
  }
}

function show([g, m]: [string, Message]): string {
  return m.type === 'heartbeat' ? `${g}:heartbeat#${m.seq}` : `${g}:${m.type}`;
}

const base = (to: string) => ({ from: 'a' as NodeId, to: to as NodeId, term: 3 as Term });
const readReq = (to: string, ctx: number): Message => ({ ...base(to), type: 'readReq', ctx, leased: false });
const heartbeat = (to: string, seq: number): Message => ({ ...base(to), type: 'heartbeat', commit: 5 as LogIndex, seq, quiesce: false });
const readResp = (to: string, ctx: number): Message => ({ ...base(to), type: 'readResp', ctx, index: 5 as LogIndex, reject: false });
const hbResp = (to: string, seq: number): Message => ({ ...base(to), type: 'heartbeatResp', seq, applied: 5 as LogIndex, lastIndex: 5 as LogIndex });
const appResp = (to: string): Message => ({ ...base(to), type: 'appResp', index: 5 as LogIndex, reject: false, hintIndex: 0 as LogIndex, hintTerm: 0 as Term, applied: 5 as LogIndex });

function pipelined(): { t: RecordingTransport; released: () => number } {
  const t = new RecordingTransport();
  let n = 0;
  t.pipelineReads(100, () => n++);
  t.publishAnswers();
  return { t, released: () => n };
}

describe('read pipeline', () => {
  it('read pipeline - without it, every flush with asks sends a request of its own', () => {
    const t = new RecordingTransport();
    t.enqueue('g1', readReq('b', 1));
    t.flush(0);
    t.enqueue('g1', readReq('b', 2));
    t.flush(1);
    assert.deepEqual(t.sent.map((s) => s.kind), ['request', 'request']);
    assert.equal(t.holding(), false);
  });

  it('read pipeline - asks wait while an exchange with that peer is out, then leave in one frame with the newest heartbeat of each group', () => {
    const { t, released } = pipelined();
    t.enqueue('g1', readReq('b', 1));
    t.flush(0);
    t.enqueue('g1', readReq('b', 2));
    t.enqueue('g2', heartbeat('b', 7));
    t.flush(1);
    t.enqueue('g2', heartbeat('b', 8));
    t.enqueue('g3', readReq('c', 1));
    t.flush(2);
    assert.deepEqual(t.sent, [
      { kind: 'request', peer: 'b', msgs: ['g1:readReq'] },
      { kind: 'request', peer: 'c', msgs: ['g3:readReq'] },
    ], 'to b, only the first; c has nothing in flight');
    assert.equal(t.holding(), true);
    // b's reply answers: nothing else is due to run a turn, so the host is told to flush.
    t.answer('b', [['g1', readResp('a', 1)]], true);
    assert.equal(released(), 1);
    t.flush(3);
    assert.deepEqual(t.sent[2], { kind: 'request', peer: 'b', msgs: ['g1:readReq', 'g2:heartbeat#8'] });
    t.enqueue('g1', readReq('b', 3));
    t.flush(4);
    assert.equal(t.sent.length, 3, 'that frame asks in turn: b is busy again, and the next ask waits');
  });

  it('read pipeline - a frame with anything but asks leaves at once and takes the waiting asks along', () => {
    const { t } = pipelined();
    t.enqueue('g1', heartbeat('b', 1));
    t.flush(0);
    t.enqueue('g1', heartbeat('b', 2));
    t.flush(1);
    t.enqueue('g2', appResp('b'));
    t.flush(2);
    assert.deepEqual(t.sent.map((s) => [s.kind, s.msgs]), [
      ['request', ['g1:heartbeat#1']],
      ['request', ['g1:heartbeat#2', 'g2:appResp']],
    ]);
  });

  it('read pipeline - asks ride on the reply to a waiting request of that peer even while busy', () => {
    const { t } = pipelined();
    t.enqueue('g1', readReq('b', 1));
    t.flush(0);
    t.waitingFrom('b');
    t.enqueue('g1', readReq('b', 2));
    t.flush(1, t.takeWaiting());
    assert.deepEqual(t.sent.map((s) => [s.kind, s.msgs]), [
      ['request', ['g1:readReq']],
      ['reply', ['g1:readReq']],
    ]);
  });

  it('read pipeline - answers from the peer in a frame of its own release the next frame too; a lost answer holds it no longer than the bound', () => {
    const { t } = pipelined();
    t.enqueue('g1', readReq('b', 1));
    t.flush(0);
    t.enqueue('g1', readReq('b', 2));
    t.flush(1);
    t.answer('b', [['g2', hbResp('a', 4)]], false);
    t.flush(2);
    assert.equal(t.sent.length, 2, 'released by the answers in b\'s own frame');
    t.enqueue('g1', readReq('b', 3));
    t.flush(50);
    assert.equal(t.sent.length, 2, 'held: the exchange is out');
    t.flush(101);
    assert.equal(t.sent.length, 2, 'held: the frame that left at 2 has had 99 ms');
    t.flush(102);
    assert.equal(t.sent.length, 3, 'sent once the bound (100 ms) passed');
  });

  it('read pipeline - a frame of answers only is published, with no reply wanted; on a waiting request it rides on the reply', () => {
    const { t } = pipelined();
    t.enqueue('g1', readResp('b', 1));
    t.enqueue('g2', hbResp('b', 3));
    t.flush(0);
    t.waitingFrom('c');
    t.enqueue('g1', readResp('c', 1));
    t.flush(1, t.takeWaiting());
    assert.deepEqual(t.sent.map((s) => [s.kind, s.peer]), [
      ['publish', 'b'],
      ['reply', 'c'],
    ]);
    assert.equal(t.stats.publishes, 1);
  });

  it('read pipeline - latestHeartbeats keeps the last heartbeat of each group and the order of everything else', () => {
    const list: [string, Message][] = [['g1', heartbeat('b', 1)], ['g2', readReq('b', 1)], ['g1', heartbeat('b', 2)], ['g3', heartbeat('b', 1)]];
    assert.deepEqual(latestHeartbeats(list).map(show), ['g2:readReq', 'g1:heartbeat#2', 'g3:heartbeat#1']);
    const one: [string, Message][] = [['g1', heartbeat('b', 1)]];
    assert.equal(latestHeartbeats(one), one);
  });

  for (const on of [true, false]) {
    it(`read pipeline - hosts ${on ? 'with' : 'without'} it: a follower's reads begun in three turns while its first request is out cost ${on ? 'two requests' : 'three'}, and each sees the write before it`, async () => {
      const hosts = new MemoryHosts();
      for (const id of ['a', 'b', 'c']) hosts.add(id, { readPipeline: on });
      for (const n of hosts.nodes.values()) await n.host.createGroup('g1', { voters: ['a', 'b', 'c'], stateMachine: new MemoryStateMachine() });
      await hosts.until(() => hosts.leader('g1') !== undefined, 5_000, 'a leader');
      const leader = hosts.leader('g1');
      assert.ok(leader);
      const follower = [...hosts.nodes.values()].find((n) => n !== leader);
      assert.ok(follower);
      hosts.latencyMs = 5;
      const { index: written } = await hosts.settle(leader.host.propose('g1', new TextEncoder().encode('w'), { concern: 'majority', timeoutMs: 2_000 }));
      const reads: Promise<{ index: number; at: number }>[] = [];
      hosts.recording = true;
      for (let turn = 0; turn < 3; turn++) {
        reads.push(follower.host.followerReadIndex('g1', { mode: 'strong', timeoutMs: 2_000 }).then((r) => ({ index: r.index, at: written })));
        await hosts.clock.advance(1);
      }
      const answers = await hosts.settle(Promise.all(reads));
      hosts.recording = false;
      for (const r of answers) assert.ok(r.index >= r.at, `read index ${r.index} misses the write at ${r.at} committed before the read began`);
      const asks = hosts.frames.filter((f) => f.from === follower.id && f.msgs.some(([, m]) => m.type === 'readReq'));
      assert.equal(asks.length, on ? 2 : 3, JSON.stringify(asks.map((f) => [f.kind, f.msgs.map(([, m]) => m.type)])));
      await hosts.stop();
    });
  }
});
