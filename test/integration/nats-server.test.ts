import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { findNatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (let t = 0; t < ms; t += 50) {
    if (!alive(pid)) return true;
    await sleep(50);
  }
  return !alive(pid);
}

describe('nats-server launcher', () => {
  it('nats-server - starts on a free port with JetStream, accepts clients, and stops cleanly', async () => {
    const a = await startTestNats();
    const b = await startTestNats();
    assert.notEqual(a.port, b.port);
    const nc = await connect({ servers: a.url });
    const info = await nc.request('$JS.API.INFO', new Uint8Array(0), { timeout: 2_000 });
    assert.ok(!('error' in info.json<object>()), `JetStream answers: ${info.string()}`);
    await nc.close();
    await Promise.all([a.stop(), b.stop()]);
    assert.ok(await waitGone(a.pid, 3_000), 'server process gone');
    assert.ok(!existsSync(a.storeDir), 'temporary store removed');
  });

  it('nats-server - dies with its parent, even when the parent is SIGKILLed', async () => {
    const parent = spawn(process.execPath, [new URL('../fixtures/nats-parent.js', import.meta.url).pathname], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      parent.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      parent.once('exit', (c) => reject(new Error(`parent exited early: ${c}`)));
    });
    const [pidText, storeDir, url] = line.split(' ');
    const pid = Number(pidText);
    assert.ok(alive(pid));
    const nc = await connect({ servers: url });
    await nc.close();
    parent.kill('SIGKILL');
    assert.ok(await waitGone(pid, 5_000), `nats-server ${pid} outlived its SIGKILLed parent`);
    for (let t = 0; t < 40 && existsSync(storeDir as string); t++) await sleep(50);
    assert.ok(!existsSync(storeDir as string), 'its temporary store is removed too');
  });

  it('nats-server - a missing binary fails with the command that installs it', () => {
    const saved = process.env['NATS_SERVER_BIN'];
    process.env['NATS_SERVER_BIN'] = '/nonexistent/nats-server';
    try {
      assert.throws(() => findNatsServer(), /apt-get install -y nats-server/);
    } finally {
      if (saved === undefined) delete process.env['NATS_SERVER_BIN'];
      else process.env['NATS_SERVER_BIN'] = saved;
    }
  });
});
