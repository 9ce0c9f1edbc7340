/**
 * The receiving side of bench:heal's anchor, in its own process as a node would be: answers each
 * request on `bench.heal.chunk` with one byte (a snapshot chunk's answer is CBOR `true`, one byte).
 * Usage: node chunk-sink.js <nats-url>; prints "ready" once subscribed.
 */
import { connect } from '@nats-io/transport-node';
import { NATS_CONNECTION_DEFAULTS } from '../src/runtime/actor-system.js';

const url = process.argv[2];
if (!url) throw new Error('usage: chunk-sink <nats-url>');
const nc = await connect({ servers: url, ...NATS_CONNECTION_DEFAULTS });
const ACK = new Uint8Array([0xf5]);
let bytes = 0;
nc.subscribe('bench.heal.chunk', {
  callback: (_e, m) => {
    bytes += m.data.length;
    m.respond(ACK);
  },
});
await nc.flush();
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  process.stderr.write(`chunk-sink: ${bytes} bytes received\n`);
  void nc.close().then(() => process.exit(0));
});
