/**
 * The host's durability rule on the wire: a node sends nothing that promises durability (a vote,
 * a pre-vote, an append or heartbeat acknowledgement) before the writes of the turn that made
 * it are flushed. Three hosts over a real nats-server; node `d`'s store holds its flushes until
 * the test lets them go, and a wildcard subscription sees every message on the server, requests
 * and replies alike.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import { RaftHost } from '../../src/replication/raft-host.js';
import type { Message, SnapshotMeta } from '../../src/raft/types.js';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import { decodeCbor } from '../../src/runtime/codec.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { LmdbRaftLogStore } from '../../src/storage/lmdb-raft-log-store.js';
import { openNodeEnv, type NodeEnv } from '../../src/storage/node-env.js';
import type { PersistedRaftState, RaftLogStore, RaftWrites } from '../../src/storage/raft-log-store.js';
import { ListStateMachine } from '../fixtures/list-state-machine.js';
import { connectTo, startTestNats } from '../helpers/nats.js';
import { sleep } from '../helpers/raft-cluster.js';

/** The LMDB store, except that `flushed()` does not resolve while the test holds it. */
class HeldStore implements RaftLogStore {
  private held = false;
  private readonly waiting: (() => void)[] = [];
  /** The highest entry index saved, and the highest one a resolved flush covers. */
  private saved = 0;
  durable = 0;
  constructor(private readonly inner: RaftLogStore) {}
  hold(): void {
    this.held = true;
  }
  release(): void {
    this.held = false;
    for (const w of this.waiting.splice(0)) w();
  }
  load(group: string): PersistedRaftState | undefined {
    return this.inner.load(group);
  }
  init(group: string, state: PersistedRaftState): void {
    this.inner.init(group, state);
  }
  save(group: string, w: RaftWrites): void {
    this.inner.save(group, w);
    for (const e of w.entries) this.saved = Math.max(this.saved, e.index);
  }
  compact(group: string, meta: SnapshotMeta): void {
    this.inner.compact(group, meta);
  }
  removeGroup(group: string): void {
    this.inner.removeGroup(group);
  }
  groups(): string[] {
    return this.inner.groups();
  }
  flushed(): Promise<void> {
    const covers = this.saved;
    const p = this.inner.flushed();
    const done = (): void => {
      this.durable = Math.max(this.durable, covers);
    };
    if (!this.held) return p.then(done);
    return new Promise((resolve, reject) => this.waiting.push(() => p.then(() => resolve(done()), reject)));
  }
}

interface Node {
  env: NodeEnv;
  system: ActorSystem;
  host: RaftHost;
}

let server: NatsServer;
let snoop: NatsConnection;
const root = mkdtempSync(join(tmpdir(), 'shoal-raft-durability-'));
const nodes = new Map<string, Node>();
let held: HeldStore;
/** The append acknowledgements `d` sent, with the index its flushes covered when each was seen. */
const acksFromD: { index: number; durable: number }[] = [];

before(async () => {
  server = await startTestNats({ jetstream: false });
  snoop = await connectTo(server);
  snoop.subscribe('>', {
    callback: (_err, msg) => {
      let wire: unknown;
      try {
        wire = decodeCbor(msg.data);
      } catch {
        return;
      }
      const w = wire as { k?: string; from?: string; msgs?: [string, Message][] };
      if (w?.k !== 'batch' || w.from !== 'd' || !Array.isArray(w.msgs)) return;
      for (const [, m] of w.msgs) if (m.type === 'appResp' && !m.reject) acksFromD.push({ index: m.index, durable: held.durable });
    },
  });
  await snoop.flush();
  for (const id of ['a', 'b', 'd']) {
    const env = openNodeEnv({ path: join(root, id) });
    const system = await ActorSystem.connect(server.url, { name: id });
    let store: RaftLogStore = new LmdbRaftLogStore(env);
    if (id === 'd') store = held = new HeldStore(store);
    const host = await RaftHost.start({ system, store, nodeId: id });
    nodes.set(id, { env, system, host });
  }
});

after(async () => {
  held.release();
  for (const n of nodes.values()) {
    await n.host.stop();
    await n.system.shutdown();
    await n.env.close();
  }
  await snoop.close();
  await server.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('raft durability', () => {
  it('raft durability - no vote or append acknowledgement leaves a node before its writes are flushed', async () => {
    const voters = ['a', 'b', 'd'];
    for (const n of nodes.values()) await n.host.createGroup('g', { voters, stateMachine: new ListStateMachine(n.env, 'g') });
    const readyLeader = async (): Promise<[string, Node]> => {
      for (let i = 0; i < 400; i++) {
        const found = [...nodes.entries()].find(([, n]) => n.host.roleOf('g').role === 'leader' && n.host.roleOf('g').ready);
        if (found) return found;
        await sleep(25);
      }
      throw new Error('no leader of g within 10 s');
    };
    let [leaderId, leader] = await readyLeader();
    if (leaderId === 'd') {
      await leader.host.transferLeadership('g', 'a');
      [leaderId, leader] = await readyLeader();
    }
    assert.notEqual(leaderId, 'd', 'a or b leads: they are a majority without d');
    const l = leader;
    const enc = new TextEncoder();
    const dMatch = (): number => l.host.status('g').progress.find((p) => p.node === 'd')?.matchIndex ?? 0;
    for (let i = 0; i < 3; i++) await l.host.propose('g', enc.encode(`before ${i}`), { concern: 'majority', timeoutMs: 5_000 });
    for (let i = 0; i < 100 && dMatch() < l.host.status('g').lastIndex; i++) await sleep(20);
    assert.equal(dMatch(), l.host.status('g').lastIndex, 'd acknowledged the first writes once they were flushed');

    held.hold();
    const acked = dMatch();
    for (let i = 0; i < 10; i++) await l.host.propose('g', enc.encode(`held ${i}`), { concern: 'majority', timeoutMs: 5_000 });
    await sleep(500);
    assert.equal(dMatch(), acked, 'the leader counts nothing d has not flushed');
    assert.ok((nodes.get('d')?.host.status('g').lastIndex ?? 0) >= acked + 10, 'd did receive and write the entries');

    held.release();
    for (let i = 0; i < 150 && dMatch() < l.host.status('g').lastIndex; i++) await sleep(20);
    assert.equal(dMatch(), l.host.status('g').lastIndex, 'once flushed, d acknowledges them');
    assert.ok(acksFromD.some((a) => a.index >= acked + 10), 'the acknowledgement was seen on the wire');
    assert.deepEqual(acksFromD.filter((a) => a.index > a.durable), [], 'd never acknowledged an entry its flushes did not cover');
  });
});
