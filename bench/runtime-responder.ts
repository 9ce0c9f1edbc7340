/**
 * The answering side of the runtime benchmark, in its own process as a node would be: a raw
 * NATS responder that echoes the request bytes, a hand-written NATS service that decodes the
 * CBOR request and encodes its reply, and an actor that replies with the message.
 * Usage: node runtime-responder.js <nats-url>; prints "ready" when both are subscribed.
 */
import { connect } from '@nats-io/transport-node';
import { ActorSystem, NATS_CONNECTION_DEFAULTS } from '../src/runtime/actor-system.js';
import { decodeCbor, encodeCbor } from '../src/runtime/codec.js';

const url = process.argv[2];
if (!url) throw new Error('usage: runtime-responder <nats-url>');
const raw = await connect({ servers: url, ...NATS_CONNECTION_DEFAULTS });
raw.subscribe('bench.raw.echo', {
  callback: (_e, m) => {
    m.respond(m.data);
  },
});
raw.subscribe('bench.cbor.echo', {
  callback: (_e, m) => {
    m.respond(encodeCbor(decodeCbor(m.data)));
  },
});
await raw.flush();
const sys = await ActorSystem.connect(url, { name: 'responder' });
sys.spawn('echo', {
  init: () => null,
  receive: (s, msg: unknown, ctx) => {
    ctx.reply(msg);
    return s;
  },
}, { mailboxCapacity: 100_000 });
await sys.flush();
process.stdout.write('ready\n');
process.once('SIGTERM', () => void Promise.all([sys.shutdown(), raw.close()]).then(() => process.exit(0)));
