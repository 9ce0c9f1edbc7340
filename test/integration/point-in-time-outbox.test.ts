/**
 * Point-in-time restore while the source's change stream cannot be written (docs/backups.md,
 * Point-in-time restore): writes acknowledged before `until` that still wait in their shards'
 * outboxes make the restore fail UNAVAILABLE naming the shard, rather than return a collection
 * missing them; once JetStream takes messages again the same restore waits for the publishers and
 * holds them; writes waiting after `until` do not hold a restore up; a dropped source is NOT_FOUND. JetStream is made to refuse
 * the publishes for real: the stream's `max_msgs` set to what it holds, with `discard: new`.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import { BackupsClient } from '../../src/client/backups.js';
import type { ShoalClient } from '../../src/client/client.js';
import { TestCluster } from '../helpers/cluster.js';
import { connectTo } from '../helpers/nats.js';
import { shoalRejection } from '../helpers/rejection.js';

const DIM = 4;
const STREAM = 'SHOAL_CHANGES_held';

let cluster: TestCluster;
let client: ShoalClient;
let backups: BackupsClient;
let nc: NatsConnection;

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  client = await cluster.client({ timeoutMs: 20_000 });
  backups = new BackupsClient(client);
  nc = await connectTo(cluster.nats);
});

after(async () => {
  await nc?.close();
  await cluster?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const range = (p: string, a: number, b: number): string[] => Array.from({ length: b - a }, (_, i) => `${p}${a + i}`);
const vec = (i: number): number[] => [i, 1, -i, 0.5];

async function messages(): Promise<number> {
  return (await (await jetstreamManager(nc)).streams.info(STREAM)).state.messages;
}

/** JetStream refuses every new message of the stream (it is full, and discards new ones). */
async function stallPublishing(): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.update(STREAM, { max_msgs: await messages(), discard: DiscardPolicy.New });
}

async function resumePublishing(): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.update(STREAM, { max_msgs: -1, discard: DiscardPolicy.Old });
}

/** Waits until the stream stops growing for a second (the leaders published what they could). */
async function settled(): Promise<number> {
  let last = -1;
  for (let i = 0; i < 60; i++) {
    const n = await messages();
    if (n === last) return n;
    last = n;
    await sleep(1_000);
  }
  throw new Error(`${STREAM} kept growing`);
}

it('point-in-time restore - writes before until still in an outbox fail it UNAVAILABLE naming the shard; once published, the same restore holds them; waiting writes after until do not matter', async () => {
  await client.createCollection({ name: 'held', dim: DIM, metric: 'l2', shards: 2, replicas: 2, changeStream: true });
  const held = client.collection('held');
  await held.upsert(range('p', 0, 40).map((id, i) => ({ id, vector: vec(i) })));
  await backups.create('held', { name: 'hb' });
  await held.upsert([{ id: 'a0', vector: vec(100) }]);
  const published = await settled();

  // JetStream refuses: acknowledged writes before `until` wait in the outboxes
  await stallPublishing();
  for (const ids of [range('h', 0, 10), range('h', 10, 20)]) assert.equal(await held.upsert(ids.map((id, i) => ({ id, vector: vec(200 + i) }))), 10);
  assert.equal(await held.delete(['p0', 'p1']), 2);
  await sleep(50);
  const until = new Date();
  await sleep(50);
  await held.upsert(range('z', 0, 10).map((id, i) => ({ id, vector: vec(300 + i) }))); // after until
  await sleep(1_000);
  assert.equal(await messages(), published, 'JetStream took none of them');

  const t0 = Date.now();
  const err = await shoalRejection(backups.restore('hb', { as: 'held2', until: until.toISOString(), timeoutMs: 12_000 }));
  const waited = Date.now() - t0;
  assert.equal(err.code, 'UNAVAILABLE', err.message);
  assert.match(err.message, /shard held\/[01] \(leader n\d+\) has \d+ writes? waiting in its change-stream outbox, the oldest \(log index \d+\) from 20\d\d-\d\d-\d\dT[\d:.]+Z/);
  assert.match(err.message, /at or before until.*Check that JetStream accepts the stream's messages.*retry the restore/);
  const oldest = [...err.message.matchAll(/from (20[\d-]+T[\d:.]+Z)/g)].map((m) => Date.parse(m[1] as string));
  assert.ok(oldest.length > 0 && oldest.every((t) => t <= until.getTime()), `the oldest waiting writes named are before until: ${err.message}`);
  assert.ok(waited < 12_000, `it answered before its deadline (${waited} ms)`);
  assert.equal((await client.listCollections()).some((c) => c.name === 'held2'), false, 'nothing half restored is left');

  // JetStream takes messages again: the same restore waits for the publishers and holds the writes
  await resumePublishing();
  const restored = await backups.restore('hb', { as: 'held2', until: until.toISOString() });
  assert.equal(restored.name, 'held2');
  const held2 = client.collection('held2');
  const want = [...range('p', 2, 40), 'a0', ...range('h', 0, 20)];
  assert.equal(await held2.count({ consistency: 'strong' }), want.length, '40 backed up + a0 + 20 written before until - 2 deleted before it');
  const got = await held2.get([...want, 'p0', 'p1', ...range('z', 0, 10)], { withVector: true, consistency: 'strong' });
  assert.deepEqual(got.map((p) => p.id).sort(), [...want].sort(), 'the writes before until are in it, those after it are not');
  assert.deepEqual(Array.from(got.find((p) => p.id === 'h13')?.vector ?? []), vec(203));

  // writes waiting now are all after until: they do not hold a restore to until up
  await settled();
  await stallPublishing();
  await held.upsert(range('y', 0, 10).map((id, i) => ({ id, vector: vec(400 + i) })));
  await sleep(500);
  const t1 = Date.now();
  await backups.restore('hb', { as: 'held3', until: until.toISOString(), timeoutMs: 12_000 });
  assert.equal(await client.collection('held3').count({ consistency: 'strong' }), want.length);
  console.log(`failed after ${waited} ms (timeoutMs 12000): ${err.message}\nrestore with only later writes waiting: ${Date.now() - t1} ms`);
  await resumePublishing();

  // the collection dropped since (its stream with it): with until, NOT_FOUND before anything is created
  assert.equal(await client.dropCollection('held'), true);
  const gone = await shoalRejection(backups.restore('hb', { as: 'held4', until: until.toISOString() }));
  assert.equal(gone.code, 'NOT_FOUND', gone.message);
  assert.match(gone.message, /collection 'held' that backup 'hb' was made of was dropped.*restore without until/);
  assert.equal((await client.listCollections()).some((c) => c.name === 'held4'), false);
});
