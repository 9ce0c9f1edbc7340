/**
 * NATS decentralized auth for tests, without `nsc`: an operator, accounts and users as JWTs
 * (NATS JWT v2, ed25519-nkey signatures made with nats.js's nkeys), a nats-server configuration
 * that trusts the operator (a memory resolver preloaded with the accounts), and `.creds` files.
 */
import { createHash } from 'node:crypto';
import { nkeys } from '@nats-io/transport-node';

type KeyPair = ReturnType<typeof nkeys.createOperator>;

export interface NatsPermissions {
  pub?: { allow?: string[]; deny?: string[] };
  sub?: { allow?: string[]; deny?: string[] };
}

const UNLIMITED = { subs: -1, data: -1, payload: -1 };

function b64url(data: string | Uint8Array): string {
  return Buffer.from(data).toString('base64url');
}

/** A JWT of `claims` about `subject`, issued and signed by `issuer` (jti: the claims' SHA-512/256, as the NATS jwt library makes it). */
function jwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = { iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats };
  const jti = createHash('sha512-256').update(JSON.stringify(claims)).digest();
  claims['jti'] = base32(jti);
  const signing = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64url(JSON.stringify(claims))}`;
  return `${signing}.${b64url(issuer.sign(new TextEncoder().encode(signing)))}`;
}

function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

export interface TestAccount {
  name: string;
  key: KeyPair;
  jwt: string;
}

export class TestOperator {
  readonly key = nkeys.createOperator();
  readonly jwt: string;
  readonly system: TestAccount;
  readonly accounts: TestAccount[] = [];

  constructor(name = 'shoal-test-operator') {
    this.jwt = jwt(this.key, this.key.getPublicKey(), name, { type: 'operator', version: 2 });
    this.system = this.account('SYS', false);
  }

  /** A new account; with `jetstream`, JetStream without limits. */
  account(name: string, jetstream = true): TestAccount {
    const key = nkeys.createAccount();
    const limits = { ...UNLIMITED, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1, ...(jetstream ? { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } : {}) };
    const acc = { name, key, jwt: jwt(this.key, key.getPublicKey(), name, { limits, default_permissions: { pub: {}, sub: {} }, type: 'account', version: 2 }) };
    if (name !== 'SYS') this.accounts.push(acc);
    return acc;
  }

  /** The `.creds` file text of a new user of `account`, with `permissions` (none: everything). */
  userCreds(account: TestAccount, name: string, permissions: NatsPermissions = {}): string {
    const user = nkeys.createUser();
    const token = jwt(account.key, user.getPublicKey(), name, { pub: permissions.pub ?? {}, sub: permissions.sub ?? {}, ...UNLIMITED, type: 'user', version: 2 });
    const seed = new TextDecoder().decode(user.getSeed());
    return `-----BEGIN NATS USER JWT-----\n${token}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\nNKEYs are sensitive and should be treated as secrets.\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n\n*************************************************************\n`;
  }

  /** The nats-server configuration that trusts this operator and knows its accounts. */
  serverConfig(): string {
    const preload = [this.system, ...this.accounts].map((a) => `  ${a.key.getPublicKey()}: ${a.jwt}`).join('\n');
    return `operator: ${this.jwt}\nsystem_account: ${this.system.key.getPublicKey()}\nresolver: MEMORY\nresolver_preload: {\n${preload}\n}\n`;
  }
}
