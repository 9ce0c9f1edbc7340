/**
 * `--creds` end to end: a nats-server in operator mode (JWTs made by test/helpers/nats-jwt.ts,
 * as `nsc` would make them), nodes logged in with SHOAL_NATS_CREDS, the CLI with --creds. The
 * user JWT's permissions are the server's to enforce: an application user's admin request is
 * refused. A creds file of an account the server does not know is refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { credsAuthenticator } from '@nats-io/transport-node';
import { TestCluster } from '../helpers/cluster.js';
import { TestOperator } from '../helpers/nats-jwt.js';
import { runShoal, type CliRun } from '../helpers/run-cli.js';

let dir: string;
let cluster: TestCluster;
const creds: Record<'node' | 'admin' | 'app' | 'stranger', string> = { node: '', admin: '', app: '', stranger: '' };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-creds-'));
  const operator = new TestOperator();
  const account = operator.account('SHOAL');
  const write = (name: keyof typeof creds, text: string): void => {
    creds[name] = join(dir, `${name}.creds`);
    writeFileSync(creds[name], text, { mode: 0o600 });
  };
  write('node', operator.userCreds(account, 'shoal-node'));
  write('admin', operator.userCreds(account, 'admin', { pub: { allow: ['shoal.v1.>'] }, sub: { allow: ['_INBOX.>'] } }));
  write('app', operator.userCreds(account, 'app', { pub: { allow: ['shoal.v1.docs.>'] }, sub: { allow: ['_INBOX.>'] } }));
  const other = new TestOperator('another-operator');
  write('stranger', other.userCreds(other.account('ELSEWHERE'), 'stranger'));
  cluster = await TestCluster.start({
    nodes: 2,
    nats: { config: operator.serverConfig() },
    env: { SHOAL_NATS_CREDS: creds.node },
    clientSecurity: { authenticator: credsAuthenticator(new TextEncoder().encode(operator.userCreds(account, 'test-admin'))) },
  });
});

after(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function shoal(...args: string[]): Promise<CliRun> {
  return runShoal([...args, '--nats', cluster.nats.url], { SHOAL_STATE_DIR: join(dir, 'state') });
}

describe('nats creds - JWT and nkey credentials', () => {
  it('nats creds - nodes with SHOAL_NATS_CREDS run the cluster; the CLI with --creds administers and counts', async () => {
    const created = await shoal('collections', 'create', 'docs', '--dim', '3', '--metric', 'l2', '--shards', '1', '--replicas', '2', '--creds', creds.admin);
    assert.equal(created.code, 0, created.stderr);
    const docs = (await cluster.client()).collection('docs');
    await cluster.waitFor(async () => (await docs.upsert([{ id: 'a', vector: [1, 0, 0] }, { id: 'b', vector: [0, 1, 0] }])) === 2, 'the upsert');
    const counted = await shoal('count', 'docs', '--json', '--creds', creds.app);
    assert.equal(counted.code, 0, counted.stderr);
    assert.deepEqual(JSON.parse(counted.stdout), { count: 2 });
  });

  it('nats creds - the user JWT\'s permissions hold (an application cannot create), and an unknown account is refused', async () => {
    const denied = await shoal('collections', 'create', 'evil', '--dim', '3', '--creds', creds.app, '--timeout', '1000');
    assert.equal(denied.code, 15, `TIMEOUT's exit code (no reply to a refused publish); stderr: ${denied.stderr}`);
    assert.deepEqual((await (await cluster.client()).listCollections()).map((c) => c.name), ['docs']);

    const stranger = await shoal('count', 'docs', '--creds', creds.stranger, '--timeout', '2000');
    assert.equal(stranger.code, 14, `UNAVAILABLE's exit code; stderr: ${stranger.stderr}`);
    assert.match(stranger.stderr, /cannot connect to NATS .*Authorization Violation/i);
  });
});
