/**
 * A shard leader's change-stream publisher (src/actors/replica/change-publisher.ts) on a real
 * nats-server and a real shard state machine: a new leader resumes after its shard's last message
 * in the stream, so what its predecessor published and never pruned is not published again even
 * once the duplicate window (1 s here) has passed; the prune it proposes empties the outbox; a
 * replica that does not lead publishes nothing; a leader whose stream does not exist yet retries
 * and then publishes every record, in order, skipping none.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { ChangePublisher } from '../../src/actors/replica/change-publisher.js';
import { ChangeStreams, changeStreamName } from '../../src/cluster/change-streams.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { createLogger } from '../../src/runtime/logger.js';
import { Subjects } from '../../src/runtime/subjects.js';
import type { ShardStateMachine } from '../../src/shard/mod.js';
import { readChangeStream, type ChangeMessage } from '../helpers/change-stream.js';
import { connectTo, startTestNats } from '../helpers/nats.js';
import { testNode } from '../helpers/shard.js';
import { waitFor } from '../helpers/cluster.js';

const WINDOW_MS = 1_000;
const subjects = new Subjects('shoal');
const node = testNode({ dim: 2, checkpointEvery: 1000 });
let nats: NatsServer;
let nc: NatsConnection;
let streams: ChangeStreams;

before(async () => {
  nats = await startTestNats();
  nc = await connectTo(nats);
  streams = new ChangeStreams(nc, subjects, 1, WINDOW_MS);
});

after(async () => {
  await nc?.close();
  await nats?.stop();
  await node.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function upserts(sm: ShardStateMachine, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) await sm.apply([{ index: i, command: { type: 'upsert', points: [{ id: `p${i}`, vector: [i, 1] }], at: Date.now() } }]);
}

function publisher(collection: string, sm: ShardStateMachine, prune: (upTo: number) => Promise<void>): ChangePublisher {
  return new ChangePublisher({
    js: jetstream(nc),
    subject: subjects.changes(collection),
    stream: changeStreamName(collection),
    idPrefix: 'abc123/0',
    shard: 0,
    read: (after, limit) => sm.changes(after, limit),
    propose: prune,
    log: createLogger({}, 'silent'),
  });
}

const indexes = (msgs: ChangeMessage[] | undefined): number[] => (msgs ?? []).map((m) => m.body.index);

describe('change publisher', () => {
  it('change publisher - a new leader resumes after its shard\'s last message: nothing again, even past the duplicate window; its prune empties the outbox', async () => {
    await streams.createFresh('resume');
    const sm = await node.open('resume', { changeStream: true });
    await upserts(sm, 1, 5);
    // the first leader publishes, and dies before any prune is applied
    const first = publisher('resume', sm, async () => undefined);
    first.setLeading(true);
    await waitFor(async () => indexes(await readChangeStream(nc, 'SHOAL_CHANGES_resume')).length === 5, 'the first leader published 5', 10_000);
    first.stop();
    assert.equal(sm.outboxSize(), 5, 'nothing pruned');
    await sleep(WINDOW_MS + 500); // JetStream forgot the ids

    await upserts(sm, 6, 7);
    let next = 7;
    const follower = publisher('resume', sm, async () => undefined);
    follower.setLeading(false);
    const second = publisher('resume', sm, async (upTo) => {
      await sm.apply([{ index: ++next, command: { type: 'changes-published', upTo, at: Date.now() } }]);
    });
    second.setLeading(true);
    await waitFor(async () => indexes(await readChangeStream(nc, 'SHOAL_CHANGES_resume')).length >= 7, 'the new leader published 6 and 7', 10_000);
    await waitFor(() => sm.outboxSize() === 0, 'its prune empties the outbox', 10_000);
    await sleep(500);
    second.stop();
    const msgs = await readChangeStream(nc, 'SHOAL_CHANGES_resume');
    assert.deepEqual(indexes(msgs), [1, 2, 3, 4, 5, 6, 7], 'each record once, in order');
    assert.deepEqual(msgs?.map((m) => m.msgId), [1, 2, 3, 4, 5, 6, 7].map((i) => `abc123/0/${i}`));
    assert.deepEqual(msgs?.[5]?.body.points, [{ id: 'p6', vector: [6, 1] }]);
    await sm.close();
  });

  it('change publisher - while its stream cannot be written, a leader retries and skips nothing; then publishes every record in order', async () => {
    await streams.remove('late');
    const sm = await node.open('late', { changeStream: true });
    await upserts(sm, 1, 3);
    let next = 3;
    const p = publisher('late', sm, async (upTo) => {
      await sm.apply([{ index: ++next, command: { type: 'changes-published', upTo, at: Date.now() } }]);
    });
    p.setLeading(true);
    await sleep(800);
    await upserts(sm, 4, 5);
    next = 5;
    await sleep(500);
    assert.equal(sm.outboxSize(), 5, 'the outbox keeps every record while nothing can be published');
    await streams.ensure('late');
    await waitFor(async () => indexes(await readChangeStream(nc, 'SHOAL_CHANGES_late')).length >= 5, 'published once the stream exists', 15_000);
    await waitFor(() => sm.outboxSize() === 0, 'then pruned', 10_000);
    p.stop();
    assert.deepEqual(indexes(await readChangeStream(nc, 'SHOAL_CHANGES_late')), [1, 2, 3, 4, 5]);
    await sm.close();
  });
});
