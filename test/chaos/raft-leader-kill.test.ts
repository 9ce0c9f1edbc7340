/**
 * Real processes: three node processes (test/fixtures/raft-node.ts) over a real nats-server,
 * with LMDB on disk. Clients write without pause while the leader is killed with SIGKILL, again
 * and again (and restarted on its old directory). Afterwards every acknowledged write is on
 * every replica at the index it was acknowledged with, the replicas hold the same list in the
 * same order, and writes resumed after each kill.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';
import { RaftProcessCluster, sleep } from '../helpers/raft-cluster.js';

const KILLS = Number(process.env['KILLS'] ?? 5);
const WRITERS = 4;
const enc = new TextEncoder();
const dec = new TextDecoder();

let server: NatsServer | undefined;
let cluster: RaftProcessCluster | undefined;

after(async () => {
  await cluster?.stop();
  await server?.stop();
});

describe('raft chaos', () => {
  it(`raft chaos - ${KILLS} SIGKILLs of the leader under continuous writes lose no acknowledged write`, { timeout: 240_000 }, async () => {
    server = await startTestNats({ jetstream: false });
    const c = (cluster = await RaftProcessCluster.start(server, ['n1', 'n2', 'n3']));
    await c.waitForLeader();

    const acked: { index: number; value: string; at: number }[] = [];
    let stop = false;
    let hint: string | undefined;
    const writer = async (w: number): Promise<void> => {
      let seq = 0;
      while (!stop) {
        const alive = c.nodes.filter((n) => c.alive(n));
        const target = hint && c.alive(hint) ? hint : alive[Math.floor(Math.random() * alive.length)];
        if (!target) {
          await sleep(10);
          continue;
        }
        const value = `w${w}-${seq++}`;
        try {
          const r = await c.append(target, enc.encode(value), 'g0', 1_000);
          if (r.index !== undefined) acked.push({ index: r.index, value, at: Date.now() });
          else {
            const m = /the leader is (\S+)/.exec(r.error?.message ?? '');
            hint = m ? m[1] : undefined;
            if (!m) await sleep(20);
          }
        } catch {
          hint = undefined; // the node died or timed out: the outcome of that write is unknown
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));

    const failovers: number[] = [];
    try {
      for (let k = 0; k < KILLS; k++) {
        await sleep(1_200);
        const leader = await c.waitForLeader();
        const before = acked.length;
        const killedAt = Date.now();
        await c.kill(leader);
        const deadline = killedAt + 15_000;
        while (!acked.some((a) => a.at > killedAt) && Date.now() < deadline) await sleep(10);
        const first = acked.find((a) => a.at > killedAt);
        assert.ok(first, `writes did not resume within 15 s after kill ${k + 1} of leader ${leader} (${before} acknowledged before)`);
        const successor = await c.waitForLeader();
        const readyAt = (await c.status(successor))?.readyAt ?? first.at;
        failovers.push(readyAt - killedAt);
        await sleep(300);
        await c.startNode(leader);
      }
    } finally {
      stop = true;
      await Promise.all(writers);
    }

    // Let every replica catch up, then compare what they hold.
    const leader = await c.waitForLeader();
    const target = (await c.status(leader))?.commitIndex ?? 0;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const st = await Promise.all(c.nodes.map((n) => c.status(n)));
      if (st.every((s) => s !== undefined && s.appliedIndex >= target)) break;
      assert.ok(Date.now() < deadline, `replicas did not catch up: ${JSON.stringify(st.map((s) => s?.appliedIndex))} < ${target}`);
      await sleep(100);
    }
    const dumps = await Promise.all(c.nodes.map((n) => c.ask<[number, Uint8Array][]>(n, { op: 'dump', group: 'g0' }, 20_000)));
    const lists = dumps.map((d) => new Map(d.map(([i, v]) => [i, dec.decode(v)])));
    const upTo = Math.min(...dumps.map((d) => (d.length > 0 ? (d[d.length - 1] as [number, Uint8Array])[0] : 0)));
    for (let i = 1; i <= upTo; i++) {
      const v = lists[0]?.get(i);
      for (const l of lists) assert.equal(l.get(i), v, `replicas differ at index ${i}`);
    }
    for (const a of acked) {
      for (const [k, l] of lists.entries()) assert.equal(l.get(a.index), a.value, `acknowledged write ${a.value} at ${a.index} missing on ${c.nodes[k]}`);
    }
    assert.ok(acked.length > 100, `only ${acked.length} writes were acknowledged`);
    console.log(`raft chaos: ${acked.length} acknowledged writes, ${KILLS} leader kills, kill→successor's first commit ms: ${failovers.join(', ')}`);
  });
});
