/**
 * The NATS Raft transport with a real nats-server: what it does with frames it cannot read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NatsRaftTransport } from '../../src/replication/nats-raft-transport.js';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import type { Logger } from '../../src/runtime/logger.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';

let server: NatsServer;

before(async () => {
  server = await startTestNats();
});

after(async () => {
  await server.stop();
});

describe('raft transport', () => {
  it('raft transport - a frame it cannot decode is dropped with a warning giving its size and reply subject, and the sender gets no reply', async () => {
    const system = await ActorSystem.connect(server.url, { name: 'rt' });
    const warnings: { msg: string; fields: Record<string, unknown> | undefined }[] = [];
    const noop = (): void => undefined;
    const log: Logger = { debug: noop, info: noop, error: noop, warn: (msg, fields) => warnings.push({ msg, fields }), child: () => log };
    const batches: string[] = [];
    const t = new NatsRaftTransport(system.nc, system.requests, system.subjects, 'n1', 500, log);
    t.start({ onBatch: (from) => (batches.push(from), false), onChunk: () => Promise.resolve(false), onUnreachable: noop });
    await system.flush();
    const garbage = new Uint8Array([0xff, 0xfe, 0x00, 0x13, 0x37]);
    await assert.rejects(system.nc.request(system.subjects.internal('raft', 'n1'), garbage, { timeout: 300 }));
    assert.equal(t.stats.undecodable, 1);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]?.msg ?? '', /could not be decoded/);
    assert.equal(warnings[0]?.fields?.['bytes'], garbage.length);
    assert.match(String(warnings[0]?.fields?.['from']), /^_INBOX/);
    assert.deepEqual(batches, []);
    t.stop();
    await system.shutdown();
  });
});
