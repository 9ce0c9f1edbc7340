/**
 * How a connection proves who it is to the NATS server and protects its traffic: mutual TLS,
 * a credentials file (JWT + nkey), or a user and password. `src/cli/nats-security.ts` builds
 * it from the `--tls-*`, `--creds`, `--user`/`--password` flags and `SHOAL_NATS_*` variables;
 * nodes ({@link ActorSystem.connect}) and clients (`ShoalClient.connect`) pass it to nats.js.
 */
import type { ConnectionOptions } from '@nats-io/transport-node';

/** The security part of nats.js's connection options. Empty: a plain, anonymous connection. */
export type NatsSecurity = Pick<ConnectionOptions, 'tls' | 'authenticator' | 'user' | 'pass'>;
