/**
 * The change-stream outbox of a shard state machine (docs/changes.md), on a real LMDB env: what
 * applying writes leaves in it (only what changed something, the points as stored, the ids that
 * existed), what `changes-published` prunes, and that it travels in snapshots (and that a
 * snapshot taken before outboxes existed still installs).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { LogEntry } from '../../src/shard/mod.js';
import { encodeFrame, FrameReader, type SnapshotFrame } from '../../src/shard/snapshot-codec.js';
import type { ChangeRecord } from '../../src/storage/change-outbox.js';
import { testNode } from '../helpers/shard.js';
import { changeIdPrefix, changeMessage } from '../../src/actors/replica/change-publisher.js';

const DIM = 4;
const node = testNode({ dim: DIM, checkpointEvery: 1000 });
after(() => node.close());

const v = (x: number): number[] => [x, x + 1, x + 2, x + 3];
const T0 = Date.parse('2026-01-01T00:00:00Z');

/** The entries of the test: upserts, deletes, a retry, refused and empty commands. */
function entries(): LogEntry[] {
  return [
    { index: 1, command: { type: 'noop' } },
    { index: 2, command: { type: 'upsert', points: [{ id: 'a', vector: v(1), metadata: { c: 1 } }, { id: 'b', vector: v(2), shardKey: 'k' }], requestId: 'r1', at: T0 + 10 } },
    // the same request again: dedup'd, changes nothing
    { index: 3, command: { type: 'upsert', points: [{ id: 'a', vector: v(9) }], requestId: 'r1', at: T0 + 20 } },
    // a delete of an id that exists and one that does not: only the first is a change
    { index: 4, command: { type: 'delete', ids: ['a', 'zz'], at: T0 + 30 } },
    // a delete of nothing that exists: no change
    { index: 5, command: { type: 'delete', ids: ['nope'], at: T0 + 40 } },
    // refused (bad vector): no change
    { index: 6, command: { type: 'upsert', points: [{ id: 'c', vector: [1] }], at: T0 + 50 } },
    // an empty upsert (a repair no-op): no change
    { index: 7, command: { type: 'upsert', points: [], at: T0 + 60 } },
    // a leader whose clock is behind: the record's time does not go back
    { index: 8, command: { type: 'upsert', points: [{ id: 'c', vector: v(3) }], at: T0 + 5 } },
  ];
}

const plain = (records: [number, ChangeRecord][]): unknown => JSON.parse(JSON.stringify(records, (_k, x: unknown) => (x instanceof Float32Array ? Array.from(x) : x)));

const EXPECTED = [
  [2, { op: 'upsert', time: T0 + 10, points: [{ id: 'a', vector: v(1), metadata: { c: 1 } }, { id: 'b', vector: v(2), shardKey: 'k' }] }],
  [4, { op: 'delete', time: T0 + 30, ids: ['a'] }],
  [8, { op: 'upsert', time: T0 + 60, points: [{ id: 'c', vector: v(3) }] }],
];

describe('change outbox', () => {
  it('change outbox - an applied write that changed something leaves one record, as stored; nothing else does', async () => {
    let told = 0;
    const sm = await node.open('cs-a', { changeStream: true, onChanges: () => told++ });
    await sm.apply(entries());
    assert.deepEqual(plain(sm.changes(0, 100)), EXPECTED);
    assert.deepEqual(plain(sm.changes(2, 1)), [EXPECTED[1]], 'read after an index, limited');
    assert.equal(sm.outboxSize(), 3);
    assert.deepEqual(sm.outboxHead(), { count: 3, oldest: { index: 2, time: T0 + 10 } });
    assert.ok(told >= 1, 'the publisher is told of applies');
    // reopened: the records are on disk
    await sm.close();
    const again = await node.open('cs-a', { changeStream: true });
    assert.deepEqual(plain(again.changes(0, 100)), EXPECTED);
    await again.close();

    const none = await node.open('cs-none');
    await none.apply(entries());
    assert.deepEqual(none.changes(0, 100), [], 'a collection without a change stream keeps no outbox');
    await none.close();
  });

  it('change outbox - changes-published prunes the records up to its index on every replica', async () => {
    const sm = await node.open('cs-prune', { changeStream: true });
    await sm.apply(entries());
    await sm.apply([{ index: 9, command: { type: 'changes-published', upTo: 4, at: T0 + 70 } }]);
    assert.deepEqual(plain(sm.changes(0, 100)), [EXPECTED[2]]);
    assert.deepEqual(sm.outboxHead(), { count: 1, oldest: { index: 8, time: T0 + 60 } }, 'what a point-in-time restore asks: the oldest waiting record is the first left');
    assert.equal(sm.appliedIndex, 9);
    // a prune is not a write: it leaves no record of its own
    await sm.apply([{ index: 10, command: { type: 'changes-published', upTo: 10, at: T0 + 80 } }]);
    assert.deepEqual(sm.changes(0, 100), []);
    assert.equal(sm.outboxSize(), 0);
    assert.deepEqual(sm.outboxHead(), { count: 0, oldest: null });
    await sm.close();
  });

  it('change outbox - a snapshot carries the outbox; one taken before outboxes existed installs with none', async () => {
    const a = await node.open('cs-snap-a', { changeStream: true });
    await a.apply(entries());
    const snap = await a.snapshot();
    const bytes: Uint8Array[] = [];
    for await (const c of snap.chunks) bytes.push(c);

    const b = await node.open('cs-snap-b', { changeStream: true });
    await b.apply([{ index: 1, command: { type: 'upsert', points: [{ id: 'old', vector: v(7) }], at: T0 } }]);
    await b.restore(snap.appliedIndex, (async function* () {
      yield* bytes;
    })());
    assert.deepEqual(plain(b.changes(0, 100)), EXPECTED, 'the installed replica holds the same outbox (and not its own old record)');
    // the new leader's prune reaches it like any entry
    await b.apply([{ index: 9, command: { type: 'changes-published', upTo: 2, at: T0 + 70 } }]);
    assert.deepEqual(plain(b.changes(0, 100)), EXPECTED.slice(1));

    // the same snapshot as an older version wrote it: no `changes` frame, no count in its end frame
    const reader = new FrameReader();
    const frames: SnapshotFrame[] = bytes.flatMap((c) => reader.push(c));
    const old = frames.filter((f) => f.t !== 'changes').map((f) => {
      if (f.t !== 'end') return encodeFrame(f);
      const { changes: _c, ...rest } = f;
      return encodeFrame(rest);
    });
    assert.ok(frames.some((f) => f.t === 'changes'), 'the snapshot has a changes frame');
    const c = await node.open('cs-snap-c', { changeStream: true });
    await c.restore(snap.appliedIndex, (async function* () {
      yield* old;
    })());
    assert.equal(c.appliedIndex, snap.appliedIndex);
    assert.deepEqual(c.changes(0, 100), []);
    assert.equal(c.count(), a.count());

    // a snapshot whose end frame counts more records than it carries is refused
    const cut = frames.filter((f) => f.t !== 'changes').map((f) => encodeFrame(f));
    const d = await node.open('cs-snap-d', { changeStream: true });
    await assert.rejects(d.restore(snap.appliedIndex, (async function* () {
      yield* cut;
    })()), /incomplete/);
    await Promise.all([a.close(), b.close(), c.close(), d.close()]);
  });

  it('change outbox - message ids name the collection and shard, and a reshard-made group apart; a message is as PROTOCOL.md shows it', () => {
    assert.equal(changeIdPrefix('7f3a9c01b2d4-0', 0), '7f3a9c01b2d4/0');
    assert.equal(changeIdPrefix('7f3a9c01b2d4-12', 12), '7f3a9c01b2d4/12');
    assert.equal(changeIdPrefix('7f3a9c01b2d4-e2-1', 1), '7f3a9c01b2d4-e2/1', 'shard 1 of epoch 2 is not the first shard 1');
    assert.deepEqual(changeMessage(1, 913, { op: 'delete', time: T0, ids: ['a'] }), { shard: 1, index: 913, time: '2026-01-01T00:00:00.000Z', op: 'delete', ids: ['a'] });
    assert.deepEqual(changeMessage(0, 2, { op: 'upsert', time: T0 + 1, points: [{ id: 'a', vector: Float32Array.from([0.5, 1]), metadata: { c: 1 } }, { id: 'b', vector: Float32Array.from([2, 3]), shardKey: 'k' }] }), {
      shard: 0, index: 2, time: '2026-01-01T00:00:00.001Z', op: 'upsert', points: [{ id: 'a', vector: [0.5, 1], metadata: { c: 1 } }, { id: 'b', vector: [2, 3], shardKey: 'k' }],
    });
  });
});
