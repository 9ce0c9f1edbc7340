/**
 * The lean request-reply every Shoal request goes through (client, actor asks, Raft transport),
 * against a real nats-server: replies reach their own caller under many in flight, and the
 * failures are the classes callers tell apart (timeout; no responders; closed).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { headers, NoRespondersError, RequestError, TimeoutError, type NatsConnection } from '@nats-io/transport-node';
import { InboxRequester } from '../../src/runtime/inbox-requester.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { connectTo, startTestNats } from '../helpers/nats.js';

let server: NatsServer;
let nc: NatsConnection;
let responder: NatsConnection;

before(async () => {
  server = await startTestNats();
  nc = await connectTo(server);
  responder = await connectTo(server);
  // Echoes the body with the value of header `x`, after a delay the body names (ms, as text).
  responder.subscribe('echo', {
    callback: (_err, msg) => {
      const text = new TextDecoder().decode(msg.data);
      setTimeout(() => msg.respond(new TextEncoder().encode(`${text}|${msg.headers?.get('x') ?? ''}`)), Number(text.split(':')[0]) || 0);
    },
  });
  responder.subscribe('silent', { callback: () => undefined });
  await responder.flush();
});

after(async () => {
  await nc?.close();
  await responder?.close();
  await server?.stop();
});

describe('inbox requester', () => {
  it('requests - 500 in flight with random delays each get their own reply, headers carried', async () => {
    const r = new InboxRequester(nc);
    const h = headers();
    h.set('x', 'h');
    const bodies = Array.from({ length: 500 }, (_, i) => `${i % 7}:${i}`);
    const replies = await Promise.all(bodies.map((b, i) => r.request('echo', new TextEncoder().encode(b), { timeout: 5_000, headers: i % 2 ? h : undefined })));
    replies.forEach((m, i) => assert.equal(new TextDecoder().decode(m.data), `${bodies[i]}|${i % 2 ? 'h' : ''}`));
    assert.equal(r.outstanding, 0);
    r.close();
  });

  it('requests - no reply in time is a TimeoutError; nobody subscribed is a RequestError caused by NoRespondersError', async () => {
    const r = new InboxRequester(nc);
    const t0 = Date.now();
    await assert.rejects(r.request('silent', new Uint8Array(0), { timeout: 150 }), (err) => err instanceof TimeoutError);
    assert.ok(Date.now() - t0 >= 140, 'waited for the timeout');
    await assert.rejects(r.request('nobody.here', new Uint8Array(0), { timeout: 5_000 }), (err) => {
      assert.ok(err instanceof RequestError && err.isNoResponders(), String(err));
      assert.ok(err.cause instanceof NoRespondersError);
      assert.match(err.message, /nobody\.here/);
      return true;
    });
    // a late reply after a timeout goes nowhere, and the next request still works
    await assert.rejects(r.request('echo', new TextEncoder().encode('300:late'), { timeout: 50 }), (err) => err instanceof TimeoutError);
    const ok = await r.request('echo', new TextEncoder().encode('0:next'), { timeout: 5_000 });
    assert.equal(new TextDecoder().decode(ok.data), '0:next|');
    assert.equal(r.outstanding, 0);
    r.close();
  });

  it('requests - close fails what is still waiting at once', async () => {
    const r = new InboxRequester(nc);
    const pending = r.request('silent', new Uint8Array(0), { timeout: 60_000 });
    r.close();
    await assert.rejects(pending, (err) => err instanceof RequestError && /closed/.test(err.message));
  });
});
