import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Svcm } from '@nats-io/services';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { MicroService } from '../../src/runtime/micro-service.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';

let server: NatsServer;
let nc: NatsConnection;

before(async () => {
  server = await startTestNats();
  nc = await connect({ servers: server.url });
});

after(async () => {
  await nc.close();
  await server.stop();
});

async function collect<T>(it: Promise<AsyncIterable<T>>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of await it) out.push(x);
  return out;
}

describe('micro service protocol', () => {
  it('micro - the official services client discovers the service, its endpoints and their stats', async () => {
    const a = new MicroService(nc, { name: 'shoal', version: '1.2.3', description: 'vector db' });
    const b = new MicroService(nc, { name: 'shoal', version: '1.2.3', description: 'vector db' });
    const search = a.endpoint('search', 'shoal.v1.*.search', 'shoal-routers');
    a.endpoint('upsert', 'shoal.v1.*.upsert', 'shoal-routers');
    search.record(2.5);
    search.record(1.5, 'collection docs does not exist');
    await nc.flush();
    const client = new Svcm(nc).client({ strategy: 'timer', maxWait: 500 });
    const pings = await collect(client.ping('shoal'));
    assert.deepEqual(pings.map((p) => p.id).sort(), [a.id, b.id].sort());
    assert.equal(pings[0]?.version, '1.2.3');
    const [info] = await collect(client.info('shoal', a.id));
    assert.deepEqual(info?.endpoints.map((e) => [e.name, e.subject, e.queue_group]), [
      ['search', 'shoal.v1.*.search', 'shoal-routers'],
      ['upsert', 'shoal.v1.*.upsert', 'shoal-routers'],
    ]);
    const [stats] = await collect(client.stats('shoal', a.id));
    const s = stats?.endpoints?.find((e) => e.name === 'search');
    assert.equal(s?.num_requests, 2);
    assert.equal(s?.num_errors, 1);
    assert.equal(s?.last_error, 'collection docs does not exist');
    assert.equal(s?.processing_time, 4_000_000, 'nanoseconds');
    assert.equal(s?.average_processing_time, 2_000_000);
    a.stop();
    b.stop();
    // stopped: nobody answers any more
    await assert.rejects(collect(client.ping('shoal')), /no responders/);
  });
});
