import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import type { Behavior } from '../../src/runtime/actor.js';
import { decodeCbor, encodeCbor } from '../../src/runtime/codec.js';
import {
  DecodeError,
  InvalidArgumentError,
  MailboxFullError,
  NoRespondersError,
  NotLeaderError,
  TimeoutError,
} from '../../src/runtime/errors.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';

let server: NatsServer;
let home: ActorSystem;
const others: ActorSystem[] = [];

before(async () => {
  server = await startTestNats();
  home = await ActorSystem.connect(server.url, { name: 'home' });
});

after(async () => {
  await Promise.all(others.map((s) => s.shutdown()));
  await home.shutdown();
  await server.stop();
});

async function remote(name: string): Promise<ActorSystem> {
  const s = await ActorSystem.connect(server.url, { name });
  others.push(s);
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type OrderMsg = { type: 'note'; sender: string; seq: number } | { type: 'dump' };

describe('actor system', () => {
  it('mailbox - messages from many concurrent senders are handled one at a time, each sender in its send order', async () => {
    let inHandler = 0;
    let maxInHandler = 0;
    const seen = new Map<string, number[]>();
    const behavior: Behavior<null, OrderMsg> = {
      init: () => null,
      async receive(state, msg, ctx) {
        inHandler++;
        maxInHandler = Math.max(maxInHandler, inHandler);
        if (msg.type === 'note') {
          // an await inside the handler: the next message must still wait for this one
          if (msg.seq % 3 === 0) await sleep(0);
          else await Promise.resolve();
          const list = seen.get(msg.sender) ?? [];
          list.push(msg.seq);
          seen.set(msg.sender, list);
        } else {
          ctx.reply([...seen.entries()]);
        }
        inHandler--;
        return state;
      },
    };
    const ref = home.spawn('order', behavior, { mailboxCapacity: 100_000 });
    await home.flush();

    const SENDERS = 12;
    const PER_SENDER = 300;
    const systems = await Promise.all(Array.from({ length: SENDERS }, (_, i) => remote(`sender${i}`)));
    await Promise.all(
      systems.map(async (sys, i) => {
        for (let seq = 0; seq < PER_SENDER; seq++) {
          // half tells, half asks in flight at once: both must keep the sender's order
          if (seq % 2 === 0) sys.tell(ref, { type: 'note', sender: `s${i}`, seq });
          else void sys.ask(ref, { type: 'note', sender: `s${i}`, seq }, { timeoutMs: 30_000 });
        }
        await sys.flush();
      }),
    );
    let dump: [string, number[]][] = [];
    for (let attempt = 0; attempt < 200; attempt++) {
      dump = await home.ask<[string, number[]][]>(ref, { type: 'dump' });
      if (dump.reduce((n, [, l]) => n + l.length, 0) === SENDERS * PER_SENDER) break;
      await sleep(25);
    }
    assert.equal(dump.length, SENDERS);
    for (const [sender, seqs] of dump) {
      assert.deepEqual(seqs, Array.from({ length: PER_SENDER }, (_, i) => i), `order of ${sender}`);
    }
    assert.equal(maxInHandler, 1, 'two messages were in the handler at once');
    assert.ok((home.statsOf('order')?.processed ?? 0) >= SENDERS * PER_SENDER);
  });

  it('ask - a reply comes back with its value; Float32Array survives the trip', async () => {
    const ref = home.spawn('echo', {
      init: () => 0,
      receive(n, msg: { v: Float32Array }, ctx) {
        ctx.reply({ n: n + 1, v: msg.v });
        return n + 1;
      },
    });
    const caller = await remote('caller-echo');
    const r = await caller.ask<{ n: number; v: Float32Array }>(ref, { v: new Float32Array([1.5, -2]) });
    assert.equal(r.n, 1);
    assert.ok(r.v instanceof Float32Array);
    assert.deepEqual([...r.v], [1.5, -2]);
  });

  it('ask - past its deadline rejects with TimeoutError', async () => {
    const ref = home.spawn('slow', {
      init: () => null,
      async receive(s, _msg: unknown) {
        await sleep(400);
        return s;
      },
    });
    const caller = await remote('caller-slow');
    const t0 = Date.now();
    await assert.rejects(caller.ask(ref, { type: 'x' }, { timeoutMs: 100 }), TimeoutError);
    const took = Date.now() - t0;
    assert.ok(took >= 90 && took < 350, `timed out after ${took} ms, wanted ~100`);
  });

  it('ask - to an actor nobody hosts rejects at once with NoRespondersError', async () => {
    const t0 = Date.now();
    await assert.rejects(home.ask(home.ref('nowhere', 'ghost'), { type: 'x' }, { timeoutMs: 5_000 }), NoRespondersError);
    assert.ok(Date.now() - t0 < 2_000, 'no-responders should not wait for the deadline');
  });

  it('ask - a remote ShoalError comes back as the same class with its message', async () => {
    const ref = home.spawn('thrower', {
      init: () => null,
      receive(s, msg: { kind: string }) {
        if (msg.kind === 'arg') throw new InvalidArgumentError('points[3].vector has 3 dimensions');
        throw new NotLeaderError('leader is n2');
      },
      cleanup: () => undefined,
    }, { supervision: { backoffMinMs: 0, backoffMaxMs: 0, maxRestarts: 100 } });
    const caller = await remote('caller-thrower');
    await assert.rejects(caller.ask(ref, { kind: 'arg' }), (e: unknown) => e instanceof InvalidArgumentError && e.message === 'points[3].vector has 3 dimensions');
    await sleep(20);
    await assert.rejects(caller.ask(ref, { kind: 'leader' }), NotLeaderError);
  });

  it('mailbox - a full mailbox refuses asks with MailboxFullError instead of growing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const ref = home.spawn('narrow', {
      init: () => null,
      async receive(s, msg: { i: number }, ctx) {
        await gate;
        ctx.reply(msg.i);
        return s;
      },
    }, { mailboxCapacity: 4 });
    const caller = await remote('caller-narrow');
    const outcomes: unknown[] = new Array(12);
    const asks = Array.from({ length: 12 }, (_, i) =>
      caller.ask<number>(ref, { i }, { timeoutMs: 10_000 }).then(
        (v) => (outcomes[i] = v),
        (e: unknown) => (outcomes[i] = e),
      ),
    );
    // One message is in the handler and 4 wait in the mailbox; the other 7 are refused at
    // once, while the gate is still shut.
    for (let t = 0; t < 200 && outcomes.filter((o) => o instanceof MailboxFullError).length < 7; t++) await sleep(10);
    assert.equal(outcomes.filter((o) => o instanceof MailboxFullError).length, 7);
    const stats = home.statsOf('narrow');
    assert.equal(stats?.mailboxDepth, 4);
    assert.equal(stats?.refused, 7);
    assert.match((outcomes.find((o) => o instanceof MailboxFullError) as Error).message, /mailbox of actor narrow is full \(4 messages\)/);
    release();
    await Promise.all(asks);
    assert.deepEqual(outcomes.slice(0, 5), [0, 1, 2, 3, 4]);
  });

  it('codec - garbage bytes sent to an actor get a DecodeError reply and the actor keeps working', async () => {
    const ref = home.spawn('sturdy', {
      init: () => 0,
      receive(n, _msg: unknown, ctx) {
        ctx.reply(n + 1);
        return n + 1;
      },
    });
    const nc: NatsConnection = await connect({ servers: server.url });
    try {
      const res = await nc.request(ref.subject, Uint8Array.from([0xff, 0x00, 0x9f]), { timeout: 2_000 });
      const body = decodeCbor(res.data) as unknown[];
      assert.equal(body[0], 1);
      assert.equal(body[1], 'DECODE_ERROR');
      // and through the runtime's own ask, the same bytes would surface as the class:
      assert.equal(new DecodeError('x').code, body[1]);
      const h = headers();
      h.set('traceparent', 'garbage');
      nc.publish(ref.subject, Uint8Array.from([0x1c]), { headers: h });
      await nc.flush();
    } finally {
      await nc.close();
    }
    assert.equal(await home.ask(ref, { type: 'x' }), 1);
    assert.equal(home.statsOf('sturdy')?.failures, 0);
  });

  it('ask - an ask to a stopped actor fails without waiting for the deadline', async () => {
    const ref = home.spawn('short-lived', { init: () => null, receive: (s) => s });
    await home.stop(ref);
    await assert.rejects(home.ask(ref, { type: 'x' }, { timeoutMs: 5_000 }), NoRespondersError);
  });

  it('request - to a subject a local actor subscribes: delivered in-process, same answers and errors, no NATS message', async () => {
    let slowGate!: () => void;
    const gate = new Promise<void>((r) => (slowGate = r));
    home.spawn('local-leader', {
      init: (ctx) => {
        ctx.subscribe(home.subjects.internal('test', 'leader'), { map: (d) => d.body as { op: string; v?: Float32Array } });
        return null;
      },
      async receive(s, msg: { op: string; v?: Float32Array }, ctx) {
        // answered as an error without failing the actor (as a replica answers a bad request)
        if (msg.op === 'bad') {
          ctx.deferReply().reject(new InvalidArgumentError('filter.$foo: unknown operator'));
          return s;
        }
        if (msg.op === 'slow') await gate;
        ctx.reply({ echoed: msg.v, where: 'local' });
        return s;
      },
    });
    const subject = home.subjects.internal('test', 'leader');
    // Whatever crosses the server on that subject (not the connection's whole count: another
    // actor of this system may send something meanwhile, as a CI run under load once saw).
    let overNats = 0;
    const watch = home.nc.subscribe(subject, { callback: () => void overNats++ });
    await home.nc.flush();
    const r = await home.request<{ echoed: Float32Array; where: string }>(subject, { op: 'echo', v: new Float32Array([1, 2]) });
    assert.deepEqual([...r.echoed], [1, 2]);
    await assert.rejects(home.request(subject, { op: 'bad' }), (e: unknown) => e instanceof InvalidArgumentError && /unknown operator/.test(e.message));
    await assert.rejects(home.request(subject, { op: 'slow' }, { timeoutMs: 50 }), TimeoutError);
    slowGate();
    await home.nc.flush();
    watch.unsubscribe();
    assert.equal(overNats, 0, 'nothing went over NATS');
    // another system reaches the same subject over NATS, with the same answer
    const remoteSys = await remote('remote-requester');
    assert.equal((await remoteSys.request<{ where: string }>(subject, { op: 'echo' })).where, 'local');
    await home.stop(home.ref('home', 'local-leader'));
    await assert.rejects(home.request(subject, { op: 'echo' }, { timeoutMs: 2_000 }), NoRespondersError);
  });

  it('introspection - a system reports its actors, mailbox depths, processed counts and restarts', async () => {
    const caller = await remote('caller-introspect');
    const nc = caller.nc;
    const res = await nc.request(home.subjects.introspect('home'), new Uint8Array(0), { timeout: 2_000 });
    const report = res.json<{ system: string; actors: { name: string; processed: number; restarts: number; mailboxDepth: number }[] }>();
    assert.equal(report.system, 'home');
    const echo = report.actors.find((a) => a.name === 'echo');
    assert.ok(echo, 'echo is listed');
    assert.equal(echo.processed, 1);
    assert.equal(echo.restarts, 0);
    assert.equal(echo.mailboxDepth, 0);
    const thrower = report.actors.find((a) => a.name === 'thrower');
    assert.ok(thrower && thrower.restarts >= 1, 'restarts are counted');
    // the broadcast subject gets one answer per system; CBOR when asked in CBOR
    const h = headers();
    h.set('Content-Type', 'application/cbor');
    const cborRes = await nc.request(home.subjects.introspect('home'), encodeCbor({}), { timeout: 2_000, headers: h });
    assert.equal((decodeCbor(cborRes.data) as { system: string }).system, 'home');
    const all: string[] = [];
    for await (const m of await nc.requestMany(home.subjects.introspectAll(), new Uint8Array(0), { maxWait: 500 })) {
      all.push(m.json<{ system: string }>().system);
    }
    assert.ok(all.includes('home') && all.includes('caller-introspect'), `answers from ${all.join(', ')}`);
  });
});
