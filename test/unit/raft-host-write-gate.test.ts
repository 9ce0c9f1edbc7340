/**
 * The Raft host's write gate (a node past its disk or memory limit: runtime/resource-guard.ts):
 * proposals are refused with the gate's error, a gated follower acknowledges no appends while the
 * group commits with the others, a gated leader hands its leadership to a caught-up voter, and a
 * node whose gate opens catches up by itself. Real hosts on in-memory ports.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OverloadedError } from '../../src/runtime/errors.js';
import { ResourceLimitError } from '../../src/runtime/resource-guard.js';
import { MemoryHosts, type MemoryNode } from '../helpers/memory-hosts.js';

const enc = new TextEncoder();

/** Three nodes whose gates the test opens and closes. */
async function gatedNodes(group: string): Promise<{ hosts: MemoryHosts; closed: Set<string> }> {
  const hosts = new MemoryHosts();
  const closed = new Set<string>();
  for (const id of ['a', 'b', 'c']) hosts.add(id, { writeGate: () => (closed.has(id) ? new ResourceLimitError(`node ${id}: disk full`, 'min_free_disk') : undefined) });
  for (const n of hosts.nodes.values()) await n.host.createGroup(group, { voters: ['a', 'b', 'c'], stateMachine: n.sm });
  await hosts.until(() => hosts.leader(group) !== undefined, 5_000, 'a leader');
  return { hosts, closed };
}

function matchOf(leader: MemoryNode, group: string, node: string): number {
  return leader.host.status(group).progress.find((p) => p.node === node)?.matchIndex ?? -1;
}

describe('raft host write gate', () => {
  it('raft host write gate - a gated follower acknowledges nothing it was sent, the others commit, and it catches up once the gate opens', async () => {
    const { hosts, closed } = await gatedNodes('g1');
    const leader = hosts.leader('g1') as MemoryNode;
    const follower = [...hosts.nodes.values()].find((n) => n !== leader) as MemoryNode;
    const before = matchOf(leader, 'g1', follower.id);
    closed.add(follower.id);
    let last = 0;
    for (let i = 0; i < 5; i++) last = (await hosts.settle(leader.host.propose('g1', enc.encode(`w${i}`), { concern: 'majority', timeoutMs: 2_000 }))).index;
    await hosts.clock.advance(500);
    assert.equal(matchOf(leader, 'g1', follower.id), before, `the gated follower was counted at ${matchOf(leader, 'g1', follower.id)}, past ${before}`);
    assert.ok(follower.sm.appliedIndex < last, 'the gated follower applied nothing new');
    assert.equal(follower.fatal.length, 0);
    closed.delete(follower.id);
    await hosts.until(() => matchOf(leader, 'g1', follower.id) >= last && follower.sm.appliedIndex >= last, 5_000, 'the follower catching up');
    assert.equal(follower.sm.entries.get(last), 'w4');
    await hosts.stop();
  });

  it('raft host write gate - a gated leader refuses proposals with the gate error, counts them by limit, and hands leadership to another voter', async () => {
    const { hosts, closed } = await gatedNodes('g2');
    const old = hosts.leader('g2') as MemoryNode;
    closed.add(old.id);
    await assert.rejects(old.host.propose('g2', enc.encode('x'), { concern: 'majority', timeoutMs: 2_000 }), (err: unknown) => err instanceof OverloadedError && /disk full/.test(err.message));
    await hosts.until(() => hosts.leader('g2') !== undefined && hosts.leader('g2') !== old, 5_000, 'another node leading');
    // counted by the limit its error names, once per refused proposal (not for the gate's other checks: handing over, ticks)
    assert.deepEqual(old.host.writesRefused(), [['min_free_disk', 1]]);
    const next = hosts.leader('g2') as MemoryNode;
    const w = await hosts.settle(next.host.propose('g2', enc.encode('after'), { concern: 'majority', timeoutMs: 2_000 }));
    assert.equal(w.result, 'after');
    assert.ok(old.sm.appliedIndex < w.index, 'the gated old leader took no appends');
    closed.delete(old.id);
    await hosts.until(() => old.sm.appliedIndex >= w.index, 5_000, 'the old leader catching up');
    await hosts.stop();
  });
});
