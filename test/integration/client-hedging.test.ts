/**
 * The client's hedged copies against a real nats-server, with a responder standing in for the
 * routers: which answer the caller gets when the two copies of a request answer differently.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { MIN_ANSWERS } from '../../src/client/answer-times.js';
import { ShoalClient } from '../../src/client/client.js';
import { InvalidArgumentError, NotFoundError } from '../../src/runtime/errors.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { connectTo, startTestNats } from '../helpers/nats.js';

let server: NatsServer;
let nc: NatsConnection;
let client: ShoalClient;

before(async () => {
  server = await startTestNats();
  nc = await connectTo(server);
  client = await ShoalClient.connect({ nc, hedgeAfterMs: 100 });
});

after(async () => {
  await client.close();
  await nc.close();
  await server.stop();
});

const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

/** Answers the n-th copy (from 0) of each request on `subject` as `answer` says; `undefined` never answers. */
function respond(subject: string, answer: (n: number) => { afterMs: number; body: unknown } | undefined): { sub: Subscription; copies: () => number } {
  let n = 0;
  const sub = nc.subscribe(subject, {
    callback: (_err, m: Msg) => {
      const a = answer(n++);
      if (a) setTimeout(() => m.respond(json(a.body)), a.afterMs);
    },
  });
  return { sub, copies: () => n };
}

describe('client hedging', () => {
  it('client - a drop that succeeded is reported dropped, though its copy answered NOT_FOUND first', async () => {
    // The first copy reaches a slow router that drops the collection; the copy reaches another
    // router after that, and finds nothing to drop.
    const r = respond('shoal.v1.admin.collections.drop', (n) =>
      n === 0 ? { afterMs: 400, body: { dropped: true } } : { afterMs: 0, body: { error: { code: 'NOT_FOUND', message: "collection 'docs' does not exist" } } },
    );
    try {
      assert.equal(await client.dropCollection('docs', 2_000), true);
      assert.equal(r.copies(), 2, 'the request was hedged');
    } finally {
      r.sub.unsubscribe();
    }
  });

  it('client - an error every copy would get answers at once, without waiting for a stuck copy', async () => {
    const r = respond('shoal.v1.docs.search', (n) => (n === 0 ? undefined : { afterMs: 0, body: { error: { code: 'INVALID_ARGUMENT', message: 'vector has 2 dimensions; collection docs has 3' } } }));
    try {
      const t0 = Date.now();
      await assert.rejects(client.collection('docs').search([1, 0], { timeoutMs: 3_000 }), InvalidArgumentError);
      assert.ok(Date.now() - t0 < 1_500, `answered after ${Date.now() - t0} ms`);
      assert.equal(r.copies(), 2);
    } finally {
      r.sub.unsubscribe();
    }
  });

  it('client - by default, requests that are only slow stop being copied once their answer times are known, and a stuck one is still copied', async () => {
    // A client with the default hedge delay: deadline 1,000 ms, so a copy after 250 ms until the
    // subject's answers say they take longer (answer-times.ts).
    const adaptive = await ShoalClient.connect({ nc });
    let stuck = -1; // the copy (by count) the responder leaves unanswered, as a paused router would
    const r = respond('shoal.v1.slow.count', (n) => (n === stuck ? undefined : { afterMs: 300, body: { count: 1 } }));
    try {
      const coll = adaptive.collection('slow');
      assert.equal(await coll.count({ timeoutMs: 1_000 }), 1);
      // it waited 300 ms > 250 ms: it was copied (the test's premise)
      assert.equal(r.copies(), 2, 'the first request was copied');
      for (let i = 1; i < MIN_ANSWERS; i++) assert.equal(await coll.count({ timeoutMs: 1_000 }), 1);
      const learning = r.copies();
      for (let i = 0; i < 6; i++) assert.equal(await coll.count({ timeoutMs: 1_000 }), 1);
      // now a copy waits for 1.5 x ~300 ms: none, or one if the machine stalled an answer
      const later = r.copies() - learning;
      assert.ok(later <= 7, `6 slow requests made ${later} copies (12 with the fixed 250 ms delay)`);
      // a request whose first copy is stuck is still copied before its deadline, and answered
      stuck = r.copies();
      const t0 = Date.now();
      assert.equal(await coll.count({ timeoutMs: 1_000 }), 1);
      assert.equal(r.copies() - stuck, 2, 'the stuck request was copied');
      assert.ok(Date.now() - t0 < 1_000, `answered after ${Date.now() - t0} ms`);
    } finally {
      r.sub.unsubscribe();
      await adaptive.close();
    }
  });

  it('client - when the other copy never answers, a copy\'s error reply is the answer, not a timeout', async () => {
    const r = respond('shoal.v1.admin.collections.drop', (n) => (n === 0 ? undefined : { afterMs: 0, body: { error: { code: 'NOT_FOUND', message: "collection 'gone' does not exist" } } }));
    try {
      await assert.rejects(client.dropCollection('gone', 300), NotFoundError);
      assert.equal(r.copies(), 2);
    } finally {
      r.sub.unsubscribe();
    }
  });
});
