/**
 * What the Raft host does when the parts under it fail: a flush of the log, a state machine's
 * apply, a slow restore. Real hosts on in-memory ports (test/helpers/memory-hosts.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnavailableError } from '../../src/runtime/errors.js';
import { MemoryHosts } from '../helpers/memory-hosts.js';

const enc = new TextEncoder();

async function threeNodes(group: string, o: Parameters<MemoryHosts['add']>[1] = {}): Promise<MemoryHosts> {
  const hosts = new MemoryHosts();
  for (const id of ['a', 'b', 'c']) hosts.add(id, o);
  for (const n of hosts.nodes.values()) await n.host.createGroup(group, { voters: ['a', 'b', 'c'], stateMachine: n.sm });
  await hosts.until(() => hosts.leader(group) !== undefined, 5_000, 'a leader');
  return hosts;
}

describe('raft host faults', () => {
  it('raft host faults - a failed flush stops the host: it acknowledges nothing of that turn, fails its callers and reports it', async () => {
    const hosts = await threeNodes('f1');
    const leader = hosts.leader('f1');
    assert.ok(leader);
    const follower = [...hosts.nodes.values()].find((n) => n !== leader);
    assert.ok(follower);
    follower.store.failNextFlush = new Error('EIO: disk gone');
    // The other follower makes the majority: the write commits.
    const write = await hosts.settle(leader.host.propose('f1', enc.encode('w1'), { concern: 'majority', timeoutMs: 2_000 }));
    assert.deepEqual(write.result, 'w1');
    assert.equal(follower.fatal.length, 1, 'onFatal was called once');
    assert.match(follower.host.failure() ?? '', /flush failed: .*EIO/);
    assert.match(follower.host.status('f1').failed ?? '', /EIO/);
    // The failed follower never acknowledged the entry it could not flush.
    const index = write.index;
    const pr = leader.host.status('f1').progress.find((p) => p.node === follower.id);
    assert.ok(pr && pr.matchIndex < index, `the leader counts ${follower.id} at ${pr?.matchIndex}, at or past ${index} which it never flushed`);
    // Nor does it serve anything any more.
    await assert.rejects(follower.host.waitApplied('f1', index + 100, 1_000), UnavailableError);
    await hosts.clock.advance(1_000);
    assert.ok((pr?.matchIndex ?? 0) < index && (leader.host.status('f1').progress.find((p) => p.node === follower.id)?.matchIndex ?? 0) < index);
    await hosts.stop();
  });

  it('raft host faults - a leader whose state machine cannot apply hands leadership over, says why, and does not lead again', async () => {
    const hosts = await threeNodes('f2');
    const leader = hosts.leader('f2');
    assert.ok(leader);
    leader.sm.failApply = new Error('index worker crashed');
    await assert.rejects(hosts.settle(leader.host.propose('f2', enc.encode('w1'), { concern: 'majority', timeoutMs: 2_000 })), UnavailableError);
    await hosts.until(() => {
      const l = hosts.leader('f2');
      return l !== undefined && l !== leader;
    }, 5_000, 'another leader');
    assert.match(leader.host.status('f2').failed ?? '', /index worker crashed/);
    assert.notEqual(leader.host.roleOf('f2').role, 'leader');
    // The new leader serves writes; the failed replica never campaigns again.
    const next = hosts.leader('f2');
    assert.ok(next);
    const w = await hosts.settle(next.host.propose('f2', enc.encode('w2'), { concern: 'majority', timeoutMs: 2_000 }));
    assert.equal(w.result, 'w2');
    for (let i = 0; i < 20; i++) {
      await hosts.clock.advance(100);
      assert.notEqual(leader.host.roleOf('f2').role, 'leader', 'the failed replica led again');
      assert.notEqual(leader.host.roleOf('f2').role, 'candidate', 'the failed replica campaigned');
    }
    await hosts.stop();
  });

  it('raft host faults - a follower restoring a snapshot slowly acknowledges each chunk only once it has used it', async () => {
    const hosts = new MemoryHosts();
    const o = { compactEvery: 5, compactKeep: 0, snapshotChunkBytes: 16 };
    for (const id of ['a', 'b']) hosts.add(id, o);
    for (const id of ['a', 'b']) {
      const n = hosts.node(id);
      await n.host.createGroup('f3', { voters: ['a', 'b'], stateMachine: n.sm });
    }
    await hosts.until(() => hosts.leader('f3') !== undefined, 5_000, 'a leader');
    const leader = hosts.leader('f3');
    assert.ok(leader);
    for (let i = 0; i < 20; i++) {
      await hosts.settle(leader.host.propose('f3', enc.encode(`entry-${i}`), { concern: 'majority', timeoutMs: 2_000 }));
    }
    // A third replica joins: the log it needs is compacted away, so it gets the image in chunks.
    const c = hosts.add('c', o);
    c.sm.chunkBytes = 16;
    let consumed = 0;
    let gate: (() => void) | undefined;
    c.sm.onRestoreChunk = () => {
      consumed++;
      return new Promise<void>((r) => (gate = r));
    };
    await c.host.createGroup('f3', { voters: ['a', 'b'], stateMachine: c.sm, join: true });
    const joined = leader.host.changeMembership('f3', { addLearner: 'c' });
    void joined.catch(() => undefined);
    await hosts.until(() => consumed === 1, 3_000, 'the restore to start');
    // The restore is stuck on its first chunk: however long, the leader must not send more than
    // the one chunk it is using and the next.
    for (let i = 0; i < 10; i++) await hosts.clock.advance(10);
    const sentBefore = leader.host.transportStats().requests;
    const chunksIn = chunkRequestsSeen(hosts, 'c');
    assert.ok(chunksIn <= 2, `${chunksIn} chunks arrived while the restore used only one`);
    // Let the restore go on: it finishes, and the learner catches up.
    c.sm.onRestoreChunk = () => Promise.resolve();
    gate?.();
    await hosts.until(() => c.sm.appliedIndex >= leader.sm.appliedIndex, 5_000, 'the learner to catch up');
    assert.deepEqual([...c.sm.entries.values()].filter((v) => v.startsWith('entry-')).length, 20);
    assert.ok(leader.host.transportStats().requests >= sentBefore);
    await hosts.stop();
  });

  it('raft host faults - a peer never heard from shows no last contact, not the time since 1970', async () => {
    const hosts = new MemoryHosts();
    // c is a voter that never started: a and b elect a leader without it.
    for (const id of ['a', 'b']) hosts.add(id);
    for (const id of ['a', 'b']) {
      const n = hosts.node(id);
      await n.host.createGroup('f4', { voters: ['a', 'b', 'c'], stateMachine: n.sm });
    }
    await hosts.until(() => hosts.leader('f4') !== undefined, 5_000, 'a leader');
    const leader = hosts.leader('f4');
    assert.ok(leader);
    const progress = leader.host.status('f4').progress;
    const c = progress.find((p) => p.node === 'c');
    const other = progress.find((p) => p.node !== 'c' && p.node !== leader.id);
    assert.equal(c?.lastContactMs, null);
    assert.ok(other && other.lastContactMs !== null && other.lastContactMs < 1_000, `a live peer was last heard ${other?.lastContactMs} ms ago`);
    await hosts.stop();
  });
});

/** How many snapshot chunks reached `node` (counted by the memory network's arrivals). */
function chunkRequestsSeen(hosts: MemoryHosts, node: string): number {
  return hosts.chunkArrivals.get(node) ?? 0;
}
