/**
 * The one way tests get a NATS server: a real nats-server on a free port with JetStream and a
 * temporary store. Without nats-server installed the test fails and says how to install it.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { NatsServerNotFoundError, startNatsServer, type NatsServer, type NatsServerOptions } from '../../src/runtime/nats-server.js';
import type { NatsSecurity } from '../../src/runtime/nats-security.js';

export async function startTestNats(opts: NatsServerOptions = {}): Promise<NatsServer> {
  try {
    return await startNatsServer(opts);
  } catch (err) {
    if (err instanceof NatsServerNotFoundError) {
      throw new Error(`this test needs a real nats-server. ${err.message}`);
    }
    throw err;
  }
}

/** A connection to `server`; `security` (TLS, credentials, user) when the server requires it. */
export async function connectTo(server: NatsServer, security: NatsSecurity = {}): Promise<NatsConnection> {
  return connect({ servers: server.url, ...security });
}
