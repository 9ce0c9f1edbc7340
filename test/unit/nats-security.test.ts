/** How the NATS security flags and SHOAL_NATS_* variables become connection options, and how bad ones are refused. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { nkeys } from '@nats-io/transport-node';
import { UsageError } from '../../src/cli/command.js';
import { describeSecurity, natsSecurityFrom } from '../../src/cli/nats-security.js';

const dir = mkdtempSync(join(tmpdir(), 'shoal-sec-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

// The checks read only the PEM markers; the TLS test (test/integration/tls.test.ts) uses real certificates.
const CA = file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const CERT = file('cert.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const KEY = file('key.pem', '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n');
const EC_KEY = file('ec-key.pem', '-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n');
const user = nkeys.createUser();
const JWT = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln';
const CREDS = file('user.creds', `-----BEGIN NATS USER JWT-----\n${JWT}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\n\n-----BEGIN USER NKEY SEED-----\n${new TextDecoder().decode(user.getSeed())}\n------END USER NKEY SEED------\n`);

function usageError(fn: () => unknown, mentions: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, `a UsageError, got ${String(err)}`);
    assert.match(err.message, mentions);
    return true;
  });
}

describe('nats security - options', () => {
  it('nats security - nothing given is a plain connection', () => {
    assert.deepEqual(natsSecurityFrom({}, {}), {});
    assert.equal(describeSecurity(natsSecurityFrom({}, {})), 'none');
  });

  it('nats security - flags give mutual TLS file paths', () => {
    const sec = natsSecurityFrom({ 'tls-ca': CA, 'tls-cert': CERT, 'tls-key': EC_KEY }, {});
    assert.deepEqual(sec.tls, { caFile: CA, certFile: CERT, keyFile: EC_KEY });
    assert.equal(describeSecurity(sec), 'tls+client-cert');
  });

  it('nats security - a CA alone verifies the server without a client certificate', () => {
    assert.deepEqual(natsSecurityFrom({ 'tls-ca': CA }, {}).tls, { caFile: CA });
  });

  it('nats security - variables stand in for flags, and a flag wins over its variable', () => {
    const env = { SHOAL_NATS_TLS_CA: CA, SHOAL_NATS_TLS_CERT: CERT, SHOAL_NATS_TLS_KEY: KEY, SHOAL_NATS_USER: 'app', SHOAL_NATS_PASSWORD: 'from-env' };
    const sec = natsSecurityFrom({ password: 'from-flag' }, env);
    assert.deepEqual(sec.tls, { caFile: CA, certFile: CERT, keyFile: KEY });
    assert.equal(sec.user, 'app');
    assert.equal(sec.pass, 'from-flag');
  });

  it('nats security - a certificate without its key (and the reverse) names the missing flag', () => {
    usageError(() => natsSecurityFrom({ 'tls-cert': CERT }, {}), /--tls-cert needs --tls-key/);
    usageError(() => natsSecurityFrom({}, { SHOAL_NATS_TLS_KEY: KEY }), /SHOAL_NATS_TLS_KEY needs --tls-cert/);
  });

  it('nats security - an unreadable or missing file names the flag and the path', () => {
    usageError(() => natsSecurityFrom({ 'tls-ca': join(dir, 'nope.pem') }, {}), /--tls-ca .*nope\.pem cannot be read: ENOENT/);
    usageError(() => natsSecurityFrom({ 'tls-ca': dir }, {}), /--tls-ca .* cannot be read: EISDIR/);
    usageError(() => natsSecurityFrom({ creds: join(dir, 'none.creds') }, {}), /--creds .*none\.creds cannot be read/);
  });

  it('nats security - a file of the wrong kind is refused, naming the flag', () => {
    usageError(() => natsSecurityFrom({ 'tls-cert': KEY, 'tls-key': KEY }, {}), /--tls-cert .*not a PEM file with a certificate/);
    usageError(() => natsSecurityFrom({ 'tls-cert': CERT, 'tls-key': CERT }, {}), /--tls-key .*not a PEM file with a private key/);
    usageError(() => natsSecurityFrom({}, { SHOAL_NATS_CREDS: CA }), /SHOAL_NATS_CREDS .*is not a NATS credentials file/);
    usageError(() => natsSecurityFrom({ 'tls-ca': '' }, {}), /--tls-ca is empty/);
  });

  it('nats security - user and password come together; creds and user are one too many', () => {
    usageError(() => natsSecurityFrom({ user: 'app' }, {}), /--user needs --password/);
    usageError(() => natsSecurityFrom({}, { SHOAL_NATS_PASSWORD: 'x' }), /SHOAL_NATS_PASSWORD needs --user/);
    usageError(() => natsSecurityFrom({ creds: CREDS, user: 'app', password: 'x' }, {}), /--creds and --user are two ways to authenticate/);
    const sec = natsSecurityFrom({ user: 'app', password: 'pw' }, {});
    assert.equal(sec.user, 'app');
    assert.equal(sec.pass, 'pw');
    assert.equal(describeSecurity(sec), 'user app');
  });

  it('nats security - a creds file signs the server nonce with its seed and presents its JWT', () => {
    const sec = natsSecurityFrom({ creds: CREDS }, {});
    assert.equal(typeof sec.authenticator, 'function');
    const auth = (sec.authenticator as (nonce?: string) => { jwt?: string; sig?: string })('a-nonce');
    assert.equal(auth.jwt, JWT);
    const verifier = nkeys.fromPublic(user.getPublicKey());
    const sig = Uint8Array.from(Buffer.from(auth.sig ?? '', 'base64url'));
    assert.ok(verifier.verify(new TextEncoder().encode('a-nonce'), sig), 'the signature is the seed\'s');
    assert.equal(describeSecurity(sec), 'creds');
  });
});
