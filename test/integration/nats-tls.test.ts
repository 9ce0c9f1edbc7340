/**
 * Mutual TLS to the NATS server (docs/security.md): a nats-server that requires client
 * certificates signed by its CA (certificates made by openssl), nodes given theirs through
 * SHOAL_NATS_TLS_*, clients through ClientOptions.security and the CLI's --tls-* flags. Those
 * with a certificate work; a client without one, or with one from another CA, is refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ShoalClient, UnavailableError } from '../../src/client/mod.js';
import { makeDevCertificates, type DevCertificates } from '../../src/cli/dev-certs.js';
import { TestCluster } from '../helpers/cluster.js';
import { runShoal, type CliRun } from '../helpers/run-cli.js';

let dir: string;
let certs: DevCertificates;
let stranger: DevCertificates;
let cluster: TestCluster;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-tls-'));
  certs = makeDevCertificates(join(dir, 'ca'), ['node', 'client']);
  stranger = makeDevCertificates(join(dir, 'other-ca'), ['stranger']);
  const node = certs.clients['node']!;
  const client = certs.clients['client']!;
  cluster = await TestCluster.start({
    nodes: 2,
    nats: { tls: { certFile: certs.server.cert, keyFile: certs.server.key, caFile: certs.ca, verify: true } },
    env: { SHOAL_NATS_TLS_CA: certs.ca, SHOAL_NATS_TLS_CERT: node.cert, SHOAL_NATS_TLS_KEY: node.key },
    clientSecurity: { tls: { caFile: certs.ca, certFile: client.cert, keyFile: client.key } },
  });
});

after(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function shoal(...args: string[]): Promise<CliRun> {
  return runShoal([...args, '--nats', cluster.nats.url], { SHOAL_STATE_DIR: join(dir, 'state') });
}

describe('nats tls - mutual TLS', () => {
  it('nats tls - nodes and clients with certificates run the cluster: create, upsert, search; the CLI with --tls-* flags counts', async () => {
    const client = await cluster.client();
    await client.createCollection({ name: 'docs', dim: 3, metric: 'l2', shards: 1, replicas: 2 });
    const docs = client.collection('docs');
    await cluster.waitFor(async () => (await docs.upsert([
      { id: 'a', vector: [1, 0, 0] },
      { id: 'b', vector: [0, 1, 0] },
      { id: 'c', vector: [0, 0, 1] },
    ])) === 3, 'the upsert');
    const found = await docs.search([0.9, 0.1, 0], { k: 1 });
    assert.equal(found.hits[0]?.id, 'a');

    const client2 = certs.clients['client']!;
    const r = await shoal('count', 'docs', '--json', '--tls-ca', certs.ca, '--tls-cert', client2.cert, '--tls-key', client2.key);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { count: 3 });
  });

  it('nats tls - a client without a certificate, with one from another CA, or without TLS is refused; the cluster goes on', async () => {
    const refused = async (security: Parameters<typeof ShoalClient.connect>[0] & object, what: string): Promise<void> => {
      await assert.rejects(ShoalClient.connect({ servers: cluster.nats.url, connectTimeoutMs: 3_000, ...security }), (err: unknown) => {
        assert.ok(err instanceof UnavailableError, `${what}: an UnavailableError, got ${String(err)}`);
        assert.match(err.message, /cannot connect to NATS/);
        return true;
      }, what);
    };
    await refused({ security: { tls: { caFile: certs.ca } } }, 'no client certificate');
    const other = stranger.clients['stranger']!;
    await refused({ security: { tls: { caFile: certs.ca, certFile: other.cert, keyFile: other.key } } }, 'a certificate of another CA');
    await refused({}, 'no TLS');

    const cli = await shoal('count', 'docs', '--tls-ca', certs.ca, '--timeout', '3000');
    assert.equal(cli.code, 14, `UNAVAILABLE's exit code; stderr: ${cli.stderr}`);
    assert.match(cli.stderr, /cannot connect to NATS .*no client certificate was given/);

    const missingKey = await shoal('count', 'docs', '--tls-ca', certs.ca, '--tls-cert', certs.clients['client']!.cert);
    assert.equal(missingKey.code, 2, 'a usage error');
    assert.match(missingKey.stderr, /--tls-cert needs --tls-key/);

    assert.equal(await (await cluster.client()).collection('docs').count(), 3, 'the cluster still serves certified clients');
  });
});
