/**
 * The check a point-in-time restore makes before it reads the change stream
 * (src/actors/router/point-in-time-outboxes.ts): which backed-up shards are still the source's
 * groups, and the wait on their leaders' outboxes, against a scripted requester (the leaders'
 * answers in turn). The real thing runs in test/integration/point-in-time-outbox.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackupManifest } from '../../src/cluster/backup-store.js';
import type { CollectionRecord } from '../../src/cluster/metadata.js';
import { awaitSourceOutboxes, liveSourceShards } from '../../src/actors/router/point-in-time-outboxes.js';
import type { OutboxHead } from '../../src/actors/shard-protocol.js';
import { NoRespondersError } from '../../src/runtime/errors.js';
import type { Clock } from '../../src/runtime/clock.js';
import { Subjects } from '../../src/runtime/subjects.js';
import { shoalRejection } from '../helpers/rejection.js';

const subjects = new Subjects('shoal');
/** The wall clock, with timers that keep the test's event loop alive (RealClock's do not). */
const clock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const h = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(h) };
  },
};

const source: CollectionRecord = {
  name: 'docs', dim: 2, metric: 'l2', shards: 2, replicas: 1, sharding: { strategy: 'hash' }, hnsw: { m: 16, efConstruction: 200, ef: 64 }, changeStream: true,
  uid: 'u1', createdAt: '2026-12-01T00:00:00Z', placement: [{ shard: 0, replicas: ['n1'] }, { shard: 1, replicas: ['n2'] }],
};

function manifest(shards: BackupManifest['shards']): BackupManifest {
  return { format: 1, shoalVersion: '1', name: 'b', collection: 'docs', uid: 'u1', createdAt: '2026-12-01T00:00:00Z', points: 0, bytes: 0, spec: source, shards };
}

/** Answers each shard's asks from its script, in turn (the last answer repeats); an Error is thrown. */
function scripted(script: Record<number, (OutboxHead | Error)[]>): { requester: { request<R>(subject: string): Promise<R> }; asks: Record<number, number> } {
  const asks: Record<number, number> = {};
  return {
    asks,
    requester: {
      request<R>(subject: string): Promise<R> {
        const shard = Number(subject.split('.').at(-2));
        const n = (asks[shard] = (asks[shard] ?? 0) + 1);
        const list = script[shard] ?? [];
        const a = list[Math.min(n, list.length) - 1];
        return a instanceof Error ? Promise.reject(a) : Promise.resolve(a as R);
      },
    },
  };
}

const empty = (node: string): OutboxHead => ({ node, waiting: 0, oldest: null });
const waiting = (node: string, n: number, time: number): OutboxHead => ({ node, waiting: n, oldest: { index: 40, time: new Date(time).toISOString() } });

describe('point-in-time outboxes', () => {
  const until = Date.now() - 60_000;
  const deadline = (): number => clock.now() + 10_000;

  it('point-in-time outboxes - the backed-up shards still the source\'s groups are asked; a group a reshard replaced is not', () => {
    assert.deepEqual(liveSourceShards(source, manifest([{ shard: 0, index: 5, points: 0, bytes: 0, changeIdPrefix: 'u1/0' }, { shard: 1, index: 5, points: 0, bytes: 0 }])), [0, 1]);
    assert.deepEqual(liveSourceShards(source, manifest([{ shard: 0, index: 5, points: 0, bytes: 0, changeIdPrefix: 'u1-e1/0' }, { shard: 2, index: 5, points: 0, bytes: 0 }])), []);
  });

  it('point-in-time outboxes - empty outboxes, or only writes after until waiting: the stream may be read at once', async () => {
    const s = scripted({ 0: [empty('n1')], 1: [waiting('n2', 7, until + 1)] });
    await awaitSourceOutboxes({ ...s, subjects, clock }, source, [0, 1], until, deadline());
    assert.deepEqual(s.asks, { 0: 1, 1: 1 });
  });

  it('point-in-time outboxes - a write at or before until waiting: the restore waits until it is published', async () => {
    const s = scripted({ 0: [empty('n1')], 1: [waiting('n2', 3, until), waiting('n2', 1, until - 5), waiting('n2', 2, until + 5)] });
    await awaitSourceOutboxes({ ...s, subjects, clock }, source, [0, 1], until, deadline(), 5_000);
    assert.deepEqual(s.asks, { 0: 1, 1: 3 }, 'the shard done is not asked again');
  });

  it('point-in-time outboxes - not published within the wait: UNAVAILABLE naming the shard, its leader, how many wait and the oldest', async () => {
    const s = scripted({ 0: [empty('n1')], 1: [waiting('n2', 12, until - 1_000)] });
    const t0 = Date.now();
    const err = await shoalRejection(awaitSourceOutboxes({ ...s, subjects, clock }, source, [0, 1], until, deadline(), 600));
    assert.ok(Date.now() - t0 >= 400, 'it waited');
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(err.message, new RegExp(`shard docs/1 \\(leader n2\\) has 12 writes waiting in its change-stream outbox, the oldest \\(log index 40\\) from ${new Date(until - 1_000).toISOString()}, at or before until`));
    assert.match(err.message, /Check that JetStream accepts the stream's messages .* then retry the restore$/);
    assert.doesNotMatch(err.message, /docs\/0/);
  });

  it('point-in-time outboxes - a leader that cannot be asked: UNAVAILABLE, nothing replayed with an unknown gap', async () => {
    const s = scripted({ 0: [empty('n1')], 1: [new NoRespondersError('no responders')] });
    const err = await shoalRejection(awaitSourceOutboxes({ ...s, subjects, clock }, source, [0, 1], until, clock.now() + 2_500, 30_000));
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(err.message, /could not ask the leader of shard docs\/1 which of its writes still wait .*nothing was replayed: retry once the shard has a leader/);
  });
});
