/**
 * A change stream under shard leader SIGKILLs during writes (issue 20; docs/changes.md): on a
 * 2-shard collection with 3 replicas over 3 nodes, writers upsert new points, overwrite and
 * delete their own acknowledged ones (each write a requestId, resent with it after a failure)
 * while the leader of a shard is killed and restarted three times. Then every acknowledged write
 * appears in the stream exactly once (by shard and index, by message id, and by content), the
 * entries of each shard are in increasing index order, nothing appears that no writer sent, and
 * every entry is accounted for by a strong read of the final state or by a later entry of the
 * same point — and the final state is exactly what the stream replays to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { TestCluster } from '../helpers/cluster.js';
import { readChangeStream, withNats, type ChangeMessage } from '../helpers/change-stream.js';

const NAME = 'cs-chaos';
const WRITERS = 6;
const KILLS = 3;

let cluster: TestCluster;
let client: ShoalClient;

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  client = await cluster.client({ timeoutMs: 5_000 });
});

after(async () => {
  await cluster?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One write a writer made: an upsert of `id` with version `v`, or a delete of `id`; `acked` once a reply said so. */
interface Write {
  op: 'upsert' | 'delete';
  id: string;
  v: number;
  acked: boolean;
}

/** The vector that says which write it came from (exact in float32). */
const vectorOf = (id: string, v: number): number[] => {
  const [w, k] = id.slice(1).split('-').map(Number) as [number, number];
  return [w, k, v, 1];
};
const key = (op: string, id: string, v: number): string => (op === 'upsert' ? `u:${id}:${v}` : `d:${id}`);

async function writer(w: number, stop: () => boolean, writes: Write[]): Promise<void> {
  const coll = client.collection(NAME);
  const live: { id: string; v: number }[] = [];
  let k = 0;
  let seq = 0;
  while (!stop()) {
    const roll = seq % 5;
    let write: Write;
    if (roll === 3 && live.length > 0) {
      const p = live[(seq * 7) % live.length]!;
      write = { op: 'upsert', id: p.id, v: p.v + 1, acked: false };
    } else if (roll === 4 && live.length > 2) {
      const [p] = live.splice((seq * 3) % live.length, 1);
      write = { op: 'delete', id: p!.id, v: 0, acked: false };
    } else {
      write = { op: 'upsert', id: `w${w}-${k++}`, v: 0, acked: false };
    }
    writes.push(write);
    const requestId = `cs-${w}-${seq++}`;
    // resent with the same requestId after a failure: applied at most once, published at most once
    for (let attempt = 0; attempt < 4 && !write.acked; attempt++) {
      try {
        if (write.op === 'upsert') await coll.upsert([{ id: write.id, vector: vectorOf(write.id, write.v), metadata: { v: write.v } }], { requestId, timeoutMs: 3_000 });
        else await coll.delete([write.id], { requestId, timeoutMs: 3_000 });
        write.acked = true;
      } catch {
        await sleep(200);
      }
    }
    if (write.acked && write.op === 'upsert') {
      const at = live.findIndex((p) => p.id === write.id);
      if (at >= 0) live[at] = { id: write.id, v: write.v };
      else live.push({ id: write.id, v: write.v });
    }
    // an unacknowledged write's point is left alone: whether it applied is not known
    if (!write.acked && write.op === 'upsert') {
      const at = live.findIndex((p) => p.id === write.id);
      if (at >= 0) live.splice(at, 1);
    }
  }
}

describe('change stream under leader kills', () => {
  it('change stream - leaders SIGKILLed during writes: every acknowledged write exactly once, in index order per shard, accounting for the final state', async () => {
    const started = performance.now();
    await client.createCollection({ name: NAME, dim: 4, metric: 'l2', shards: 2, replicas: 3, changeStream: true });
    let stopping = false;
    const writes: Write[][] = Array.from({ length: WRITERS }, () => []);
    const loops = writes.map((list, w) => writer(w, () => stopping, list));
    await sleep(1_500);
    const killed: string[] = [];
    for (let i = 0; i < KILLS; i++) {
      const node = await cluster.leaderOf(client, NAME, i % 2);
      killed.push(`${node} (shard ${i % 2})`);
      await cluster.kill(node);
      await sleep(2_500);
      await cluster.startNode(node);
      await sleep(2_000);
    }
    stopping = true;
    await Promise.all(loops);
    const all = writes.flat();
    const acked = all.filter((x) => x.acked);
    console.log(`killed ${killed.join(', ')}; ${all.length} writes, ${acked.length} acknowledged`);
    assert.ok(acked.length > 200, `only ${acked.length} writes acknowledged`);

    // Every acknowledged write reaches the stream (a new leader publishes what the old one left).
    const wanted = new Set(acked.map((x) => key(x.op, x.id, x.v)));
    let msgs: ChangeMessage[] = [];
    const contentOf = (m: ChangeMessage): string[] => (m.body.op === 'upsert' ? (m.body.points ?? []).map((p) => key('upsert', p.id, p.vector[2] ?? -1)) : (m.body.ids ?? []).map((id) => key('delete', id, 0)));
    await cluster.waitFor(async () => {
      msgs = (await withNats(cluster.nats.url, (nc) => readChangeStream(nc, `SHOAL_CHANGES_${NAME}`))) ?? [];
      const have = new Set(msgs.flatMap(contentOf));
      return [...wanted].every((k) => have.has(k));
    }, 'every acknowledged write in the stream', 20_000);
    await sleep(2_000); // and a late duplicate would have landed by now
    msgs = (await withNats(cluster.nats.url, (nc) => readChangeStream(nc, `SHOAL_CHANGES_${NAME}`))) ?? [];

    // exactly once: by (shard, index), by message id, by content
    const byPlace = new Map<string, number>();
    for (const m of msgs) byPlace.set(`${m.body.shard}/${m.body.index}`, (byPlace.get(`${m.body.shard}/${m.body.index}`) ?? 0) + 1);
    const twice = [...byPlace].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], 'no (shard, index) twice');
    assert.equal(new Set(msgs.map((m) => m.msgId)).size, msgs.length, 'no message id twice');
    const byContent = new Map<string, number>();
    for (const m of msgs) for (const c of contentOf(m)) byContent.set(c, (byContent.get(c) ?? 0) + 1);
    assert.deepEqual([...byContent].filter(([, n]) => n > 1), [], 'no write twice');
    const sent = new Set(all.map((x) => key(x.op, x.id, x.v)));
    assert.deepEqual([...byContent.keys()].filter((c) => !sent.has(c)), [], 'nothing no writer sent');
    assert.deepEqual([...wanted].filter((k) => !byContent.has(k)), [], 'every acknowledged write');
    for (const m of msgs) assert.equal(contentOf(m).length, 1, 'one point per write');

    // in increasing index order within each shard
    const last = new Map<number, number>();
    for (const m of msgs) {
      assert.ok(m.body.index > (last.get(m.body.shard) ?? 0), `shard ${m.body.shard}: index ${m.body.index} after ${last.get(m.body.shard)}`);
      last.set(m.body.shard, m.body.index);
    }

    // every entry accounted for: the final state (a strong read) is what replaying the stream gives
    const ids = [...new Set(all.map((x) => x.id))];
    const got = new Map<string, number[]>();
    for (let i = 0; i < ids.length; i += 500) {
      for (const p of await client.collection(NAME).get(ids.slice(i, i + 500), { withVector: true, consistency: 'strong' })) got.set(p.id, Array.from(p.vector ?? []));
    }
    const replay = new Map<string, number[]>();
    for (const m of msgs) {
      if (m.body.op === 'upsert') for (const p of m.body.points ?? []) replay.set(p.id, p.vector);
      else for (const id of m.body.ids ?? []) replay.delete(id);
    }
    assert.equal(got.size, replay.size, 'as many points as the stream replays to');
    for (const [id, v] of got) assert.deepEqual(replay.get(id), v, `point ${id}: the stream's last entry of it is its final state`);
    console.log(`${msgs.length} messages (${acked.length} acknowledged writes, ${msgs.length - acked.length} applied without an acknowledgement); ${got.size} points; ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });
});
