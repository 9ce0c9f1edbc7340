/** A replica actor under a ManualClock, with stand-ins for its shard store and Raft group. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { replicaBehavior, type ReplicaResources } from '../../src/actors/replica/replica-actor.js';
import type { Requester } from '../../src/actors/router/shard-client.js';
import { anyReplicaSubject, type ReadIndexResult } from '../../src/actors/shard-protocol.js';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { createLogger } from '../../src/runtime/logger.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';

let server: NatsServer;
let sys: ActorSystem;
const clock = new ManualClock(1_000_000);

before(async () => {
  server = await startTestNats();
  sys = await ActorSystem.connect(server.url, { name: 'n1', clock, log: createLogger({}, 'silent') });
});

after(async () => {
  await sys.shutdown();
  await server.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('replica actor', () => {
  it('replica actor - a follower read waits to apply the leader read index only for what is left of its deadline on the clock', async () => {
    let answerReadIndex: ((r: ReadIndexResult) => void) | undefined;
    const waits: number[] = [];
    const requester: Requester = {
      request: <R>() => new Promise<R>((resolve) => (answerReadIndex = resolve as (r: ReadIndexResult) => void)),
    };
    const resources: ReplicaResources = {
      store: { appliedIndex: 7, count: () => 3, search: () => Promise.resolve([]), get: () => Promise.resolve([]) },
      group: {
        propose: () => Promise.reject(new Error('not used')),
        readBarrier: () => Promise.reject(new Error('not used')),
        readIndex: () => Promise.reject(new Error('not used')),
        term: () => 1,
        waitApplied: (_index, timeoutMs) => {
          waits.push(timeoutMs);
          return Promise.resolve();
        },
        leaseRead: () => undefined,
        onRoleChange: (listener) => {
          listener({ role: 'follower', term: 1, leader: 'n2', ready: false });
          return () => undefined;
        },
        status: () => {
          throw new Error('not used');
        },
        transferLeadership: () => Promise.reject(new Error('not used')),
        changeMembership: () => Promise.reject(new Error('not used')),
      },
      parseFilter: (f) => f,
      close: () => Promise.resolve(),
    };
    sys.spawn('replica.u.0', replicaBehavior({
      node: 'n1', uid: 'u', shard: 0, collection: 'c', dim: 2, metric: 'l2', hnsw: { m: 16, efConstruction: 200, ef: 64 },
      subjects: sys.subjects, requester, coordinatorEpoch: () => 0, open: () => Promise.resolve(resources), announce: () => undefined,
    }));
    const subject = anyReplicaSubject(sys.subjects, 'u', 0);
    for (let i = 0; i < 200 && !sys.servesLocally(subject); i++) await sleep(5);
    const count = sys.request<{ count: number }>(subject, { type: 'count', consistency: 'strong', timeoutMs: 1_000 }, { timeoutMs: 5_000 });
    for (let i = 0; i < 200 && !answerReadIndex; i++) await sleep(5);
    assert.ok(answerReadIndex, 'the follower asked the leader for a read index');
    // the leader takes 400 ms (on the system's clock) to confirm the read index
    await clock.advance(400);
    answerReadIndex({ index: 7, term: 1 });
    assert.deepEqual(await count, { count: 3 });
    // 1000 ms asked, less the 5 ms kept for the answer's trip back, less the 400 ms spent
    assert.deepEqual(waits, [595]);
  });
});
