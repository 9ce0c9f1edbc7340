/**
 * The NATS Raft transport with a real nats-server: what it does with frames it cannot read, and
 * how its requests end (answered, nobody listening, no answer in time).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NatsRaftTransport } from '../../src/replication/nats-raft-transport.js';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import type { Logger } from '../../src/runtime/logger.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import type { Message } from '../../src/raft/types.js';
import type { TransportHandlers } from '../../src/replication/raft-transport.js';
import { startTestNats } from '../helpers/nats.js';

let server: NatsServer;

before(async () => {
  server = await startTestNats();
});

after(async () => {
  await server.stop();
});

describe('raft transport', () => {
  it('raft transport - a frame it cannot decode is dropped with a warning giving its size and reply subject, and the sender gets no reply', async () => {
    const system = await ActorSystem.connect(server.url, { name: 'rt' });
    const warnings: { msg: string; fields: Record<string, unknown> | undefined }[] = [];
    const noop = (): void => undefined;
    const log: Logger = { debug: noop, info: noop, error: noop, warn: (msg, fields) => warnings.push({ msg, fields }), child: () => log };
    const batches: string[] = [];
    const t = new NatsRaftTransport(system.nc, system.requests, system.subjects, 'n1', 500, log);
    t.start({ onBatch: (from) => (batches.push(from), false), onChunk: () => Promise.resolve(false), onUnreachable: noop });
    await system.flush();
    const garbage = new Uint8Array([0xff, 0xfe, 0x00, 0x13, 0x37]);
    await assert.rejects(system.nc.request(system.subjects.internal('raft', 'n1'), garbage, { timeout: 300 }));
    assert.equal(t.stats.undecodable, 1);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]?.msg ?? '', /could not be decoded/);
    assert.equal(warnings[0]?.fields?.['bytes'], garbage.length);
    assert.match(String(warnings[0]?.fields?.['from']), /^_INBOX/);
    assert.deepEqual(batches, []);
    t.stop();
    await system.shutdown();
  });

  const noop = (): void => undefined;
  const quiet: Logger = { debug: noop, info: noop, error: noop, warn: noop, child: () => quiet };
  const readReq = (from: string, to: string, ctx: number): Message => ({ type: 'readReq', from, to, term: 1, ctx, leased: false }) as Message;

  interface Seen {
    batches: { from: string; msgs: [string, Message][] }[];
    unreachable: { peer: string; groups: readonly string[] }[];
  }

  function handlers(seen: Seen, turnFollows: () => boolean): TransportHandlers {
    return {
      onBatch: (from, msgs) => (seen.batches.push({ from, msgs }), turnFollows()),
      onChunk: () => Promise.resolve(false),
      onUnreachable: (peer, groups) => seen.unreachable.push({ peer, groups }),
    };
  }

  async function until(what: string, f: () => boolean, ms = 3_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!f()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  it('raft transport - a request is answered on its reply: the peer steps the ask, and its answer comes back as a batch from it', async () => {
    const sa = await ActorSystem.connect(server.url, { name: 'rt-a' });
    const sb = await ActorSystem.connect(server.url, { name: 'rt-b' });
    const seenA: Seen = { batches: [], unreachable: [] };
    const seenB: Seen = { batches: [], unreachable: [] };
    const a = new NatsRaftTransport(sa.nc, sa.requests, sa.subjects, 'a', 2_000, quiet);
    const b = new NatsRaftTransport(sb.nc, sb.requests, sb.subjects, 'b', 2_000, quiet);
    a.start(handlers(seenA, () => false));
    // b's turn follows the ask: its answer rides on the reply to a's request.
    b.start(handlers(seenB, () => true));
    await sa.flush();
    await sb.flush();
    a.enqueue('g1', readReq('a', 'b', 7));
    a.flush(0);
    assert.equal(a.stats.requests, 1);
    await until('b to step the ask', () => seenB.batches.length === 1);
    assert.deepEqual(seenB.batches[0]?.msgs.map(([g, m]) => [g, m.type, (m as { ctx: number }).ctx]), [['g1', 'readReq', 7]]);
    assert.equal(a.pending, 1, 'the request waits for its reply');
    b.enqueue('g1', { type: 'readResp', from: 'b', to: 'a', term: 1, ctx: 7, index: 42, reject: false } as Message);
    b.flush(0, b.takeWaiting());
    await until('the answer to reach a', () => seenA.batches.length === 1);
    assert.equal(seenA.batches[0]?.from, 'b');
    assert.deepEqual(seenA.batches[0]?.msgs.map(([g, m]) => [g, m.type, (m as { index: number }).index]), [['g1', 'readResp', 42]]);
    assert.equal(b.stats.replies, 1, 'the answer went as the reply, not as a request of its own');
    assert.equal(a.pending, 0);
    assert.deepEqual(seenA.unreachable, []);
    a.stop();
    b.stop();
    await sa.shutdown();
    await sb.shutdown();
  });

  it('raft transport - a request to a node nobody serves reports that peer unreachable for the groups it carried, at once', async () => {
    const sa = await ActorSystem.connect(server.url, { name: 'rt-nr' });
    const seen: Seen = { batches: [], unreachable: [] };
    const a = new NatsRaftTransport(sa.nc, sa.requests, sa.subjects, 'a', 10_000, quiet);
    a.start(handlers(seen, () => false));
    await sa.flush();
    const t0 = Date.now();
    a.enqueue('g1', readReq('a', 'ghost', 1));
    a.enqueue('g2', readReq('a', 'ghost', 2));
    a.enqueue('g1', readReq('a', 'ghost', 3));
    a.flush(0);
    await until('no responders to be reported', () => seen.unreachable.length > 0);
    assert.ok(Date.now() - t0 < 5_000, 'reported long before the 10 s timeout');
    assert.deepEqual(seen.unreachable, [{ peer: 'ghost', groups: ['g1', 'g2'] }]);
    assert.equal(a.stats.unreachable, 1);
    assert.equal(a.pending, 0);
    a.stop();
    await sa.shutdown();
  });

  it('raft transport - a request whose reply never comes reports the peer unreachable after the timeout, and a late reply is ignored', async () => {
    const sa = await ActorSystem.connect(server.url, { name: 'rt-to' });
    const seen: Seen = { batches: [], unreachable: [] };
    const a = new NatsRaftTransport(sa.nc, sa.requests, sa.subjects, 'a', 200, quiet);
    a.start(handlers(seen, () => false));
    // A peer that takes the frame and never answers (until told to, too late).
    const held: { respond(d: Uint8Array): boolean }[] = [];
    const silent = sa.nc.subscribe(sa.subjects.internal('raft', 'mute'), { callback: (_e, m) => void held.push(m) });
    await sa.flush();
    const t0 = Date.now();
    a.enqueue('g9', readReq('a', 'mute', 1));
    a.flush(0);
    await until('the timeout', () => seen.unreachable.length > 0);
    const waited = Date.now() - t0;
    assert.ok(waited >= 190 && waited < 1_000, `reported after ${waited} ms, not at the 200 ms timeout (give or take its sweep)`);
    assert.deepEqual(seen.unreachable, [{ peer: 'mute', groups: ['g9'] }]);
    assert.equal(a.pending, 0);
    held[0]?.respond(new Uint8Array(0));
    await sa.flush();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen.batches, [], 'the late reply is not stepped');
    assert.equal(seen.unreachable.length, 1);
    silent.unsubscribe();
    a.stop();
    await sa.shutdown();
  });
});
