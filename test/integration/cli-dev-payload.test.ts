/**
 * The servers the CLI starts for development take messages up to 8 MiB, not nats-server's 1 MiB:
 * `shoal dev` (a cluster) and `shoal nats` (a bare server), as their clients see it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { ShoalClient } from '../../src/client/client.js';
import { startShoal } from '../helpers/run-cli.js';

const EIGHT_MIB = 8 * 1024 * 1024;
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-dev-payload-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `shoal <args>` and resolves with the URL on the first line of its standard output. */
function startCli(args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  return startShoal(args);
}

/** SIGINT, then the exit code (or the signal that ended it, to say so in a failure). */
function interrupt(proc: ChildProcess): Promise<number | string> {
  return new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? `killed by ${signal}`));
    proc.kill('SIGINT');
  });
}

describe('dev servers', () => {
  it('cli - shoal dev\'s nats-server takes messages up to 8 MiB, and the client knows it', async () => {
    const { proc, url } = await startCli(['dev', '--nodes', '1', '--port', '0', '--data', join(dir, 'dev')]);
    try {
      const client = await ShoalClient.connect({ servers: url });
      try {
        assert.equal(client.nc.info?.max_payload, EIGHT_MIB);
        assert.equal(client.maxPayload, EIGHT_MIB);
        // (shoal dev takes Ctrl-C once it is running: once its node is up)
        for (let i = 0; i < 300; i++) {
          const up = await client.clusterStatus(1_000).then((s) => s.nodes.some((n) => n.state === 'up'), () => false);
          if (up) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await client.close();
      }
    } finally {
      assert.equal(await interrupt(proc), 0);
    }
  });

  it('cli - shoal nats takes messages up to 8 MiB', async () => {
    const { proc, url } = await startCli(['nats', '--port', '0']);
    try {
      const nc = await connect({ servers: url });
      assert.equal(nc.info?.max_payload, EIGHT_MIB);
      await nc.close();
    } finally {
      assert.equal(await interrupt(proc), 0);
    }
  });
});
