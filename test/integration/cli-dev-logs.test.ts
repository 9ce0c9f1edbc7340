/**
 * `shoal dev` shows its nodes' logs as lines for people ("12:05:01 INFO  n1 replica started
 * collection=docs shard=0"), and as the nodes' JSON lines with --json-logs.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ShoalClient } from '../../src/client/client.js';
import { startShoal, type StartedShoal } from '../helpers/run-cli.js';

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-dev-logs-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

type Dev = StartedShoal;

/** Starts `shoal dev` with one node (at its default log level); resolves with the NATS URL it prints first. */
function startDev(args: string[]): Promise<Dev> {
  const env = { ...process.env };
  delete env['SHOAL_LOG_LEVEL'];
  return startShoal(['dev', '--nodes', '1', '--port', '0', ...args], env);
}

async function waitForText(dev: Dev, re: RegExp, what: string): Promise<RegExpMatchArray> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const m = dev.stderr().match(re);
    if (m) return m;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`shoal dev did not show ${what} within 60 s; its standard error:\n${dev.stderr()}`);
}

function interrupt(proc: ChildProcess): Promise<number | string> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    proc.once('exit', (code, signal) => resolve(code ?? `killed by ${signal}`));
    proc.kill('SIGINT');
  });
}

describe('dev logs', () => {
  it('cli - shoal dev shows node logs as lines for people: time, level, node, message, fields', async () => {
    const dev = await startDev(['--data', join(dir, 'plain')]);
    try {
      await waitForText(dev, /^\d\d:\d\d:\d\d INFO {2}n1 node ready nats=\S+/m, 'a "node ready" line for people');
      const client = await ShoalClient.connect({ servers: dev.url });
      try {
        await client.createCollection({ name: 'docs', dim: 2, metric: 'l2', shards: 1, replicas: 1 });
      } finally {
        await client.close();
      }
      await waitForText(dev, /^\d\d:\d\d:\d\d INFO {2}n1 replica started actor=\S+ collection=docs shard=0$/m, 'a "replica started" line');
      assert.doesNotMatch(dev.stderr(), /^\{"level"/m, 'no raw JSON line');
    } finally {
      assert.equal(await interrupt(dev.proc), 0);
    }
  });

  it('cli - shoal dev --json-logs shows the nodes\' JSON lines as they are', async () => {
    const dev = await startDev(['--data', join(dir, 'json'), '--json-logs']);
    try {
      const [line] = await waitForText(dev, /^\{.*"msg":"node ready".*\}$/m, 'a JSON "node ready" line');
      const rec = JSON.parse(line) as Record<string, unknown>;
      assert.equal(rec['level'], 'info');
      assert.equal(rec['node'], 'n1');
    } finally {
      assert.equal(await interrupt(dev.proc), 0);
    }
  });
});
