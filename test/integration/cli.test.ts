import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;
const PKG = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

function shoal(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

describe('shoal command', () => {
  it('cli - --help lists the commands and exits 0', () => {
    const r = shoal('--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /Usage: shoal <command>/);
    assert.match(r.stdout, /nats\s+start a local nats-server/);
    assert.match(r.stdout, /version\s+print the version/);
  });

  it('cli - version prints the package version', () => {
    const r = shoal('version');
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim().split(' ')[1], PKG.version);
  });

  it('cli - an unknown command or a bad option exits 2 and says what was wrong', () => {
    const r = shoal('frobnicate');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
    const bad = shoal('nats', '--port', 'x');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--port must be 0 to 65535, got x/);
    const unknownFlag = shoal('nats', '--bogus');
    assert.equal(unknownFlag.status, 2);
    assert.match(unknownFlag.stderr, /bogus/);
  });

  it('cli - nats prints a URL that accepts clients with JetStream, and stops on Ctrl-C', async () => {
    const child = spawn(process.execPath, [CLI, 'nats', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0] as string);
      });
      child.once('exit', (c) => reject(new Error(`shoal nats exited early with ${c}: ${stderr}`)));
    });
    assert.match(url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    const nc = await connect({ servers: url });
    const info = await nc.request('$JS.API.INFO', new Uint8Array(0), { timeout: 2_000 });
    assert.ok(!('error' in info.json<object>()));
    await nc.close();
    const pid = Number(/nats-server (\d+) is listening/.exec(stderr)?.[1]);
    assert.ok(pid > 0, `stderr names the server pid: ${stderr}`);
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGINT');
    });
    assert.equal(code, 0);
    assert.throws(() => process.kill(pid, 0), 'the server is gone after Ctrl-C');
  });
});
