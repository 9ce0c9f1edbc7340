/**
 * RaftHost with real parts: three hosts (three ActorSystems, three LMDB environments) in one
 * process over a real nats-server. Each test uses its own group ids.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RaftHost } from '../../src/replication/raft-host.js';
import type { RaftHostOptions } from '../../src/replication/raft-options.js';
import type { RoleChange } from '../../src/replication/raft-state-machine.js';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import { InvalidArgumentError, NotFoundError, NotLeaderError } from '../../src/runtime/errors.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { openNodeEnv, type NodeEnv } from '../../src/storage/node-env.js';
import { ListStateMachine } from '../fixtures/list-state-machine.js';
import { startTestNats } from '../helpers/nats.js';
import { sleep } from '../helpers/raft-cluster.js';

interface Node {
  id: string;
  dir: string;
  env: NodeEnv;
  system: ActorSystem;
  host: RaftHost;
  sms: Map<string, ListStateMachine>;
}

const NODES = ['a', 'b', 'c'];
let server: NatsServer;
const root = mkdtempSync(join(tmpdir(), 'shoal-raft-host-'));
const nodes = new Map<string, Node>();
const enc = new TextEncoder();

async function startNode(id: string, options: Partial<RaftHostOptions> = {}): Promise<Node> {
  const dir = join(root, id);
  const env = openNodeEnv({ path: dir });
  const system = await ActorSystem.connect(server.url, { name: id });
  const host = await RaftHost.start({ system, env, nodeId: id, options: { compactEvery: 50, compactKeep: 5, snapshotChunkBytes: 300, ...options } });
  const n: Node = { id, dir, env, system, host, sms: new Map() };
  nodes.set(id, n);
  return n;
}

async function stopNode(id: string): Promise<void> {
  const n = nodes.get(id);
  if (!n) return;
  nodes.delete(id);
  await n.host.stop();
  await n.system.shutdown();
  await n.env.close();
}

async function createGroup(group: string, members: string[], voters = members, join = false): Promise<void> {
  for (const id of members) {
    const n = nodes.get(id) as Node;
    const sm = new ListStateMachine(n.env, group);
    n.sms.set(group, sm);
    await n.host.createGroup(group, { voters, stateMachine: sm, join });
  }
}

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function leaderOf(group: string): Node | undefined {
  for (const n of nodes.values()) {
    try {
      if (n.host.status(group).role === 'leader') return n;
    } catch {
      // no replica there
    }
  }
  return undefined;
}

const waitLeader = (group: string): Promise<Node> => until(`a leader of ${group}`, () => leaderOf(group));

before(async () => {
  server = await startTestNats({ jetstream: false });
  for (const id of NODES) await startNode(id);
});

after(async () => {
  for (const id of [...nodes.keys()]) await stopNode(id);
  await server.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('raft host', () => {
  it('raft host - three replicas elect a leader and every replica applies the writes in order', async () => {
    await createGroup('rep', NODES);
    const l = await waitLeader('rep');
    for (let i = 0; i < 20; i++) {
      const r = await l.host.propose('rep', enc.encode(`v${i}`), { concern: 'majority', timeoutMs: 5_000 });
      assert.equal(r.result, r.index, 'the state machine result comes back');
    }
    const done = await l.host.propose('rep', enc.encode('last'), { concern: 'all', timeoutMs: 5_000 });
    for (const n of nodes.values()) {
      const list = (n.sms.get('rep') as ListStateMachine).dump().map(([, v]) => new TextDecoder().decode(v));
      assert.deepEqual(list, [...Array.from({ length: 20 }, (_, i) => `v${i}`), 'last'], `replica ${n.id}`);
      assert.ok(n.host.status('rep').appliedIndex >= done.index);
    }
  });

  it('raft host - a follower refuses a write with NotLeaderError naming the leader', async () => {
    await createGroup('nl', NODES);
    const l = await waitLeader('nl');
    await until('followers to know the leader', () => [...nodes.values()].every((n) => n.host.status('nl').leader === l.id));
    const f = [...nodes.values()].find((n) => n !== l) as Node;
    await assert.rejects(f.host.propose('nl', enc.encode('x'), { concern: 'majority', timeoutMs: 1_000 }), (err: unknown) => {
      assert.ok(err instanceof NotLeaderError);
      assert.match(err.message, new RegExp(`the leader is ${l.id}`));
      return true;
    });
    await assert.rejects(f.host.readBarrier('nl', { mode: 'strong', timeoutMs: 1_000 }), NotLeaderError);
  });

  it('raft host - bad input is refused with InvalidArgumentError naming the field and the limit', async () => {
    await createGroup('bad', NODES);
    const l = await waitLeader('bad');
    await assert.rejects(l.host.propose('bad', new Uint8Array(2 * 1024 * 1024), { concern: 'majority', timeoutMs: 1_000 }), (e: unknown) => e instanceof InvalidArgumentError && /data is 2097152 bytes; the limit is \d+ bytes/.test(e.message));
    await assert.rejects(l.host.propose('bad', enc.encode('x'), { concern: 'majority', timeoutMs: -1 }), (e: unknown) => e instanceof InvalidArgumentError && /timeoutMs/.test(e.message));
    await assert.rejects(l.host.propose('bad', enc.encode('x'), { concern: 'most' as 'all', timeoutMs: 100 }), (e: unknown) => e instanceof InvalidArgumentError && /concern/.test(e.message));
    await assert.rejects(l.host.propose('nope', enc.encode('x'), { concern: 'majority', timeoutMs: 100 }), NotFoundError);
    await assert.rejects(l.host.createGroup('a b', { voters: NODES, stateMachine: new ListStateMachine(l.env, 'x') }), /groupId/);
    await assert.rejects(l.host.changeMembership('bad', { addLearner: 'x', remove: 'y' }), /exactly one/);
    // and nothing was corrupted: the group still takes writes
    const r = await l.host.propose('bad', enc.encode('ok'), { concern: 'majority', timeoutMs: 5_000 });
    assert.ok(r.index > 0);
  });

  it('raft host - strong and leased read barriers resolve on the leader once it has applied the read index', async () => {
    await createGroup('rd', NODES);
    const l = await waitLeader('rd');
    const w = await l.host.propose('rd', enc.encode('x'), { concern: 'majority', timeoutMs: 5_000 });
    await l.host.readBarrier('rd', { mode: 'strong', timeoutMs: 2_000 });
    assert.ok(l.host.status('rd').appliedIndex >= w.index);
    await sleep(300); // heartbeats earn the lease
    await l.host.readBarrier('rd', { mode: 'leased', timeoutMs: 2_000 });
  });

  it('raft host - a follower serves a linearizable read: the leader confirms a read index, the follower waits until it has applied it', async () => {
    await createGroup('fr', NODES);
    const l = await waitLeader('fr');
    const f = nodes.get(NODES.find((n) => n !== l.id) as string) as Node;
    // A follower's own read index is refused: only the leader confirms one.
    await assert.rejects(f.host.readIndex('fr', { mode: 'strong', timeoutMs: 1_000 }), NotLeaderError);
    for (const mode of ['strong', 'leased'] as const) {
      const w = await l.host.propose('fr', enc.encode(`x-${mode}`), { concern: 'majority', timeoutMs: 5_000 });
      // The leader answers with the commit index, at least the acknowledged write's, without applying anything more.
      const { index, term } = await l.host.readIndex('fr', { mode, timeoutMs: 2_000 });
      assert.equal(term, l.host.termOf('fr'), 'the answer names the term it was taken in');
      assert.ok(index >= w.index, `${mode}: read index ${index} covers the acknowledged write at ${w.index}`);
      await f.host.waitApplied('fr', index, 2_000);
      assert.ok((f.sms.get('fr') as ListStateMachine).appliedIndex >= w.index, `${mode}: the follower's state machine has applied the write once waitApplied resolves`);
      await sleep(300); // heartbeats earn the lease for the leased round
    }
    // Waiting for an index nobody has reached times out, naming it.
    await assert.rejects(f.host.waitApplied('fr', 1_000_000, 200), (e: unknown) => e instanceof Error && /applying index 1000000/.test(e.message));
    await assert.rejects(f.host.waitApplied('fr', -1, 200), InvalidArgumentError);
  });

  it('raft host - leadership transfer moves the leader and role listeners hear it', async () => {
    await createGroup('tr', NODES);
    const l = await waitLeader('tr');
    await until('a ready leader', () => l.host.status('tr').commitIndex >= 2);
    const target = NODES.find((n) => n !== l.id) as string;
    const heard: RoleChange[] = [];
    const off = (nodes.get(target) as Node).host.onRoleChange('tr', (ev) => heard.push(ev));
    await l.host.transferLeadership('tr', target);
    await until('the target to lead and be ready', () => heard.some((e) => e.role === 'leader' && e.ready));
    off();
    assert.equal((await waitLeader('tr')).id, target);
  });

  it('raft host - a learner added later catches up through a streamed snapshot and is promoted', async () => {
    await createGroup('mem', ['a', 'b'], ['a', 'b']);
    const l = await waitLeader('mem');
    for (let i = 0; i < 120; i++) await l.host.propose('mem', enc.encode(`m${i}`), { concern: 'majority', timeoutMs: 5_000 });
    await until('compaction on the leader', () => l.host.status('mem').firstIndex > 1);
    await l.host.changeMembership('mem', { addLearner: 'c' });
    await createGroup('mem', ['c'], ['a', 'b'], true);
    const c = nodes.get('c') as Node;
    await until('the learner to catch up', () => c.host.status('mem').appliedIndex >= l.host.status('mem').commitIndex);
    assert.equal(c.host.status('mem').role, 'learner');
    assert.ok(c.host.status('mem').firstIndex > 1, 'the learner got a snapshot, not the whole log');
    // the leader promotes no learner it has not heard has something of the log (a blank learner must not vote)
    await until('the leader to know the learner caught up', () => (l.host.status('mem').progress.find((p) => p.node === 'c')?.matchIndex ?? 0) > 0);
    await l.host.changeMembership('mem', { promote: 'c' });
    await until('c to count as a voter', () => c.host.status('mem').voters.includes('c'));
    const r = await l.host.propose('mem', enc.encode('after'), { concern: 'all', timeoutMs: 5_000 });
    const list = (c.sms.get('mem') as ListStateMachine).dump();
    assert.equal(list.length, 121);
    assert.equal(list[list.length - 1]?.[0], r.index);
  });

  it('raft host - a learner joining a group whose log is not compacted gets a snapshot, at the snapshot rate its node allows', async () => {
    await createGroup('rate', ['a', 'b'], ['a', 'b']);
    const l = await waitLeader('rate');
    // 40 entries of 5 KB: fewer than compaction waits for, so the leader still has its whole log.
    for (let i = 0; i < 40; i++) await l.host.propose('rate', enc.encode(`r${i}-`.padEnd(5_000, 'x')), { concern: 'majority', timeoutMs: 5_000 });
    assert.equal(l.host.status('rate').firstIndex, 1);
    const c = nodes.get('c') as Node;
    const rate = 100_000;
    c.host.setSnapshotRate(rate);
    try {
      await createGroup('rate', ['c'], ['a', 'b'], true);
      await l.host.changeMembership('rate', { addLearner: 'c' });
      const started = await until('the snapshot to start', () => c.host.snapshotProgress('rate') ?? false);
      assert.equal(started.totalBytes, null, 'this state machine gives no estimate');
      await until('the snapshot to end', () => c.host.snapshotProgress('rate') === null, 20_000);
      const took = Date.now() - started.startedAt;
      const bytes = c.host.snapshotBytesReceived('rate');
      const expected = (bytes / rate) * 1000;
      assert.ok(bytes > 200_000, `${bytes} bytes`);
      assert.ok(Math.abs(took - expected) <= 0.2 * expected, `${bytes} bytes at ${rate} B/s took ${took} ms, expected ${expected.toFixed(0)} ms`);
      await until('the learner to catch up', () => c.host.status('rate').appliedIndex >= l.host.status('rate').commitIndex);
      assert.ok(c.host.status('rate').firstIndex > 40, 'the learner got a snapshot, not the log from index 1');
    } finally {
      c.host.setSnapshotRate(0);
    }
  });

  it('raft host - a log of large entries is compacted by bytes, long before its count of entries asks for it', async () => {
    const d = await startNode('d', { compactEvery: 10_000, compactKeep: 5, compactBytes: 200_000, compactKeepBytes: 100_000 });
    try {
      await createGroup('bytes', ['d']);
      await waitLeader('bytes');
      // 30 entries of 50 KB: 1.5 MB, far fewer entries than compactEvery
      for (let i = 0; i < 30; i++) await d.host.propose('bytes', enc.encode(`b${i}-`.padEnd(50_000, 'x')), { concern: 'majority', timeoutMs: 5_000 });
      await until('compaction by bytes', () => d.host.status('bytes').firstIndex > 1);
      const st = d.host.status('bytes');
      // at most compactBytes before the tail and the tail (the shorter of 100 KB and 5 entries), and one entry more each
      const held = st.lastIndex - st.firstIndex + 1;
      assert.ok(held <= 200_000 / 50_000 + 100_000 / 50_000 + 2, `the log holds ${held} entries of 50 KB`);
      await until('every entry applied', () => (d.sms.get('bytes') as ListStateMachine).dump().length === 30);
    } finally {
      await stopNode('d');
    }
  });

  it('raft host - compaction by bytes keeps the entries a stopped follower needs, and it catches up from them', async () => {
    const opts = { compactEvery: 10_000, compactKeep: 5, compactBytes: 200_000, compactKeepBytes: 100_000 };
    for (const id of ['e', 'f', 'g']) await startNode(id, opts);
    try {
      await createGroup('hold', ['e', 'f', 'g']);
      const l = await waitLeader('hold');
      await l.host.propose('hold', enc.encode('first'), { concern: 'all', timeoutMs: 5_000 });
      const lagger = ['e', 'f', 'g'].find((id) => id !== l.id) as string;
      const match = (nodes.get(lagger) as Node).host.status('hold').appliedIndex;
      await stopNode(lagger);
      // 12 entries of 50 KB (600 KB): three times compactBytes, within HOLD_FACTOR (4) times it
      for (let i = 0; i < 12; i++) await l.host.propose('hold', enc.encode(`h${i}-`.padEnd(50_000, 'x')), { concern: 'majority', timeoutMs: 5_000 });
      await until('the entries applied on the leader', () => (l.sms.get('hold') as ListStateMachine).dump().length === 13);
      await sleep(300);
      const st = l.host.status('hold');
      assert.ok(st.firstIndex <= match + 1, `the leader compacted to ${st.firstIndex - 1}, past the stopped follower's ${match}`);
      const n = await startNode(lagger, opts);
      const sm = new ListStateMachine(n.env, 'hold');
      n.sms.set('hold', sm);
      await n.host.createGroup('hold', { voters: ['zzz'], stateMachine: sm });
      await until('the follower caught up', () => sm.dump().length === 13);
      // the bytes rule still bounds the log once the follower has what it needed
      await l.host.propose('hold', enc.encode('last'.padEnd(50_000, 'x')), { concern: 'all', timeoutMs: 5_000 });
      await until('the log compacted by bytes', () => l.host.status('hold').firstIndex > match + 1);
    } finally {
      for (const id of ['e', 'f', 'g']) await stopNode(id);
    }
  });

  it('raft host - idle groups quiesce and a write wakes them', async () => {
    const groups = Array.from({ length: 10 }, (_, i) => `q${i}`);
    for (const g of groups) await createGroup(g, NODES);
    for (const g of groups) await waitLeader(g);
    await until('every replica of every group to quiesce', () => groups.every((g) => NODES.every((id) => (nodes.get(id) as Node).host.status(g).quiesced)), 15_000);
    const l = leaderOf('q0') as Node;
    const r = await l.host.propose('q0', enc.encode('wake'), { concern: 'majority', timeoutMs: 5_000 });
    assert.ok(r.index > 0);
  });

  it('raft host - a restarted node reopens its groups from LMDB and keeps its data', async () => {
    await createGroup('rs', NODES);
    const l = await waitLeader('rs');
    for (let i = 0; i < 5; i++) await l.host.propose('rs', enc.encode(`r${i}`), { concern: 'all', timeoutMs: 5_000 });
    const victim = NODES.find((n) => n !== l.id) as string;
    const before = (nodes.get(victim) as Node).host.status('rs');
    await stopNode(victim);
    await l.host.propose('rs', enc.encode('while down'), { concern: 'majority', timeoutMs: 5_000 });
    const n = await startNode(victim);
    // the groups it had are reopened from their stored state (voters here are ignored)
    for (const g of ['rep', 'nl', 'bad', 'rd', 'tr', 'mem', 'rs', ...Array.from({ length: 10 }, (_, i) => `q${i}`)]) {
      const sm = new ListStateMachine(n.env, g);
      n.sms.set(g, sm);
      await n.host.createGroup(g, { voters: ['zzz'], stateMachine: sm });
    }
    assert.ok(n.host.status('rs').lastIndex >= before.lastIndex);
    await until('the restarted replica to catch up', () => n.host.status('rs').appliedIndex >= l.host.status('rs').commitIndex);
    // The list's LMDB puts commit asynchronously after apply: wait for them rather than race them
    // (read too early under load, the last entry was missing).
    const sm = n.sms.get('rs') as ListStateMachine;
    await until('the applied entries to be committed to LMDB', () => sm.dump().length >= 6);
    const list = sm.dump().map(([, v]) => new TextDecoder().decode(v));
    assert.deepEqual(list, ['r0', 'r1', 'r2', 'r3', 'r4', 'while down']);
  });
});
