/**
 * A node started before JetStream can answer: one server of a three-server NATS cluster is up,
 * so the cluster has no JetStream leader. The node must wait, saying so, and come up once the
 * other servers join; not exit on a timeout.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

describe('node start', () => {
  it('node start - a node started while the NATS cluster has no JetStream leader waits, says so, and comes up when the cluster forms', async () => {
    const clusterPorts = await Promise.all([freePort(), freePort(), freePort()]);
    const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`);
    const server = (i: number): Promise<NatsServer> =>
      startTestNats({ serverName: `s${i}`, cluster: { name: 'c', port: clusterPorts[i] as number, routes: routes.filter((_, k) => k !== i) } });
    const servers: NatsServer[] = [await server(0)];
    const data = mkdtempSync(join(tmpdir(), 'shoal-node-start-'));
    const proc = spawn(process.execPath, [CLI, 'node', '--id', 'n1', '--nats', (servers[0] as NatsServer).url, '--data', data], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, SHOAL_LOG_LEVEL: 'info', SHOAL_EXIT_ON_STDIN_EOF: '1' },
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let exited: string | undefined;
    proc.once('exit', (code, sig) => (exited = `${sig ?? code}`));
    try {
      const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
        for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (cond()) return true;
        return cond();
      };
      assert.ok(await until(() => /waiting for JetStream/.test(err) || exited !== undefined, 20_000), `the node neither waited nor exited: ${err}`);
      assert.equal(exited, undefined, `the node exited (${exited}) instead of waiting: ${err}`);
      assert.doesNotMatch(out, /ready/);
      // Still waiting a while later, not gone.
      await new Promise((r) => setTimeout(r, 3_000));
      assert.equal(exited, undefined, `the node exited (${exited}) while waiting: ${err}`);
      servers.push(await server(1), await server(2));
      assert.ok(await until(() => /ready n1/.test(out) || exited !== undefined, 60_000), `the node did not come up after the cluster formed: ${err.slice(-2000)}`);
      assert.equal(exited, undefined, `the node exited (${exited}): ${err.slice(-2000)}`);
    } finally {
      proc.stdin.end();
      if (exited === undefined) await new Promise((r) => proc.once('exit', r));
      await Promise.all(servers.map((s) => s.stop()));
      rmSync(data, { recursive: true, force: true });
    }
  });
});
