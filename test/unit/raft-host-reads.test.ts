/**
 * Linearizable reads of many groups on one node travel together: a node confirms the read
 * indexes of all its groups' waiting reads in one exchange per peer node. A follower's reads ask
 * the leader over the Raft transport (readReq), all groups' in one frame, and the leader's answers
 * (readResp) ride back on that frame's reply; a leader's read rounds (heartbeats) of all its groups
 * go to each peer in one frame. Real hosts on in-memory ports (test/helpers/memory-hosts.ts),
 * every frame recorded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Message } from '../../src/raft/types.js';
import { MemoryHosts, MemoryStateMachine, type MemoryNode } from '../helpers/memory-hosts.js';

const enc = new TextEncoder();
const GROUPS = ['g1', 'g2', 'g3', 'g4'];

function must<T>(x: T | undefined, what: string): T {
  assert.ok(x !== undefined, what);
  return x;
}

/** Three nodes, four groups of three voters, all led by b, each with a committed write; then idle (quiesced). */
async function cluster(): Promise<{ hosts: MemoryHosts; a: MemoryNode; b: MemoryNode; written: Map<string, number> }> {
  const hosts = new MemoryHosts();
  for (const id of ['a', 'b', 'c']) hosts.add(id);
  for (const g of GROUPS) {
    // A state machine of its own per group (a node's `sm` serves one group).
    for (const n of hosts.nodes.values()) await n.host.createGroup(g, { voters: ['a', 'b', 'c'], stateMachine: new MemoryStateMachine() });
  }
  const b = hosts.node('b');
  const written = new Map<string, number>();
  for (const g of GROUPS) {
    await hosts.until(() => hosts.leader(g) !== undefined, 5_000, `a leader of ${g}`);
    const l = must(hosts.leader(g), `a leader of ${g}`);
    if (l !== b) await hosts.settle(l.host.transferLeadership(g, 'b'));
    await hosts.until(() => hosts.leader(g) === b, 5_000, `b leading ${g}`);
    written.set(g, (await hosts.settle(b.host.propose(g, enc.encode(`w-${g}`), { concern: 'all', timeoutMs: 2_000 }))).index);
  }
  await hosts.until(() => GROUPS.every((g) => b.host.inspect(g).quiesced), 5_000, 'the groups to quiesce');
  return { hosts, a: hosts.node('a'), b, written };
}

const carrying = (frame: { msgs: [string, Message][] }, type: Message['type']): [string, Message][] => frame.msgs.filter(([, m]) => m.type === type);

describe('raft host reads', () => {
  it('raft host reads - a follower\'s strong reads of four groups ask their leader\'s node in one frame, and its answers come back on that frame\'s reply', async () => {
    const { hosts, a, b, written } = await cluster();
    hosts.recording = true;
    // Two reads per group, all begun in the same turn of the event loop.
    const reads = GROUPS.flatMap((g) => [0, 1].map(() => a.host.followerReadIndex(g, { mode: 'strong', timeoutMs: 2_000 }).then((r) => ({ g, ...r }))));
    const answers = await hosts.settle(Promise.all(reads));
    hosts.recording = false;
    for (const r of answers) {
      assert.ok(r.index >= must(written.get(r.g), 'its write'), `${r.g}: read index ${r.index} misses the write committed at ${String(written.get(r.g))}`);
      assert.equal(r.term, a.host.termOf(r.g));
    }
    const asks = hosts.frames.filter((f) => carrying(f, 'readReq').length > 0);
    assert.equal(asks.length, 1, `frames asking for read indexes: ${JSON.stringify(asks.map((f) => [f.from, f.to, f.kind, carrying(f, 'readReq').length]))}`);
    const ask = must(asks[0], 'the frame');
    assert.deepEqual([ask.from, ask.to, ask.kind], ['a', 'b', 'request']);
    assert.deepEqual(carrying(ask, 'readReq').map(([g]) => g).sort(), GROUPS, 'one read index request per group, the two reads of each sharing it');
    const answered = hosts.frames.filter((f) => carrying(f, 'readResp').length > 0);
    assert.equal(answered.length, 1, `frames answering: ${JSON.stringify(answered.map((f) => [f.from, f.to, f.kind]))}`);
    const reply = must(answered[0], 'the answer');
    assert.deepEqual([reply.from, reply.to, reply.kind], ['b', 'a', 'reply'], 'the answers ride on the reply to the request');
    assert.deepEqual(carrying(reply, 'readResp').map(([g]) => g).sort(), GROUPS);
    // The reads the host asked for, and the requests that carried them.
    await hosts.stop();
  });

  it('raft host reads - a leader\'s strong reads of four groups go in one frame of heartbeats to one peer (three voters need one acknowledgement), acknowledged on its reply', async () => {
    const { hosts, b, written } = await cluster();
    hosts.recording = true;
    const reads = GROUPS.map((g) => b.host.readIndex(g, { mode: 'strong', timeoutMs: 2_000 }).then((r) => ({ g, ...r })));
    const answers = await hosts.settle(Promise.all(reads));
    hosts.recording = false;
    for (const r of answers) assert.ok(r.index >= must(written.get(r.g), 'its write'), `${r.g}: read index ${r.index} misses its write`);
    const rounds = hosts.frames.filter((f) => f.from === 'b' && carrying(f, 'heartbeat').length > 0);
    const first = must(rounds[0], 'a round');
    assert.deepEqual(carrying(first, 'heartbeat').map(([g]) => g).sort(), GROUPS, 'the first frame of heartbeats carries every group\'s round');
    const peer = first.to;
    const acks = must(hosts.frames.find((f) => f.from === peer && f.to === 'b' && carrying(f, 'heartbeatResp').length > 0), `${peer}'s acknowledgements`);
    assert.equal(acks.kind, 'reply', `${peer} acknowledges on the reply`);
    assert.deepEqual(carrying(acks, 'heartbeatResp').map(([g]) => g).sort(), GROUPS);
    const other = peer === 'a' ? 'c' : 'a';
    assert.equal(hosts.frames.filter((f) => f.from === 'b' && f.to === other && carrying(f, 'heartbeat').length > 0 && f.kind === 'request').length, 0, `no round went to ${other} too`);
    await hosts.stop();
  });

  it('raft host reads - a node that leads two groups and follows two others confirms the reads of all four with one exchange with the other leader\'s node', async () => {
    const hosts = new MemoryHosts();
    for (const id of ['a', 'b', 'c']) hosts.add(id);
    for (const g of GROUPS) {
      for (const n of hosts.nodes.values()) await n.host.createGroup(g, { voters: ['a', 'b', 'c'], stateMachine: new MemoryStateMachine() });
    }
    // g1, g2 led by a; g3, g4 led by b
    const leadOf = (g: string): string => (g === 'g1' || g === 'g2' ? 'a' : 'b');
    for (const g of GROUPS) {
      await hosts.until(() => hosts.leader(g) !== undefined, 5_000, `a leader of ${g}`);
      const l = must(hosts.leader(g), 'a leader');
      if (l.id !== leadOf(g)) await hosts.settle(l.host.transferLeadership(g, leadOf(g)));
      await hosts.until(() => hosts.leader(g)?.id === leadOf(g), 5_000, `${leadOf(g)} leading ${g}`);
      await hosts.settle(hosts.node(leadOf(g)).host.propose(g, enc.encode(`w-${g}`), { concern: 'all', timeoutMs: 2_000 }));
    }
    const a = hosts.node('a');
    await hosts.until(() => GROUPS.every((g) => hosts.node(leadOf(g)).host.inspect(g).quiesced), 5_000, 'the groups to quiesce');
    hosts.recording = true;
    // On a: its own strong reads of g1, g2 (it leads) and of g3, g4 (b leads), begun together.
    const reads = GROUPS.map((g) => (leadOf(g) === 'a' ? a.host.readIndex(g, { mode: 'strong', timeoutMs: 2_000 }) : a.host.followerReadIndex(g, { mode: 'strong', timeoutMs: 2_000 })));
    await hosts.settle(Promise.all(reads));
    hosts.recording = false;
    const fromA = hosts.frames.filter((f) => f.from === 'a' && f.kind === 'request' && f.msgs.length > 0);
    assert.equal(fromA.length, 1, `a sent ${fromA.length} frames: ${JSON.stringify(fromA.map((f) => [f.to, f.msgs.map(([g, m]) => `${g}:${m.type}`)]))}`);
    const frame = must(fromA[0], 'the frame');
    assert.equal(frame.to, 'b', 'to the node it asks for read indexes anyway');
    assert.deepEqual(frame.msgs.map(([g, m]) => `${g}:${m.type}`).sort(), ['g1:heartbeat', 'g2:heartbeat', 'g3:readReq', 'g4:readReq']);
    const reply = must(hosts.frames.find((f) => f.from === 'b' && f.to === 'a' && f.kind === 'reply'), 'the reply');
    assert.deepEqual(reply.msgs.map(([g, m]) => `${g}:${m.type}`).sort(), ['g1:heartbeatResp', 'g2:heartbeatResp', 'g3:readResp', 'g4:readResp']);
    await hosts.stop();
  });

  it('raft host reads - a follower\'s read fails at once when it knows no leader, and when the term changes before the answer', async () => {
    const { hosts, a, b } = await cluster();
    // b is cut off: a's request goes unanswered; a's term moves on (it campaigns with c) and the read fails.
    hosts.cut.add('b');
    const read = a.host.followerReadIndex('g1', { mode: 'strong', timeoutMs: 5_000 });
    await assert.rejects(hosts.settle(read, 6_000), (e: unknown) => (e as Error).name === 'NotLeaderError' || /not the leader/.test((e as Error).message));
    hosts.cut.delete('b');
    await hosts.stop();
    assert.ok(b);
  });

  it('raft host reads - the host\'s read counters count on after a group leaves it (counters never go down)', async () => {
    const { hosts, a, b } = await cluster();
    await hosts.settle(Promise.all(GROUPS.map((g) => a.host.followerReadIndex(g, { mode: 'strong', timeoutMs: 2_000 }))));
    await hosts.settle(Promise.all(GROUPS.map((g) => b.host.readBarrier(g, { mode: 'strong', timeoutMs: 2_000 }))));
    const asked = a.host.readCounters();
    const led = b.host.readCounters();
    assert.ok(asked.requests > 0 && led.rounds > 0 && led.others > 0, `reads counted: ${JSON.stringify({ asked, led })}`);
    for (const g of GROUPS.slice(0, 2)) {
      await hosts.settle(a.host.removeGroup(g));
      await hosts.settle(b.host.removeGroup(g));
    }
    assert.deepEqual(a.host.readCounters(), asked, 'the follower\'s counts stay');
    assert.deepEqual(b.host.readCounters(), led, 'the leader\'s counts stay');
    await hosts.stop();
  });
});
