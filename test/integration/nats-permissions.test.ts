/**
 * The users of deploy/nats/permissions.conf, on a real nats-server configured with that very file
 * (test passwords given through the variables it names): the node user runs the cluster, the
 * operator administers it, the application reads and writes its collection and cannot publish on
 * internal or admin subjects, the reader searches and cannot write. A denied publish is checked
 * where it matters: the server reports the violation, and nothing is applied (counted by a user
 * that may count).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { leaderSubject } from '../../src/actors/shard-protocol.js';
import { BackupsClient, ShoalClient } from '../../src/client/mod.js';
import { Objm } from '@nats-io/obj';
import { MetadataStore } from '../../src/cluster/metadata.js';
import { decodeCbor, encodeCbor } from '../../src/runtime/codec.js';
import { Subjects } from '../../src/runtime/subjects.js';
import { TestCluster } from '../helpers/cluster.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;
const run = promisify(execFile);
const PERMISSIONS = new URL('../../../deploy/nats/permissions.conf', import.meta.url).pathname;
const PASSWORD = { node: 'node-test-pw', app: 'app-test-pw', reader: 'reader-test-pw', admin: 'admin-test-pw' };
// A denied request gets no reply: keep the wait for it short.
const DENIED_TIMEOUT_MS = 1_000;

let cluster: TestCluster;
let admin: ShoalClient;
const conns: NatsConnection[] = [];

before(async () => {
  cluster = await TestCluster.start({
    nodes: 2,
    nats: {
      config: readFileSync(PERMISSIONS, 'utf8'),
      env: { SHOAL_NODE_PASSWORD: PASSWORD.node, SHOAL_APP_PASSWORD: PASSWORD.app, SHOAL_READER_PASSWORD: PASSWORD.reader, SHOAL_ADMIN_PASSWORD: PASSWORD.admin },
    },
    env: { SHOAL_NATS_USER: 'shoal-node', SHOAL_NATS_PASSWORD: PASSWORD.node },
    clientSecurity: { user: 'admin', pass: PASSWORD.admin },
  });
  admin = await cluster.client();
  // with a change stream: the node user creates its stream and publishes to it, the application reads it
  await admin.createCollection({ name: 'docs', dim: 3, metric: 'l2', shards: 1, replicas: 2, changeStream: true });
});

after(async () => {
  await Promise.all(conns.map((nc) => nc.close().catch(() => undefined)));
  await cluster?.stop();
});

function as(user: keyof typeof PASSWORD): Promise<ShoalClient> {
  return cluster.client({ security: { user: user === 'node' ? 'shoal-node' : user, pass: PASSWORD[user] }, timeoutMs: DENIED_TIMEOUT_MS, hedgeAfterMs: 0 });
}

/** A raw NATS connection as `user`, and the permission violations the server reports to it. */
async function raw(user: string, pass: string): Promise<{ nc: NatsConnection; violations: string[] }> {
  const nc = await connect({ servers: cluster.nats.url, user, pass });
  conns.push(nc);
  const violations: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error' && s.error.name === 'PermissionViolationError') violations.push(s.error.message);
  })();
  return { nc, violations };
}

/** What the nodes logged about permissions the server refused them (ActorSystem logs each one). */
function nodeViolations(): string[] {
  return [...cluster.nodes.values()].flatMap((n) => n.log.join('').split('\n').filter((l) => l.includes('refused a permission')));
}

async function countOf(name: string): Promise<number> {
  return admin.collection(name).count({ consistency: 'strong' });
}

describe('nats permissions - deploy/nats/permissions.conf', () => {
  it('nats permissions - the node user runs the cluster; the operator creates; the application writes and searches', async () => {
    assert.equal((await admin.clusterStatus()).nodes.filter((n) => n.state === 'up').length, 2, 'both nodes, logged in as shoal-node, are up');
    const app = await cluster.client({ security: { user: 'app', pass: PASSWORD.app } });
    const docs = app.collection('docs');
    await cluster.waitFor(async () => (await docs.upsert([
      { id: 'a', vector: [1, 0, 0] },
      { id: 'b', vector: [0, 1, 0] },
      { id: 'c', vector: [0, 0, 1] },
    ])) === 3, 'the application\'s upsert');
    assert.equal((await docs.search([0.9, 0.1, 0], { k: 1 })).hits[0]?.id, 'a');
    assert.equal(await countOf('docs'), 3);
    await assert.rejects(connect({ servers: cluster.nats.url, user: 'app', pass: 'wrong' }), /Authorization Violation/i, 'a wrong password');
    await assert.rejects(connect({ servers: cluster.nats.url }), /Authorization Violation/i, 'no user');
    // the application reads its collection's change stream (the node user published it)
    const changes = await run(process.execPath, [CLI, 'changes', 'docs', '--from-start', '--limit', '1', '--nats', cluster.nats.url, '--user', 'app', '--password', PASSWORD.app], { timeout: 15_000 });
    assert.deepEqual((JSON.parse(changes.stdout) as { points: { id: string }[] }).points.map((p) => p.id), ['a', 'b', 'c'], 'the application reads the change stream');
    assert.deepEqual(nodeViolations(), [], 'the node user has every permission a node uses');
  });

  it('nats permissions - the application user cannot publish on internal or admin subjects: the server refuses, nothing is applied', async () => {
    const node = await raw('shoal-node', PASSWORD.node);
    const meta = await MetadataStore.open(node.nc, 'shoal');
    const uid = (await meta.getCollection('docs'))?.value.uid;
    assert.ok(uid, 'the node user reads the metadata bucket');
    const leader = leaderSubject(new Subjects('shoal'), uid, 0);
    const write = (id: string): Uint8Array => encodeCbor({
      type: 'write', write: { op: 'upsert', points: [{ id, vector: Float32Array.of(1, 1, 1) }] }, requestId: `perm-${id}`, concern: 'majority', timeoutMs: 3_000,
    });
    const before = await countOf('docs');

    // The same internal write, first as a node (it applies: the message is one a shard takes) ...
    const reply = decodeCbor((await node.nc.request(leader, write('by-node'), { timeout: 5_000 })).data);
    assert.deepEqual(reply, [0, { upserted: 1 }]);
    assert.equal(await countOf('docs'), before + 1);

    // ... then as the application: refused by the server, no reply, not applied.
    const app = await raw('app', PASSWORD.app);
    await assert.rejects(app.nc.request(leader, write('by-app'), { timeout: DENIED_TIMEOUT_MS }));
    app.nc.publish(`${new Subjects('shoal').internalRoot}.sys.introspect`, new Uint8Array(0));
    app.nc.publish('$KV.shoal-meta.collections.evil', new TextEncoder().encode('{}'));
    await assert.rejects(app.nc.request('$JS.API.STREAM.INFO.KV_shoal-meta', new Uint8Array(0), { timeout: DENIED_TIMEOUT_MS }));
    await app.nc.flush();
    await cluster.waitFor(() => app.violations.length >= 4, 'four permission violations reported to the application');
    for (const subject of [leader, '_shoal.sys.introspect', '$KV.shoal-meta.collections.evil', '$JS.API.STREAM.INFO.KV_shoal-meta']) {
      assert.ok(app.violations.some((v) => v.includes(`Publish to "${subject}"`)), `a violation for ${subject}: ${app.violations.join('; ')}`);
    }
    assert.equal(await countOf('docs'), before + 1, 'the application\'s internal write was not applied');
    assert.deepEqual(await admin.collection('docs').get(['by-app']), []);
    assert.equal(await meta.getCollection('evil'), undefined, 'nothing written to the metadata bucket');

    // Admin subjects: the application can neither create nor drop a collection.
    const appClient = await as('app');
    await assert.rejects(appClient.createCollection({ name: 'evil', dim: 3 }), /TIMEOUT|no reply|did not answer/i);
    await assert.rejects(appClient.dropCollection('docs'), /TIMEOUT|no reply|did not answer/i);
    assert.deepEqual((await admin.listCollections()).map((c) => c.name), ['docs']);
    assert.equal(await countOf('docs'), before + 1);
  });

  it('nats permissions - the read-only user searches, gets and counts, and cannot upsert or delete', async () => {
    const reader = (await as('reader')).collection('docs');
    const readerOk = (await cluster.client({ security: { user: 'reader', pass: PASSWORD.reader } })).collection('docs');
    assert.equal((await readerOk.search([0, 1, 0], { k: 1 })).hits[0]?.id, 'b');
    assert.equal((await readerOk.searchBatch([{ vector: [0, 0, 1], k: 1 }]))[0]?.hits[0]?.id, 'c');
    assert.deepEqual((await readerOk.get(['a'])).map((p) => p.id), ['a']);
    const before = await readerOk.count();
    assert.equal(before, await countOf('docs'));

    await assert.rejects(reader.upsert([{ id: 'by-reader', vector: [1, 1, 0] }]), /TIMEOUT|no reply|did not answer/i);
    await assert.rejects(reader.delete(['a']), /TIMEOUT|no reply|did not answer/i);
    assert.equal(await countOf('docs'), before, 'neither the upsert nor the delete was applied');
    assert.deepEqual((await admin.collection('docs').get(['by-reader', 'a'])).map((p) => p.id), ['a']);
    assert.deepEqual(nodeViolations(), [], 'no node was refused anything all along');
  });

  it('nats permissions - the operator backs up and restores (the nodes write and read the backups bucket); the operator reads the bucket, the application cannot', async () => {
    const backups = new BackupsClient(admin);
    const b = await backups.create('docs', { name: 'perm-b1' });
    assert.ok(b.points >= 3, JSON.stringify(b));
    const restored = await backups.restore('perm-b1', { as: 'docs-copy' });
    assert.equal(restored.count, b.points);
    // the operator reads the bucket (what `nats object get` does)
    const op = await raw('admin', PASSWORD.admin);
    const store = await new Objm(op.nc).open('shoal-backups');
    assert.ok(((await store.getBlob('perm-b1/shard-0'))?.length ?? 0) > 0, 'the operator reads a shard image');
    const app = await raw('app', PASSWORD.app);
    await assert.rejects(async () => (await new Objm(app.nc).open('shoal-backups')).getBlob('perm-b1/manifest'), /permission|timeout|no responders|503/i, 'the application cannot read backups');
    assert.equal(await backups.delete('perm-b1'), true);
    assert.equal(await admin.dropCollection('docs-copy'), true);
    assert.deepEqual(nodeViolations(), [], 'no node was refused anything while backing up and restoring');
  });
});
