import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import { whenJetStreamAnswers } from '../../src/cluster/metadata.js';
import type { Logger } from '../../src/runtime/logger.js';

function recorder(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log: Logger = {
    debug: () => undefined,
    info: (m) => lines.push(`info ${m}`),
    warn: (m, f) => lines.push(`warn ${m} (${String(f?.['error'])})`),
    error: (m) => lines.push(`error ${m}`),
    child: () => log,
  };
  return { log, lines };
}

describe('jetstream wait', () => {
  it('jetstream wait - a read at start that times out is tried again until it answers, saying once what it waits for', async () => {
    const { log, lines } = recorder();
    let calls = 0;
    const nc = { isClosed: () => false } as unknown as NatsConnection;
    const got = await whenJetStreamAnswers(nc, 'list the nodes', log, {}, async () => {
      if (++calls < 3) throw new Error('timeout');
      return ['n1'];
    });
    assert.deepEqual(got, ['n1']);
    assert.equal(calls, 3);
    assert.deepEqual(lines, ['warn waiting for JetStream to list the nodes (timeout)', 'info JetStream answers: list the nodes']);
  });

  it('jetstream wait - gives up with the error once the connection is closed', async () => {
    const { log } = recorder();
    let closed = false;
    const nc = { isClosed: () => closed } as unknown as NatsConnection;
    await assert.rejects(
      whenJetStreamAnswers(nc, 'watch the metadata', log, {}, async () => {
        closed = true;
        throw new Error('connection closed');
      }),
      /connection closed/,
    );
  });
});
