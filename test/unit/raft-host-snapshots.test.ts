/**
 * How the Raft host brings a new member in by snapshot: a learner that starts empty gets the
 * leader's state machine image (never a replay of the log from index 1), at the rate the
 * receiving node allows, with its progress visible while it arrives. Real hosts on in-memory
 * ports and a manual clock (test/helpers/memory-hosts.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError, NotFoundError } from '../../src/runtime/errors.js';
import { MemoryHosts, MemoryStateMachine, type MemoryNode } from '../helpers/memory-hosts.js';

const enc = new TextEncoder();

interface World {
  hosts: MemoryHosts;
  c: MemoryNode;
  /** Each node's state machine of each group (a node's groups cannot share one). */
  sm(node: string, group: string): MemoryStateMachine;
}

/**
 * Voters a and b of each group with `writes` entries of `size` bytes each, and an empty node c;
 * state machine images come in pieces of `o.snapshotChunkBytes` (default 16).
 */
async function groupsWithData(groups: string[], writes: number, size: number, o: Parameters<MemoryHosts['add']>[1] = {}): Promise<World> {
  const hosts = new MemoryHosts();
  const sms = new Map<string, MemoryStateMachine>();
  const sm = (node: string, group: string): MemoryStateMachine => {
    let m = sms.get(`${node}/${group}`);
    if (!m) {
      sms.set(`${node}/${group}`, (m = new MemoryStateMachine()));
      m.chunkBytes = o.snapshotChunkBytes ?? 16;
    }
    return m;
  };
  for (const id of ['a', 'b']) hosts.add(id, o);
  for (const g of groups) {
    for (const id of ['a', 'b']) await hosts.node(id).host.createGroup(g, { voters: ['a', 'b'], stateMachine: sm(id, g) });
  }
  for (const g of groups) {
    await hosts.until(() => hosts.leader(g) !== undefined, 5_000, `a leader of ${g}`);
    const leader = hosts.leader(g) as MemoryNode;
    for (let i = 0; i < writes; i++) {
      await hosts.settle(leader.host.propose(g, enc.encode(`${g}-${i}-`.padEnd(size, 'x')), { concern: 'majority', timeoutMs: 2_000 }));
    }
  }
  return { hosts, c: hosts.add('c', o), sm };
}

/** Adds c to `g` as a learner (created with join, as a coordinator does). */
async function addLearner(w: World, g: string): Promise<void> {
  const leader = w.hosts.leader(g) as MemoryNode;
  await w.c.host.createGroup(g, { voters: ['a', 'b'], stateMachine: w.sm('c', g), join: true });
  void leader.host.changeMembership(g, { addLearner: 'c' }).catch(() => undefined);
}

/**
 * Moves time on until c's replica of each group has received its snapshot and caught up;
 * returns when the first began (or when this was called, if none was seen under way) and when
 * the last was caught up, on the manual clock, and the progress seen on the way.
 */
async function watch(w: World, groups: string[], maxMs = 20_000): Promise<{ start: number; end: number; samples: { bytes: number; totalBytes: number | null }[] }> {
  const { hosts, c } = w;
  let start = hosts.clock.now();
  const samples: { bytes: number; totalBytes: number | null }[] = [];
  await hosts.until(() => {
    for (const g of groups) {
      const p = c.host.snapshotProgress(g);
      if (p) {
        start = Math.min(start, p.startedAt);
        samples.push({ bytes: p.bytes, totalBytes: p.totalBytes });
      }
    }
    return groups.every((g) => c.host.snapshotProgress(g) === null && c.host.status(g).appliedIndex >= (hosts.leader(g)?.host.status(g).commitIndex ?? Infinity));
  }, maxMs, 'the learner to catch up');
  return { start, end: hosts.clock.now(), samples };
}

describe('raft host snapshots', () => {
  it('raft host snapshots - a restore that loads for longer than the stall timeout still ends caught up, and later writes apply (no second restore left hanging)', async () => {
    const w = await groupsWithData(['g'], 30, 40);
    const stallMs = w.c.host.opts.snapshotStallMs;
    const learner = w.sm('c', 'g');
    // every chunk is in long before; loading them takes three stall timeouts
    learner.onRestoreEnd = () => new Promise((r) => w.hosts.clock.setTimer(r, 3 * stallMs));
    await addLearner(w, 'g');
    await watch(w, ['g'], 30 * stallMs);
    const leader = w.hosts.leader('g') as MemoryNode;
    for (let i = 0; i < 5; i++) await w.hosts.settle(leader.host.propose('g', enc.encode(`after-${i}`), { concern: 'majority', timeoutMs: 2_000 }));
    await w.hosts.until(() => w.c.host.status('g').appliedIndex >= leader.host.status('g').commitIndex, 10 * stallMs, 'the learner applies the writes after its restore');
    assert.deepEqual([...learner.entries.values()].slice(-5), ['after-0', 'after-1', 'after-2', 'after-3', 'after-4']);
    assert.equal(learner.restores, 1, 'one restore: a new stream waited for the one loading');
  });

  it('raft host snapshots - a learner that starts empty is caught up by a snapshot, with no replay of the log from index 1', async () => {
    const w = await groupsWithData(['n1'], 30, 20);
    const { hosts, c } = w;
    const leader = hosts.leader('n1') as MemoryNode;
    assert.equal(leader.host.status('n1').firstIndex, 1, 'the leader\'s log is not compacted: no snapshot is forced by compaction');
    await addLearner(w, 'n1');
    await watch(w, ['n1']);
    const sm = w.sm('c', 'n1');
    assert.equal(sm.restores, 1, 'one restore');
    const writes = [...sm.entries.values()].filter((v) => v.startsWith('n1-'));
    assert.equal(writes.length, 30, 'every write is in the learner\'s state machine');
    const first = sm.appliedIndexes[0];
    assert.ok(first === undefined || first > 30, `the learner applied entry ${first} itself: a replay`);
    assert.ok(c.host.status('n1').firstIndex > 30, 'the learner\'s log starts after the snapshot');
    assert.equal(c.host.status('n1').role, 'learner');
    assert.ok(c.host.snapshotBytesReceived('n1') > 30 * 20, `${c.host.snapshotBytesReceived('n1')} bytes received`);
    // It then takes the log like any member.
    const after = await hosts.settle(leader.host.propose('n1', enc.encode('after'), { concern: 'all', timeoutMs: 2_000 }));
    assert.equal(sm.entries.get(after.index), 'after');
    await hosts.stop();
  });

  it('raft host snapshots - progress shows bytes received out of the sender\'s estimate, and status carries it', async () => {
    const w = await groupsWithData(['p1'], 20, 100, { snapshotChunkBytes: 256 });
    const { hosts, c } = w;
    w.sm('c', 'p1').onRestoreChunk = () => new Promise<void>((r) => hosts.clock.setTimer(r, 10));
    const leader = hosts.leader('p1') as MemoryNode;
    const image = (await w.sm(leader.id, 'p1').snapshot()).bytes;
    await addLearner(w, 'p1');
    await hosts.until(() => {
      const s = c.host.status('p1').snapshot;
      return s !== null && s !== undefined && s.bytes > 0 && s.bytes < image && s.totalBytes === image;
    }, 5_000, 'a snapshot under way, shown in status');
    const mid = c.host.snapshotProgress('p1');
    assert.ok(mid, 'progress while receiving');
    assert.equal(mid.totalBytes, image, 'the total is the sender\'s estimate (exact for this state machine)');
    assert.ok(mid.bytes > 0 && mid.bytes < image);
    assert.ok(mid.startedAt <= hosts.clock.now());
    const { samples } = await watch(w, ['p1']);
    for (let k = 1; k < samples.length; k++) assert.ok((samples[k] as { bytes: number }).bytes >= (samples[k - 1] as { bytes: number }).bytes, 'bytes only grow');
    assert.equal(c.host.snapshotProgress('p1'), null, 'none once installed');
    assert.equal(c.host.status('p1').snapshot, null);
    assert.equal(c.host.snapshotBytesReceived('p1'), image);
    await hosts.stop();
  });

  it('raft host snapshots - with a rate set, a snapshot of N bytes takes N / rate (manual clock)', async () => {
    const o = { snapshotChunkBytes: 4096 };
    const unlimited = await groupsWithData(['r0'], 50, 1000, o);
    await addLearner(unlimited, 'r0');
    const free = await watch(unlimited, ['r0']);
    await unlimited.hosts.stop();

    const w = await groupsWithData(['r1'], 50, 1000, o);
    const rate = 40_000;
    w.c.host.setSnapshotRate(rate);
    await addLearner(w, 'r1');
    const t = await watch(w, ['r1']);
    const n = w.c.host.snapshotBytesReceived('r1');
    const expected = (n / rate) * 1000;
    const took = t.end - t.start;
    assert.ok(n > 50_000, `${n} bytes`);
    assert.ok(Math.abs(took - expected) <= 0.1 * expected, `${n} bytes at ${rate} B/s took ${took} ms; expected ${expected.toFixed(0)} ms`);
    assert.ok(free.end - free.start < 0.1 * expected, `unlimited, it took ${free.end - free.start} ms`);
    assert.equal(w.sm('c', 'r1').restores, 1, 'the stream was never aborted');
    await w.hosts.stop();
  });

  it('raft host snapshots - the rate is shared by all the groups a node receives snapshots for', async () => {
    const w = await groupsWithData(['s1', 's2'], 30, 1000, { snapshotChunkBytes: 4096 });
    const rate = 40_000;
    w.c.host.setSnapshotRate(rate);
    await addLearner(w, 's1');
    await addLearner(w, 's2');
    const t = await watch(w, ['s1', 's2']);
    const n1 = w.c.host.snapshotBytesReceived('s1');
    const n2 = w.c.host.snapshotBytesReceived('s2');
    assert.ok(n1 > 30_000 && n2 > 30_000, `${n1} and ${n2} bytes`);
    const expected = ((n1 + n2) / rate) * 1000;
    const took = t.end - t.start;
    assert.ok(Math.abs(took - expected) <= 0.1 * expected, `${n1 + n2} bytes over two groups at ${rate} B/s took ${took} ms; expected ${expected.toFixed(0)} ms`);
    assert.equal(w.sm('c', 's1').restores + w.sm('c', 's2').restores, 2);
    await w.hosts.stop();
  });

  it('raft host snapshots - below chunkBytes / (stallMs / 2) each wait is capped, so the stream never stalls out', async () => {
    // stallMs is 600 ms here (10 election timeouts of 6 ticks of 10 ms): waits are capped at 300 ms.
    const w = await groupsWithData(['c1'], 20, 1000, { snapshotChunkBytes: 4096 });
    w.c.host.setSnapshotRate(1_000);
    await addLearner(w, 'c1');
    const t = await watch(w, ['c1'], 60_000);
    const n = w.c.host.snapshotBytesReceived('c1');
    const chunks = Math.ceil(n / 4096);
    assert.equal(w.sm('c', 'c1').restores, 1, 'one stream, never aborted');
    const took = t.end - t.start;
    assert.ok(took >= (chunks - 1) * 300 && took <= (chunks + 1) * 300 + 100, `${chunks} chunks took ${took} ms: about 300 ms each, not ${n} ms`);
    await w.hosts.stop();
  });

  it('raft host snapshots - setSnapshotRate refuses a negative or non-finite rate; unknown groups are NotFound', async () => {
    const hosts = new MemoryHosts();
    const a = hosts.add('a');
    assert.throws(() => a.host.setSnapshotRate(-1), InvalidArgumentError);
    assert.throws(() => a.host.setSnapshotRate(Number.NaN), InvalidArgumentError);
    assert.throws(() => a.host.setSnapshotRate(Infinity), InvalidArgumentError);
    a.host.setSnapshotRate(0);
    assert.throws(() => a.host.snapshotProgress('nope'), NotFoundError);
    assert.throws(() => a.host.snapshotBytesReceived('nope'), NotFoundError);
    await hosts.stop();
  });
});
