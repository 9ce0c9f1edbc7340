/** A replica actor under a ManualClock, with stand-ins for its shard store and Raft group. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { replicaBehavior, type ReplicaResources } from '../../src/actors/replica/replica-actor.js';
import { FOLLOWER_READ_MAX_LAG, FOLLOWER_READ_MAX_WAIT_MS } from '../../src/actors/replica/replica-requests.js';
import type { Requester } from '../../src/actors/router/shard-client.js';
import { anyReplicaSubject, leaderSubject, type ReadIndexResult } from '../../src/actors/shard-protocol.js';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { NotLeaderError, TimeoutError, UnavailableError } from '../../src/runtime/errors.js';
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

type StandInGroup = ReplicaResources['group'];

/** A Raft group stand-in: what a test does not give throws or rejects "not used". */
function standInGroup(role: { role: 'leader' | 'follower'; leader: string; ready: boolean }, given: Partial<StandInGroup>): StandInGroup {
  return {
    propose: () => Promise.reject(new Error('not used')),
    readBarrier: () => Promise.reject(new Error('not used')),
    readIndex: () => Promise.reject(new Error('not used')),
    followerReadIndex: () => Promise.reject(new Error('not used')),
    term: () => 1,
    waitApplied: () => Promise.resolve(),
    leaseRead: () => undefined,
    health: () => ({ health: 'ok', why: null }),
    onRoleChange: (listener) => {
      listener({ ...role, term: 1 });
      return () => undefined;
    },
    status: () => {
      throw new Error('not used');
    },
    transferLeadership: () => Promise.reject(new Error('not used')),
    changeMembership: () => Promise.reject(new Error('not used')),
    ...given,
  };
}

describe('replica actor', () => {
  /** A follower replica `replica.<uid>.0` whose Raft group gets its leader's read indexes by `answerReadIndex`, with `waitApplied` and the applied index given. */
  async function follower(uid: string, appliedIndex: number, waitApplied: (index: number, timeoutMs: number) => Promise<void>): Promise<{ subject: string; readIndex: () => Promise<(r: ReadIndexResult) => void> }> {
    let answerReadIndex: ((r: ReadIndexResult) => void) | undefined;
    const requester: Requester = {
      request: () => Promise.reject(new Error('not used')),
    };
    const resources: ReplicaResources = {
      store: { appliedIndex, servingEpoch: 0, reshard: null, pull: () => { throw new Error('not used'); }, count: () => 3, search: () => Promise.resolve([]), get: () => Promise.resolve([]) },
      group: standInGroup({ role: 'follower', leader: 'n2', ready: false }, {
        followerReadIndex: () => new Promise<ReadIndexResult>((resolve) => (answerReadIndex = resolve)),
        waitApplied,
      }),
      parseFilter: (f) => f,
      close: () => Promise.resolve(),
    };
    sys.spawn(`replica.${uid}.0`, replicaBehavior({
      node: 'n1', uid, shard: 0, collection: 'c', dim: 2, metric: 'l2', hnsw: { m: 16, efConstruction: 200, ef: 64 },
      subjects: sys.subjects, requester, coordinatorEpoch: () => 0, open: () => Promise.resolve(resources), announce: () => undefined,
    }));
    const subject = anyReplicaSubject(sys.subjects, uid, 0);
    for (let i = 0; i < 200 && !sys.servesLocally(subject); i++) await sleep(5);
    return {
      subject,
      async readIndex() {
        for (let i = 0; i < 200 && !answerReadIndex; i++) await sleep(5);
        assert.ok(answerReadIndex, 'the follower asked the leader for a read index');
        const answer = answerReadIndex;
        answerReadIndex = undefined;
        return answer;
      },
    };
  }

  it('replica actor - a follower read waits to apply the leader read index only for what is left of its deadline on the clock', async () => {
    const waits: number[] = [];
    const f = await follower('u', 7, (_index, timeoutMs) => {
      waits.push(timeoutMs);
      return Promise.resolve();
    });
    const count = sys.request<{ count: number }>(f.subject, { type: 'count', consistency: 'strong', timeoutMs: 1_000 }, { timeoutMs: 5_000 });
    const answerReadIndex = await f.readIndex();
    // the leader takes 400 ms (on the system's clock) to confirm the read index
    await clock.advance(400);
    answerReadIndex({ index: 7, term: 1 });
    assert.deepEqual(await count, { count: 3 });
    // 1000 ms asked, less the 5 ms kept for the answer's trip back, less the 400 ms spent
    assert.deepEqual(waits, [595]);
  });

  it('replica actor - a follower far behind, or that does not apply within a second, answers UNAVAILABLE so that the router asks the leader', async () => {
    const waits: number[] = [];
    const f = await follower('v', 100, (index, timeoutMs) => {
      waits.push(timeoutMs);
      return Promise.reject(new TimeoutError(`index ${index} not applied within ${timeoutMs} ms`));
    });
    const ask = () => sys.request<{ count: number }>(f.subject, { type: 'count', consistency: 'strong', timeoutMs: 10_000 }, { timeoutMs: 5_000 });
    // 1,001 entries behind: no wait at all
    const far = ask();
    (await f.readIndex())({ index: 100 + FOLLOWER_READ_MAX_LAG + 1, term: 1 });
    await assert.rejects(far, (e: unknown) => e instanceof UnavailableError && /1001 entries behind the leader; ask the leader/.test(e.message));
    assert.deepEqual(waits, []);
    // near, but applying slowly: a second, not the 10 s of the request
    const slow = ask();
    (await f.readIndex())({ index: 150, term: 1 });
    await assert.rejects(slow, (e: unknown) => e instanceof UnavailableError && /did not apply up to the leader's read index 150 within 1000 ms \(it is at 100\); ask the leader/.test(e.message));
    assert.deepEqual(waits, [FOLLOWER_READ_MAX_WAIT_MS]);
  });

  /** A leader replica `replica.<uid>.0` whose Raft group's proposals wait until the test settles them. */
  async function leader(uid: string): Promise<{ subject: string; proposals: { settle: (v: unknown, fail?: Error) => void }[] }> {
    const proposals: { settle: (v: unknown, fail?: Error) => void }[] = [];
    const resources: ReplicaResources = {
      store: { appliedIndex: 1, servingEpoch: 0, reshard: null, pull: () => { throw new Error('not used'); }, count: () => 0, search: () => Promise.resolve([]), get: () => Promise.resolve([]) },
      group: standInGroup({ role: 'leader', leader: 'n1', ready: true }, {
        propose: () => new Promise((resolve, reject) => proposals.push({ settle: (v, fail) => (fail ? reject(fail) : resolve({ index: proposals.length, result: v })) })),
      }),
      parseFilter: (f) => f,
      close: () => Promise.resolve(),
    };
    const requester: Requester = { request: () => Promise.reject(new Error('not used')) };
    sys.spawn(`replica.${uid}.0`, replicaBehavior({
      node: 'n1', uid, shard: 0, collection: 'c', dim: 2, metric: 'l2', hnsw: { m: 16, efConstruction: 200, ef: 64 },
      subjects: sys.subjects, requester, coordinatorEpoch: () => 0, open: () => Promise.resolve(resources), announce: () => undefined,
    }));
    const subject = leaderSubject(sys.subjects, uid, 0);
    for (let i = 0; i < 200 && !sys.servesLocally(subject); i++) await sleep(5);
    return { subject, proposals };
  }

  it('replica actor - a copy of a write still being proposed waits for the first instead of logging a second entry', async () => {
    const l = await leader('w');
    const write = (requestId: string) =>
      sys.request<{ upserted: number }>(l.subject, { type: 'write', write: { op: 'upsert', points: [{ id: 'a', vector: new Float32Array([1, 2]) }] }, requestId, concern: 'majority', timeoutMs: 5_000 }, { timeoutMs: 5_000 });
    const waitProposals = async (n: number) => {
      for (let i = 0; i < 200 && l.proposals.length < n; i++) await sleep(5);
      await sleep(20);
      assert.equal(l.proposals.length, n);
    };
    // a hedged copy arrives while the first is in flight: one proposal, both answered by it
    const first = write('r1');
    await waitProposals(1);
    const copy = write('r1');
    const other = write('r2');
    await waitProposals(2);
    l.proposals[0]!.settle({ upserted: 1 });
    assert.deepEqual(await first, { upserted: 1 });
    assert.deepEqual(await copy, { upserted: 1 });
    l.proposals[1]!.settle({ upserted: 1 });
    assert.deepEqual(await other, { upserted: 1 });
    // a copy after the first answered proposes again (the apply-time dedup answers it)
    const late = write('r1');
    await waitProposals(3);
    l.proposals[2]!.settle({ upserted: 1 });
    assert.deepEqual(await late, { upserted: 1 });
    // the first fails (leadership lost): a copy waiting for it proposes its own
    const failing = write('r3');
    await waitProposals(4);
    const retry = write('r3');
    await sleep(20);
    l.proposals[3]!.settle(undefined, new NotLeaderError('lost leadership'));
    await assert.rejects(failing, NotLeaderError);
    await waitProposals(5);
    l.proposals[4]!.settle({ upserted: 1 });
    assert.deepEqual(await retry, { upserted: 1 });
  });
});
