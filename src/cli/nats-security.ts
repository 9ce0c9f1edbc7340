/**
 * The one place that turns the NATS security flags and variables into connection options, for
 * `shoal node`, every client verb, `shoal dev --tls` and the tests:
 *
 * | flag | variable | |
 * |---|---|---|
 * | `--tls-ca <file>` | `SHOAL_NATS_TLS_CA` | the CA that signed the server's certificate (PEM) |
 * | `--tls-cert <file>` | `SHOAL_NATS_TLS_CERT` | this process's certificate (PEM), for mutual TLS |
 * | `--tls-key <file>` | `SHOAL_NATS_TLS_KEY` | its private key (PEM) |
 * | `--creds <file>` | `SHOAL_NATS_CREDS` | a NATS credentials file: user JWT and nkey seed |
 * | `--user <name>` | `SHOAL_NATS_USER` | a user of the server's `authorization` block |
 * | `--password <pw>` | `SHOAL_NATS_PASSWORD` | its password |
 *
 * A flag wins over its variable. A bad combination or an unreadable file is a UsageError naming
 * the flag (or the variable) that gave it, before anything connects.
 */
import { readFileSync } from 'node:fs';
import { credsAuthenticator } from '@nats-io/transport-node';
import type { NatsSecurity } from '../runtime/nats-security.js';
import { UsageError } from './command.js';

export type { NatsSecurity };

export const NATS_SECURITY_OPTIONS = {
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  creds: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
} as const;

export const NATS_SECURITY_USAGE = `  --tls-ca <file>   CA certificate (PEM) that signed the NATS server's certificate ($SHOAL_NATS_TLS_CA)
  --tls-cert <file> client certificate (PEM) for mutual TLS ($SHOAL_NATS_TLS_CERT); needs --tls-key
  --tls-key <file>  the client certificate's private key (PEM) ($SHOAL_NATS_TLS_KEY)
  --creds <file>    NATS credentials file: user JWT and nkey seed ($SHOAL_NATS_CREDS)
  --user <name>     NATS user ($SHOAL_NATS_USER); needs --password
  --password <pw>   its password ($SHOAL_NATS_PASSWORD; the variable keeps it out of ps)`;

export interface NatsSecurityValues {
  'tls-ca'?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  creds?: string | undefined;
  user?: string | undefined;
  password?: string | undefined;
}

/** Each flag's variable. */
export const NATS_SECURITY_ENV: Record<keyof NatsSecurityValues, string> = {
  'tls-ca': 'SHOAL_NATS_TLS_CA',
  'tls-cert': 'SHOAL_NATS_TLS_CERT',
  'tls-key': 'SHOAL_NATS_TLS_KEY',
  creds: 'SHOAL_NATS_CREDS',
  user: 'SHOAL_NATS_USER',
  password: 'SHOAL_NATS_PASSWORD',
};

/** A value and the name it came under (`--tls-cert` or `SHOAL_NATS_TLS_CERT`), for messages. */
interface Given {
  value: string;
  from: string;
}

/**
 * The connection options that `values` (parsed flags) and `env` ask for: `{}` when none are
 * given. Throws a UsageError naming the flag or variable when a file cannot be read or is not
 * what it should be, or when a combination is incomplete (a certificate without its key, a user
 * without a password) or ambiguous (`--creds` with `--user`).
 */
export function natsSecurityFrom(values: NatsSecurityValues, env: NodeJS.ProcessEnv = process.env): NatsSecurity {
  const get = (flag: keyof NatsSecurityValues): Given | undefined => {
    const fromFlag = values[flag];
    if (fromFlag !== undefined) {
      if (fromFlag === '') throw new UsageError(`--${flag} is empty`);
      return { value: fromFlag, from: `--${flag}` };
    }
    const name = NATS_SECURITY_ENV[flag];
    const fromEnv = env[name];
    return fromEnv ? { value: fromEnv, from: name } : undefined;
  };
  const ca = get('tls-ca');
  const cert = get('tls-cert');
  const key = get('tls-key');
  const creds = get('creds');
  const user = get('user');
  const password = get('password');

  if (cert && !key) throw new UsageError(`${cert.from} needs --tls-key (or SHOAL_NATS_TLS_KEY): the private key of the certificate`);
  if (key && !cert) throw new UsageError(`${key.from} needs --tls-cert (or SHOAL_NATS_TLS_CERT): the certificate of the key`);
  if (creds && user) throw new UsageError(`${creds.from} and ${user.from} are two ways to authenticate; give one`);
  if (password && !user) throw new UsageError(`${password.from} needs --user (or SHOAL_NATS_USER)`);
  if (user && !password) throw new UsageError(`${user.from} needs --password (or SHOAL_NATS_PASSWORD)`);

  const out: NatsSecurity = {};
  if (ca || cert) {
    const tls: NonNullable<NatsSecurity['tls']> = {};
    if (ca) tls.caFile = pemFile(ca, 'CERTIFICATE');
    if (cert && key) {
      tls.certFile = pemFile(cert, 'CERTIFICATE');
      tls.keyFile = pemFile(key, 'PRIVATE KEY');
    }
    out.tls = tls;
  }
  if (creds) {
    const text = readText(creds);
    if (!/-----BEGIN NATS USER JWT-----/.test(text) || !/-----BEGIN USER NKEY SEED-----/.test(text)) {
      throw new UsageError(`${creds.from} ${creds.value} is not a NATS credentials file (it needs a "BEGIN NATS USER JWT" and a "BEGIN USER NKEY SEED" block)`);
    }
    out.authenticator = credsAuthenticator(new TextEncoder().encode(text));
  }
  if (user && password) {
    out.user = user.value;
    out.pass = password.value;
  }
  return out;
}

/** What `sec` uses, for a log line (no secrets): e.g. `tls+client-cert, user shoal-node`. */
export function describeSecurity(sec: NatsSecurity): string {
  const parts: string[] = [];
  if (sec.tls) parts.push(sec.tls.certFile ? 'tls+client-cert' : 'tls');
  if (sec.authenticator) parts.push('creds');
  if (sec.user !== undefined) parts.push(`user ${sec.user}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

function readText(g: Given): string {
  try {
    return readFileSync(g.value, 'utf8');
  } catch (err) {
    throw new UsageError(`${g.from} ${g.value} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** Checks that `g` names a readable PEM file holding a `kind` block; returns its path (nats.js reads it when it connects). */
function pemFile(g: Given, kind: 'CERTIFICATE' | 'PRIVATE KEY'): string {
  const text = readText(g);
  // "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY" are all keys.
  if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(text)) {
    throw new UsageError(`${g.from} ${g.value} is not a PEM file with a ${kind.toLowerCase()} ("-----BEGIN ${kind}-----")`);
  }
  return g.value;
}
