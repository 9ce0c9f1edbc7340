/**
 * Change streams (PROTOCOL.md, Change streams; docs/changes.md) on a real 3-node cluster: a
 * collection created with `changeStream` publishes each write that changed something, once, in
 * commit order within its shard, with the message shape and `Nats-Msg-Id` PROTOCOL.md gives; a
 * collection without one publishes nothing; drop deletes the stream and a re-created collection
 * starts a clean one; a bad `changeStream` is refused naming the field.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { TestCluster } from '../helpers/cluster.js';
import { readChangeStream, withNats, type ChangeMessage } from '../helpers/change-stream.js';
import type { ShoalClient } from '../../src/client/client.js';

const DIM = 4;
const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;
const run = promisify(execFile);
let cluster: TestCluster;
let client: ShoalClient;

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  client = await cluster.client();
});

after(async () => {
  await cluster?.stop();
});

const vec = (n: number): number[] => [n, n / 2, 1, 0 - n].map(Math.fround);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const stream = (name: string): Promise<ChangeMessage[] | undefined> => withNats(cluster.nats.url, (nc) => readChangeStream(nc, name));

describe('change streams', () => {
  it('change stream - each write that changed something appears once, in commit order per shard, as PROTOCOL.md shows', async () => {
    const desc = await client.createCollection({ name: 'feed', dim: DIM, shards: 2, replicas: 3, changeStream: true });
    assert.equal(desc.changeStream, true, 'describe shows changeStream');
    const coll = client.collection('feed');
    const started = Date.now();
    // Each op touches one point, so each is one message; its content tells which op it is.
    type Op = { op: 'upsert'; id: string; v: number; metadata?: Record<string, unknown> } | { op: 'delete'; id: string };
    const ops: Op[] = [];
    for (let i = 0; i < 12; i++) ops.push({ op: 'upsert', id: `p${i}`, v: i, metadata: { i, tag: i % 2 ? 'odd' : 'even' } });
    ops.push({ op: 'upsert', id: 'p3', v: 103 }); // an overwrite
    ops.push({ op: 'delete', id: 'p4' });
    ops.push({ op: 'delete', id: 'p5' });
    ops.push({ op: 'upsert', id: 'p4', v: 204 }); // back again
    for (const o of ops) {
      if (o.op === 'upsert') await coll.upsert([{ id: o.id, vector: vec(o.v), ...(o.metadata ? { metadata: o.metadata } : {}) }], { requestId: `r-${ops.indexOf(o)}` });
      else await coll.delete([o.id]);
    }
    // changed nothing: a retry of an applied request, a delete of ids that do not exist
    await coll.upsert([{ id: 'p0', vector: vec(999) }], { requestId: 'r-0' });
    await coll.delete(['nobody', 'p5']);
    // one request of many points: one message per shard holding them, each with that shard's points
    const many = Array.from({ length: 10 }, (_, i) => ({ id: `m${i}`, vector: vec(50 + i) }));
    await coll.upsert(many);

    let msgs: ChangeMessage[] = [];
    await cluster.waitFor(async () => {
      msgs = (await stream('SHOAL_CHANGES_feed')) ?? [];
      return msgs.length >= ops.length + 1;
    }, 'the writes are in the stream', 15_000);
    await new Promise((r) => setTimeout(r, 1_500)); // nothing more comes
    msgs = (await stream('SHOAL_CHANGES_feed')) ?? [];

    const manyMsgs = msgs.filter((m) => m.body.points?.some((p) => p.id.startsWith('m')));
    const opMsgs = msgs.filter((m) => !manyMsgs.includes(m));
    assert.equal(opMsgs.length, ops.length, `one message per op that changed something: ${JSON.stringify(opMsgs.map((m) => m.body))}`);
    assert.ok(manyMsgs.length >= 1 && manyMsgs.length <= 2, 'the 10-point upsert is one message per shard it touched');
    assert.deepEqual(manyMsgs.flatMap((m) => m.body.points ?? []).map((p) => p.id).sort(), many.map((p) => p.id).sort());
    for (const m of manyMsgs) assert.equal(new Set(m.body.points?.map((p) => p.id)).size, m.body.points?.length);

    const uid = /^([0-9a-f]+)\/\d+\/\d+$/.exec(msgs[0]?.msgId ?? '')?.[1];
    assert.ok(uid, `Nats-Msg-Id is <collection uid>/<shard>/<index>: ${msgs[0]?.msgId}`);
    const lastIndex = new Map<number, number>();
    const seen = new Set<number>();
    for (const m of msgs) {
      const b = m.body;
      assert.equal(m.subject, 'shoal.changes.v1.feed');
      assert.equal(m.msgId, `${uid}/${b.shard}/${b.index}`);
      assert.deepEqual(Object.keys(b).sort(), b.op === 'upsert' ? ['index', 'op', 'points', 'shard', 'time'] : ['ids', 'index', 'op', 'shard', 'time']);
      assert.ok(b.shard === 0 || b.shard === 1);
      assert.ok(b.index > (lastIndex.get(b.shard) ?? 0), `shard ${b.shard}: index ${b.index} after ${lastIndex.get(b.shard)}`);
      lastIndex.set(b.shard, b.index);
      const t = Date.parse(b.time);
      assert.match(b.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(t >= started - 1_000 && t <= Date.now(), `time ${b.time} is when the write was applied`);
      if (opMsgs.includes(m)) {
        // which op: by content
        const k = ops.findIndex((o, i) => !seen.has(i) && (o.op === 'upsert' ? b.op === 'upsert' && b.points?.length === 1 && b.points[0]?.id === o.id && b.points[0].vector[0] === vec(o.v)[0] : b.op === 'delete' && b.ids?.length === 1 && b.ids[0] === o.id));
        assert.ok(k >= 0, `message ${JSON.stringify(b)} is one of the ops, once`);
        seen.add(k);
        const o = ops[k]!;
        if (o.op === 'upsert') assert.deepEqual(b.points, [{ id: o.id, vector: vec(o.v), ...(o.metadata ? { metadata: o.metadata } : {}) }]);
      }
    }
    // within a shard, ops appear in the order they were made
    for (const s of [0, 1]) {
      const order = opMsgs.filter((m) => m.body.shard === s).map((m) => ops.findIndex((o) => (o.op === 'upsert' ? m.body.points?.[0]?.id === o.id && m.body.points[0].vector[0] === vec(o.v)[0] : m.body.ids?.[0] === o.id)));
      assert.deepEqual(order, [...order].sort((a, b) => a - b), `shard ${s} in commit order`);
    }
  });

  it('change stream - a collection without one publishes nothing; drop deletes the stream; a new collection of the name starts clean', async () => {
    await client.createCollection({ name: 'quiet', dim: DIM, shards: 1, replicas: 3 });
    const heard: string[] = [];
    await withNats(cluster.nats.url, async (nc) => {
      const sub = nc.subscribe('shoal.changes.v1.>', { callback: (_e, m) => void heard.push(m.subject) });
      await client.collection('quiet').upsert([{ id: 'a', vector: vec(1) }]);
      await client.collection('quiet').delete(['a']);
      await new Promise((r) => setTimeout(r, 1_500));
      sub.unsubscribe();
    });
    assert.deepEqual(heard, [], 'nothing published for a collection without a change stream');
    assert.equal(await stream('SHOAL_CHANGES_quiet'), undefined, 'and no stream');
    assert.equal((await client.describeCollection('quiet')).changeStream, false);

    await client.createCollection({ name: 'again', dim: DIM, shards: 1, replicas: 3, changeStream: true });
    await client.collection('again').upsert([{ id: 'old', vector: vec(1) }]);
    await cluster.waitFor(async () => ((await stream('SHOAL_CHANGES_again')) ?? []).length === 1, 'the first incarnation published its write', 10_000);
    const [first] = (await stream('SHOAL_CHANGES_again'))!;
    await client.dropCollection('again');
    assert.equal(await stream('SHOAL_CHANGES_again'), undefined, 'drop deletes the stream');

    await client.createCollection({ name: 'again', dim: DIM, shards: 1, replicas: 3, changeStream: true });
    assert.deepEqual(await stream('SHOAL_CHANGES_again'), [], 're-created: an empty stream');
    await client.collection('again').upsert([{ id: 'new', vector: vec(2) }]);
    await cluster.waitFor(async () => ((await stream('SHOAL_CHANGES_again')) ?? []).length === 1, 'the new collection published its write', 10_000);
    const [second] = (await stream('SHOAL_CHANGES_again'))!;
    assert.equal(second?.body.points?.[0]?.id, 'new');
    assert.notEqual(second?.msgId.split('/')[0], first?.msgId.split('/')[0], 'a new collection uid in its message ids');
  });

  it('change stream - a bad changeStream is refused naming the field; a create that differs only in it is refused', async () => {
    await assert.rejects(client.createCollection({ name: 'bad', dim: DIM, changeStream: 'yes' as unknown as boolean }), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && /changeStream must be true or false/.test(e.message));
    await assert.rejects(client.createCollection({ name: 'feed', dim: DIM, shards: 2, replicas: 3, changeStream: false }), (e: Error & { code?: string }) => e.code === 'ALREADY_EXISTS' && /changeStream true \(asked false\)/.test(e.message));
    assert.equal(await stream('SHOAL_CHANGES_bad'), undefined);
  });

  it('change stream - shoal changes prints the stream as JSON lines: the whole of it with --from-start, else only new entries until Ctrl-C', async () => {
    const nats = ['--nats', cluster.nats.url];
    const want = ((await stream('SHOAL_CHANGES_feed')) ?? []).map((m) => m.body);
    assert.ok(want.length > 10);
    const all = await run(process.execPath, [CLI, 'changes', 'feed', '--from-start', '--limit', String(want.length), ...nats], { timeout: 15_000 });
    assert.deepEqual(all.stdout.trim().split('\n').map((l) => JSON.parse(l)), want, '--from-start: every message, in stream order');

    // without --from-start: only what comes after it starts; Ctrl-C ends it with status 0
    const proc = spawn(process.execPath, [CLI, 'changes', 'feed', ...nats], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    try {
      await cluster.waitFor(() => err.includes('following SHOAL_CHANGES_feed (new entries only)'), 'shoal changes says its consumer is set up', 20_000);
      await client.collection('feed').upsert([{ id: 'live', vector: vec(77) }]);
      await cluster.waitFor(() => out.includes('\n'), 'the new write printed', 10_000);
      await sleep(300);
      proc.kill('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      proc.kill('SIGKILL');
    }
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as ChangeMessage['body']);
    assert.deepEqual(lines.map((l) => [l.op, l.points?.map((p) => p.id)]), [['upsert', ['live']]]);

    const none = await run(process.execPath, [CLI, 'changes', 'quiet', ...nats]).then(() => null, (e: { code: number; stderr: string }) => e);
    assert.equal(none?.code, 11, 'NOT_FOUND for a collection without a change stream');
    assert.match(none?.stderr ?? '', /collection 'quiet' has no change stream/);

    const made = await run(process.execPath, [CLI, 'collections', 'create', 'clifeed', '--dim', '4', '--replicas', '3', '--change-stream', ...nats]);
    assert.match(made.stdout, /with a change stream/);
    assert.equal((await client.describeCollection('clifeed')).changeStream, true);
    assert.deepEqual(await stream('SHOAL_CHANGES_clifeed'), [], 'collections create --change-stream makes the stream');
  });
});
