import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Hit } from '../../src/api/types.js';
import { mergeHits } from '../../src/actors/router/merge.js';
import { callShard, localReadAttemptMs, type Requester } from '../../src/actors/router/shard-client.js';
import { ManualClock, type Clock } from '../../src/runtime/clock.js';
import { InvalidArgumentError, NoRespondersError, NotLeaderError, StaleMapError, TimeoutError, UnavailableError } from '../../src/runtime/errors.js';

const h = (id: string, distance: number): Hit => ({ id, distance });
// Real time, with timers that keep the process alive (RealClock's do not; in a node its NATS connection does).
const real: Clock = {
  now: () => Date.now(),
  setTimer(fn, delayMs) {
    const t = setTimeout(fn, delayMs);
    return { cancel: () => clearTimeout(t) };
  },
};

describe('router logic', () => {
  it('merge - sorts by distance then id by UTF-8 bytes, drops repeated ids, keeps k', () => {
    const merged = mergeHits([[h('b', 0.2), h('z', 0.5)], [h('a', 0.2), h('b', 0.3), h('é', 0.1)], [h('🐟', 0.2), h('\uffff', 0.2)]], 5);
    assert.deepEqual(merged.map((x) => [x.id, x.distance]), [['é', 0.1], ['a', 0.2], ['b', 0.2], ['\uffff', 0.2], ['🐟', 0.2]]);
    assert.deepEqual(mergeHits([], 3), []);
  });

  // A scripted requester: each call takes the next outcome.
  function scripted(outcomes: (() => unknown)[]): Requester & { calls: number; subjects: string[] } {
    const r = {
      calls: 0,
      subjects: [] as string[],
      request<R>(subject: string): Promise<R> {
        r.subjects.push(subject);
        const next = outcomes[r.calls++] ?? outcomes[outcomes.length - 1];
        try {
          return Promise.resolve(next?.() as R);
        } catch (err) {
          return Promise.reject(err);
        }
      },
    };
    return r;
  }

  it('shard calls - no leader and stale leaders are retried until one answers', async () => {
    const r = scripted([
      () => { throw new NoRespondersError('election'); },
      () => { throw new NotLeaderError('n2 leads'); },
      () => ({ upserted: 3 }),
    ]);
    const out = await callShard<{ upserted: number }>(r, 's', { type: 'status' }, Date.now() + 2_000, 'shard 0', real);
    assert.deepEqual(out, { upserted: 3 });
    assert.equal(r.calls, 3);
  });

  it('shard calls - a read tried first on this node\'s replica goes to the leader on every retry', async () => {
    const r = scripted([
      () => { throw new UnavailableError('the replica on n1 is 20000 entries behind the leader; ask the leader'); },
      () => { throw new NoRespondersError('election'); },
      () => ({ count: 4 }),
    ]);
    const out = await callShard<{ count: number }>(r, (attempt) => (attempt === 0 ? 'any' : 'leader'), { type: 'count', consistency: 'strong', timeoutMs: 2_000 }, Date.now() + 2_000, 'shard 0', real);
    assert.deepEqual(out, { count: 4 });
    assert.deepEqual(r.subjects, ['any', 'leader', 'leader']);
  });

  it('shard calls - a read on this node\'s replica that does not answer is sent to the leader after a third of the deadline', async () => {
    // a follower that never catches up: its request times out as a NATS request would
    const subjects: string[] = [];
    const r: Requester = {
      request<R>(subject: string, _msg: unknown, opts: { timeoutMs: number }): Promise<R> {
        subjects.push(subject);
        if (subject === 'leader') return Promise.resolve({ count: 7 } as R);
        return new Promise((_, reject) => setTimeout(() => reject(new TimeoutError(`no reply within ${opts.timeoutMs} ms`)), opts.timeoutMs));
      },
    };
    const t0 = Date.now();
    const out = await callShard<{ count: number }>(r, (attempt) => (attempt === 0 ? 'any' : 'leader'), { type: 'count', consistency: 'strong', timeoutMs: 6_000 }, Date.now() + 6_000, 'shard 0', real, { attemptMs: localReadAttemptMs });
    const took = Date.now() - t0;
    assert.deepEqual(out, { count: 7 });
    assert.deepEqual(subjects, ['any', 'leader']);
    assert.ok(took >= 1_900 && took < 4_000, `the local try was given up after ${took} ms (a third of 6 s)`);
    assert.equal(localReadAttemptMs(600, 0), 1_000, 'never less than a second');
    assert.equal(localReadAttemptMs(6_000, 1), 6_000, 'the leader is given what is left');
  });

  it('shard calls - a retry is given up with what `abandon` says (the map changed while a shard had no responders)', async () => {
    const r = scripted([() => { throw new NoRespondersError('no one on shard 3'); }]);
    let changed = false;
    setTimeout(() => (changed = true), 50);
    const t0 = Date.now();
    await assert.rejects(
      callShard(r, 's', { type: 'status' }, Date.now() + 5_000, 'shard 3', real, { abandon: () => (changed ? new StaleMapError('the map changed') : undefined) }),
      (e: unknown) => e instanceof StaleMapError,
    );
    assert.ok(Date.now() - t0 < 2_000, 'given up long before the deadline');
    assert.ok(r.calls >= 2, 'retried while the map stood');
  });

  it('shard calls - a bad request fails at once, without retry', async () => {
    const r = scripted([() => { throw new InvalidArgumentError('filter.$foo: unknown operator'); }]);
    await assert.rejects(callShard(r, 's', { type: 'status' }, Date.now() + 2_000, 'shard 0', real), InvalidArgumentError);
    assert.equal(r.calls, 1);
  });

  it('shard calls - past the deadline: UNAVAILABLE when nothing was reached, TIMEOUT when an attempt may have been', async () => {
    const never = scripted([() => { throw new NoRespondersError('nobody'); }]);
    await assert.rejects(callShard(never, 's', { type: 'status' }, Date.now() + 100, 'shard 1 of docs', real), (e: unknown) => e instanceof UnavailableError && /shard 1 of docs: not available before the deadline/.test(e.message));
    const slow = scripted([() => { throw new TimeoutError('no reply'); }, () => { throw new NoRespondersError('nobody'); }]);
    await assert.rejects(callShard(slow, 's', { type: 'status' }, Date.now() + 100, 'shard 1', real), TimeoutError);
  });

  it('shard calls - retries back off on the injected clock and stop at its deadline', async () => {
    const clock = new ManualClock(1_000);
    const asked: number[] = [];
    const r: Requester = {
      request<R>(): Promise<R> {
        asked.push(clock.now());
        return Promise.reject(new NoRespondersError('election'));
      },
    };
    const out = assert.rejects(callShard(r, 's', { type: 'status' }, 1_100, 'shard 0', clock), UnavailableError);
    await new Promise((res) => setImmediate(res)); // the first attempt fails and its backoff starts
    await clock.advance(100);
    await out;
    assert.deepEqual(asked, [1_000, 1_005, 1_015, 1_035, 1_075]);
  });
});
