import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NodeReadiness, READY_CACHE_MS, READY_MAX_LAG_ENTRIES, type ExpectedReplica, type LocalReplicaStatus, type ReadinessDeps } from '../../src/actors/node/node-readiness.js';

const A: ExpectedReplica = { group: 'u1-0', collection: 'docs', uid: 'u1', shard: 0 };
const B: ExpectedReplica = { group: 'u1-1', collection: 'docs', uid: 'u1', shard: 1 };

function setup(o: { connected?: boolean; expected?: ExpectedReplica[] | undefined; local?: Record<string, LocalReplicaStatus>; leaderCommit?: Record<string, number | Error> }) {
  let now = 0;
  const asked: string[] = [];
  const deps: ReadinessDeps = {
    node: 'n2',
    natsConnected: () => o.connected ?? true,
    expected: () => ('expected' in o ? o.expected : [A]),
    local: (g) => o.local?.[g],
    leaderCommit: (uid, shard) => {
      asked.push(`${uid}-${shard}`);
      const c = o.leaderCommit?.[`${uid}-${shard}`];
      return c instanceof Error || c === undefined ? Promise.reject(c ?? new Error('no responders')) : Promise.resolve({ node: 'n1', commitIndex: c });
    },
    now: () => now,
  };
  return { r: new NodeReadiness(deps), asked, advance: (ms: number) => (now += ms) };
}

const follower = (applied: number, extra: Partial<LocalReplicaStatus> = {}): LocalReplicaStatus => ({ role: 'follower', leader: 'n1', appliedIndex: applied, failed: null, snapshot: null, ...extra });

describe('node readiness', () => {
  it('readiness - a follower within the lag bound of its leader is ready; one further behind is not, and says how far', async () => {
    let s = setup({ local: { 'u1-0': follower(1000) }, leaderCommit: { 'u1-0': 1000 + READY_MAX_LAG_ENTRIES } });
    let out = await s.r.check();
    assert.equal(out.ready, true);
    assert.deepEqual(out.notReady, []);
    s = setup({ local: { 'u1-0': follower(1000) }, leaderCommit: { 'u1-0': 1000 + READY_MAX_LAG_ENTRIES + 1 } });
    out = await s.r.check();
    assert.equal(out.ready, false);
    assert.equal(out.notReady.length, 1);
    assert.equal(out.notReady[0]?.group, 'u1-0');
    assert.match(out.notReady[0]?.reason ?? '', /catching up: applied 1000, its leader n1 has committed 1033 \(33 entries behind; ready at 32 or fewer\)/);
  });

  it('readiness - a leader is ready without asking anyone; a replica not loaded, failed or receiving a snapshot is not', async () => {
    const s = setup({
      expected: [A, B, { ...A, group: 'u2-0', uid: 'u2' }, { ...A, group: 'u3-0', uid: 'u3' }],
      local: { 'u1-0': { role: 'leader', leader: 'n2', appliedIndex: 5, failed: null }, 'u2-0': follower(3, { failed: 'apply failed: disk' }), 'u3-0': follower(0, { snapshot: { bytes: 100, totalBytes: 400 } }) },
    });
    const out = await s.r.check();
    assert.equal(out.ready, false);
    assert.equal(out.replicas, 4);
    assert.deepEqual(s.asked, []);
    const reasons = Object.fromEntries(out.notReady.map((p) => [p.group, p.reason]));
    assert.deepEqual(Object.keys(reasons).sort(), ['u1-1', 'u2-0', 'u3-0']);
    assert.match(reasons['u1-1'] ?? '', /not loaded yet/);
    assert.match(reasons['u2-0'] ?? '', /failed: apply failed: disk/);
    assert.match(reasons['u3-0'] ?? '', /receiving a snapshot from its leader \(100 of about 400 bytes so far\)/);
  });

  it('readiness - no leader answering, no NATS connection, or no replica manager yet is not ready', async () => {
    let out = await setup({ local: { 'u1-0': follower(10) }, leaderCommit: {} }).r.check();
    assert.equal(out.ready, false);
    assert.match(out.notReady[0]?.reason ?? '', /no leader answered within 1000 ms \(no responders\)/);
    out = await setup({ connected: false, expected: [] }).r.check();
    assert.equal(out.ready, false);
    assert.equal(out.nats, 'disconnected');
    out = await setup({ expected: undefined }).r.check();
    assert.equal(out.ready, false);
    assert.match(out.notReady[0]?.reason ?? '', /replica manager has not started/);
    out = await setup({ expected: [] }).r.check();
    assert.equal(out.ready, true, 'a node with no replicas is ready once connected');
  });

  it('readiness - checks within the cache window share one answer; later ones ask again', async () => {
    const s = setup({ local: { 'u1-0': follower(10) }, leaderCommit: { 'u1-0': 10 } });
    await Promise.all([s.r.check(), s.r.check()]);
    assert.equal(s.asked.length, 1);
    s.advance(READY_CACHE_MS);
    await s.r.check();
    assert.equal(s.asked.length, 2);
  });
});
