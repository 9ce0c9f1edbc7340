/**
 * `shoal dev --tls`: throwaway certificates made with openssl, a nats-server that requires client
 * certificates, nodes that have one; the SHOAL_NATS_TLS_* lines it prints give a client what it
 * needs, and a client without a certificate is refused.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI, runShoal, type CliRun } from '../helpers/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'shoal-dev-tls-'));
let dev: ChildProcess | undefined;

after(async () => {
  if (dev && dev.exitCode === null) {
    const exited = new Promise((r) => dev?.once('exit', r));
    dev.kill('SIGINT');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

function shoal(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  return runShoal(args, { ...env, SHOAL_STATE_DIR: join(dir, 'state') });
}

describe('shoal dev --tls', () => {
  it('shoal dev --tls - runs over mutual TLS; its printed variables let a client in, a client without a certificate is refused', async () => {
    const data = join(dir, 'data');
    dev = spawn(process.execPath, [CLI, 'dev', '--tls', '--nodes', '1', '--port', '0', '--data', data], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    dev.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      dev?.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0] as string);
      });
      dev?.once('exit', (c) => reject(new Error(`shoal dev exited with ${c}: ${err}`)));
    });
    const env: Record<string, string> = {};
    for (let i = 0; i < 100 && !/SHOAL_NATS_TLS_KEY=/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    for (const m of err.matchAll(/export (SHOAL_NATS_TLS_\w+)=(\S+)/g)) env[m[1] as string] = m[2] as string;
    assert.deepEqual(Object.keys(env).sort(), ['SHOAL_NATS_TLS_CA', 'SHOAL_NATS_TLS_CERT', 'SHOAL_NATS_TLS_KEY'], err);
    for (const file of Object.values(env)) assert.ok(existsSync(file), `${file} exists`);

    let status = { code: -1, stdout: '', stderr: '' };
    for (let i = 0; i < 100 && status.code !== 0; i++) {
      status = await shoal(env, 'status', '--nats', url, '--json');
      if (status.code !== 0) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status.code, 0, `status with the printed variables: ${status.stderr}\n${err}`);
    assert.equal((JSON.parse(status.stdout) as { nodes: { state: string }[] }).nodes[0]?.state, 'up');

    const refused = await shoal({}, 'status', '--nats', url, '--tls-ca', env['SHOAL_NATS_TLS_CA'] as string, '--timeout', '2000');
    assert.equal(refused.code, 14, `UNAVAILABLE without a client certificate: ${refused.stderr}`);
    assert.match(refused.stderr, /no client certificate was given/);

    const exited = new Promise<number | null>((r) => dev?.once('exit', r));
    dev.kill('SIGINT');
    assert.equal(await exited, 0, err);
  });
});
