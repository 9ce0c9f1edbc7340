import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import type { ActorRef, Behavior } from '../../src/runtime/actor.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { ActorFailedError, NoRespondersError } from '../../src/runtime/errors.js';
import { createLogger } from '../../src/runtime/logger.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';

let server: NatsServer;
let sys: ActorSystem;
const clock = new ManualClock(1_000_000);
const escalations: { actor: string; err: unknown }[] = [];

before(async () => {
  server = await startTestNats();
  sys = await ActorSystem.connect(server.url, { name: 'sup', clock, log: createLogger({}, 'silent') });
  sys.onEscalation((actor, err) => escalations.push({ actor, err }));
});

after(async () => {
  await sys.shutdown();
  await server.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (cond()) return;
    await sleep(5);
  }
  assert.fail(`timed out waiting for: ${what}`);
}

type CounterMsg = { type: 'inc' } | { type: 'get' } | { type: 'boom' };

function counter(log: string[]): Behavior<{ n: number }, CounterMsg> {
  return {
    init: (ctx) => {
      log.push(`init#${ctx.incarnation}`);
      return { n: 0 };
    },
    receive(state, msg, ctx) {
      switch (msg.type) {
        case 'inc':
          state.n++;
          return state;
        case 'get':
          ctx.reply(state.n);
          return state;
        case 'boom':
          throw new Error('kaboom');
      }
    },
    cleanup: (state) => {
      log.push(`cleanup n=${state?.n}`);
    },
  };
}

describe('supervision', () => {
  it('supervision - a throwing handler fails its actor, which restarts with fresh state after the backoff', async () => {
    const log: string[] = [];
    const ref = sys.spawn('counter', counter(log), { supervision: { backoffMinMs: 100, backoffMaxMs: 1000, maxRestarts: 5 } });
    sys.tell(ref, { type: 'inc' });
    sys.tell(ref, { type: 'inc' });
    assert.equal(await sys.ask(ref, { type: 'get' }), 2);

    await assert.rejects(sys.ask(ref, { type: 'boom' }), (e: unknown) => e instanceof ActorFailedError && /kaboom/.test(e.message));
    await until(() => sys.statsOf('counter')?.status === 'restarting', 'actor restarting');
    // messages sent while it waits for its restart are kept, not lost
    const pending = sys.ask<number>(ref, { type: 'get' }, { timeoutMs: 5_000 });
    sys.tell(ref, { type: 'inc' });
    await sys.flush();
    await until(() => sys.statsOf('counter')?.mailboxDepth === 2, 'two messages queued during backoff');
    await clock.advance(99);
    assert.equal(sys.statsOf('counter')?.status, 'restarting', 'restarted before its backoff ended');
    await clock.advance(1);
    assert.equal(await pending, 0, 'state is fresh after the restart');
    assert.equal(await sys.ask(ref, { type: 'get' }), 1);
    const stats = sys.statsOf('counter');
    assert.equal(stats?.restarts, 1);
    assert.equal(stats?.failures, 1);
    assert.equal(stats?.lastError, 'kaboom');
    assert.deepEqual(log, ['init#0', 'cleanup n=2', 'init#1']);
  });

  it('supervision - past its restart limit an actor escalates to the system and stops; others keep working', async () => {
    const bystander = sys.spawn('bystander', counter([]));
    const ref = sys.spawn('fragile', counter([]), { supervision: { backoffMinMs: 10, backoffMaxMs: 10, maxRestarts: 2, windowMs: 60_000 } });
    for (let i = 0; i < 3; i++) {
      await until(() => sys.statsOf('fragile')?.status === 'running', `fragile running (round ${i})`);
      await assert.rejects(sys.ask(ref, { type: 'boom' }), ActorFailedError);
      sys.tell(bystander, { type: 'inc' });
      await clock.advance(10);
    }
    await until(() => escalations.some((e) => e.actor === 'fragile'), 'escalation reported');
    const esc = escalations.find((e) => e.actor === 'fragile');
    assert.match(String((esc?.err as Error).message), /kaboom/);
    assert.equal(sys.statsOf('fragile'), undefined, 'a stopped actor leaves the system');
    await assert.rejects(sys.ask(ref, { type: 'get' }, { timeoutMs: 2_000 }), NoRespondersError);
    assert.equal(await sys.ask(bystander, { type: 'get' }), 3, 'the crash did not stop another actor');
  });

  it('supervision - a child that escalates fails its parent, whose restart starts a new child', async () => {
    let childRef: ActorRef<CounterMsg> | undefined;
    const parentLog: string[] = [];
    const childLog: string[] = [];
    const parent = sys.spawn(
      'parent',
      {
        init: (ctx) => {
          parentLog.push(`init#${ctx.incarnation}`);
          childRef = ctx.spawn('parent.child', counter(childLog), { supervision: { maxRestarts: 0 } });
          return null;
        },
        receive: (s, _m: { type: 'ping' }, ctx) => {
          ctx.reply('pong');
          return s;
        },
      },
      { supervision: { backoffMinMs: 50, backoffMaxMs: 50 } },
    );
    await until(() => sys.statsOf('parent.child')?.status === 'running', 'child running');
    assert.equal(sys.statsOf('parent.child')?.parent, 'parent');
    await assert.rejects(sys.ask(childRef as ActorRef<CounterMsg>, { type: 'boom' }), ActorFailedError);
    await until(() => sys.statsOf('parent')?.status === 'restarting', 'parent failed after the child escalated');
    assert.match(sys.statsOf('parent')?.lastError ?? '', /child actor parent.child escalated: kaboom/);
    await clock.advance(50);
    await until(() => sys.statsOf('parent.child')?.status === 'running', 'new child running');
    assert.equal(await sys.ask(parent, { type: 'ping' }), 'pong');
    assert.equal(await sys.ask(childRef as ActorRef<CounterMsg>, { type: 'get' }), 0);
    assert.deepEqual(parentLog, ['init#0', 'init#1']);
    assert.equal(sys.statsOf('parent')?.restarts, 1);
    assert.ok(!escalations.some((e) => e.actor === 'parent'), 'the parent restarted; it did not escalate');
  });

  it('supervision - an init that throws counts as a failure and is retried', async () => {
    let attempts = 0;
    const ref = sys.spawn('late-bloomer', {
      init: () => {
        attempts++;
        if (attempts < 3) throw new Error(`not yet (${attempts})`);
        return 'ready';
      },
      receive: (s, _m: unknown, ctx) => {
        ctx.reply(s);
        return s;
      },
    }, { supervision: { backoffMinMs: 20, backoffMaxMs: 20 } });
    await until(() => sys.statsOf('late-bloomer')?.failures === 1, 'first init failed');
    await clock.advance(20);
    await until(() => sys.statsOf('late-bloomer')?.failures === 2, 'second init failed');
    await clock.advance(20);
    assert.equal(await sys.ask(ref, {}), 'ready');
    assert.equal(sys.statsOf('late-bloomer')?.restarts, 2);
  });
});

type TimerMsg = { type: 'fire' } | { type: 'beat' } | { type: 'stats' } | { type: 'cancel' } | { type: 'boom' };

describe('timers', () => {
  it('timers - the manual clock drives schedule and every: nothing fires early, everything fires on time', async () => {
    const ref = sys.spawn('timed', {
      init: (ctx) => {
        ctx.schedule('once', 10_000, { type: 'fire' });
        ctx.every('beat', 1_000, { type: 'beat' });
        return { fired: [] as number[], beats: 0 };
      },
      receive(s, msg: TimerMsg, ctx) {
        if (msg.type === 'fire') s.fired.push(ctx.clock.now());
        else if (msg.type === 'beat') s.beats++;
        else if (msg.type === 'cancel') ctx.cancelTimer('beat');
        else if (msg.type === 'boom') throw new Error('boom');
        else ctx.reply({ fired: s.fired, beats: s.beats });
        return s;
      },
    }, { supervision: { backoffMinMs: 1, backoffMaxMs: 1 } });
    await until(() => sys.statsOf('timed')?.status === 'running', 'timed running');
    const start = clock.now();
    await clock.advance(9_999);
    assert.deepEqual(await sys.ask(ref, { type: 'stats' }), { fired: [], beats: 9 });
    await clock.advance(1);
    assert.deepEqual(await sys.ask(ref, { type: 'stats' }), { fired: [start + 10_000], beats: 10 });
    sys.tell(ref, { type: 'cancel' });
    await sys.flush();
    await until(() => sys.statsOf('timed')?.mailboxDepth === 0, 'cancel handled');
    await clock.advance(5_000);
    assert.deepEqual(await sys.ask(ref, { type: 'stats' }), { fired: [start + 10_000], beats: 10 });
  });

  it('timers - a restart cancels the old incarnation\'s timers', async () => {
    const ref = sys.spawn('timed-restart', {
      init: (ctx) => {
        if (ctx.incarnation === 0) ctx.schedule('stale', 1_000, { type: 'fire' });
        return { fired: 0 };
      },
      receive(s, msg: TimerMsg, ctx) {
        if (msg.type === 'fire') s.fired++;
        else if (msg.type === 'boom') throw new Error('boom');
        else ctx.reply(s.fired);
        return s;
      },
    }, { supervision: { backoffMinMs: 1, backoffMaxMs: 1 } });
    await until(() => sys.statsOf('timed-restart')?.status === 'running', 'running');
    await assert.rejects(sys.ask(ref, { type: 'boom' }));
    await clock.advance(1);
    await until(() => sys.statsOf('timed-restart')?.status === 'running', 'restarted');
    await clock.advance(2_000);
    assert.equal(await sys.ask(ref, { type: 'stats' }), 0);
  });
});
