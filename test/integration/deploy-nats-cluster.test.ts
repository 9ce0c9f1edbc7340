/**
 * The shipped NATS configuration run for real (issue 19, item 8): three nats-servers started
 * from deploy/nats/nats-a.conf as its header says to (copied to b and c; only the names, host
 * names, ports and store directory changed, since a test cannot bind 4222 or write /var/lib/nats),
 * with deploy/nats/permissions.conf included unchanged. They form one cluster with JetStream; the
 * `shoal-node` user makes Shoal's metadata bucket with three replicas through one server and reads
 * it back through another; the `app` user is refused the metadata bucket.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { findNatsServer } from '../../src/runtime/nats-server.js';
import { freePort } from '../helpers/prom-text.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const PASSWORDS = { SHOAL_NODE_PASSWORD: 'node-pw', SHOAL_APP_PASSWORD: 'app-pw', SHOAL_READER_PASSWORD: 'r', SHOAL_ADMIN_PASSWORD: 'o' };

interface Server { name: string; port: number; proc: ChildProcess; log: string[] }

/** The shipped file with only what a test must change replaced; fails if the file no longer has those lines. */
function adapt(text: string, name: string, port: number, http: number, store: string, clusterPort: number, routes: number[]): string {
  const swaps: [RegExp, string][] = [
    [/^server_name: nats-a$/m, `server_name: ${name}`],
    [/^listen: 0\.0\.0\.0:4222$/m, `listen: 127.0.0.1:${port}`],
    [/^http: 127\.0\.0\.1:8222$/m, `http: 127.0.0.1:${http}`],
    [/^(\s*)store_dir: \/var\/lib\/nats$/m, `$1store_dir: ${store}`],
    [/^(\s*)listen: 0\.0\.0\.0:6222$/m, `$1listen: 127.0.0.1:${clusterPort}`],
    [/routes: \[[^\]]*\]/, `routes: [${routes.map((p) => `nats://127.0.0.1:${p}`).join(', ')}]`],
  ];
  for (const [re, to] of swaps) {
    assert.match(text, re, `deploy/nats/nats-a.conf no longer has ${re}: update this test with it`);
    text = text.replace(re, to);
  }
  return text;
}

async function waitReady(s: Server, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (s.log.join('').includes('Server is ready')) return;
    if (s.proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${s.name} did not start from the shipped configuration (exit ${s.proc.exitCode}): ${s.log.join('').slice(-2000)}`);
}

describe('deploy - the shipped NATS configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-deploy-nats-'));
  const servers: Server[] = [];
  const conns: NatsConnection[] = [];
  after(async () => {
    for (const c of conns) await c.close().catch(() => {});
    for (const s of servers) s.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('deploy - three servers from nats-a.conf form a JetStream cluster; the node user keeps the metadata bucket on three replicas, the app user is refused it', async () => {
    const bin = findNatsServer();
    const shipped = readFileSync(join(ROOT, 'deploy/nats/nats-a.conf'), 'utf8');
    copyFileSync(join(ROOT, 'deploy/nats/permissions.conf'), join(dir, 'permissions.conf'));
    const names = ['nats-a', 'nats-b', 'nats-c'];
    const ports = await Promise.all(names.map(() => freePort()));
    const https = await Promise.all(names.map(() => freePort()));
    const clusterPorts = await Promise.all(names.map(() => freePort()));
    names.forEach((name, i) => {
      const conf = join(dir, `${name}.conf`);
      writeFileSync(conf, adapt(shipped, name, ports[i]!, https[i]!, join(dir, `${name}-store`), clusterPorts[i]!, clusterPorts));
      const proc = spawn(bin, ['-c', conf], { env: { ...process.env, ...PASSWORDS }, stdio: ['ignore', 'pipe', 'pipe'] });
      const s: Server = { name, port: ports[i]!, proc, log: [] };
      proc.stdout?.on('data', (d: Buffer) => s.log.push(d.toString()));
      proc.stderr?.on('data', (d: Buffer) => s.log.push(d.toString()));
      servers.push(s);
    });
    for (const s of servers) await waitReady(s, 15_000);

    const nodeA = await connect({ servers: `nats://127.0.0.1:${ports[0]}`, user: 'shoal-node', pass: PASSWORDS.SHOAL_NODE_PASSWORD });
    const nodeC = await connect({ servers: `nats://127.0.0.1:${ports[2]}`, user: 'shoal-node', pass: PASSWORDS.SHOAL_NODE_PASSWORD });
    conns.push(nodeA, nodeC);
    // JetStream in a cluster needs a meta leader first: the bucket is made once one is elected.
    let kvA;
    const end = Date.now() + 30_000;
    let lastErr: unknown;
    while (!kvA && Date.now() < end) {
      try {
        kvA = await new Kvm(nodeA).create('shoal-meta', { replicas: 3 });
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    assert.ok(kvA, `the node user could not make the metadata bucket on 3 replicas: ${String(lastErr)}`);
    await kvA.put('probe', 'from-a');
    const info = await (await jetstreamManager(nodeA)).streams.info('KV_shoal-meta');
    assert.equal(info.config.num_replicas, 3);
    assert.equal(info.cluster?.replicas?.length, 2, 'the bucket has a leader and two replicas on the other servers');
    const kvC = await new Kvm(nodeC).open('shoal-meta');
    const got = await kvC.get('probe');
    assert.equal(got?.string(), 'from-a', 'read back through another server of the cluster');

    const app = await connect({ servers: `nats://127.0.0.1:${ports[1]}`, user: 'app', pass: PASSWORDS.SHOAL_APP_PASSWORD });
    conns.push(app);
    await assert.rejects(async () => (await new Kvm(app).open('shoal-meta')).get('probe'), (err: Error) => /permission/i.test(String(err)) || /permission/i.test(String((err as { cause?: unknown }).cause)), 'the app user may not read the metadata bucket: NATS says permissions');
  });
});
