/**
 * Read leases are counted in ticks; a process whose event loop stalls (a long synchronous task)
 * or that is paused (SIGSTOP) runs no ticks meanwhile, yet real time passes and the rest of the
 * group moves on. The host counts ticks from the clock: before it steps a message or lets a read
 * use a lease, it runs the ticks the clock owes. Real hosts on in-memory ports, one of them on a
 * clock whose timers can be held (test/helpers/memory-hosts.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryHosts, StallableClock, type MemoryNode } from '../helpers/memory-hosts.js';

const enc = new TextEncoder();

async function group(name: string): Promise<{ hosts: MemoryHosts; clocks: Map<string, StallableClock> }> {
  const hosts = new MemoryHosts();
  const clocks = new Map<string, StallableClock>();
  for (const id of ['a', 'b', 'c']) {
    const clock = new StallableClock(hosts.clock);
    clocks.set(id, clock);
    hosts.add(id, { clock });
  }
  for (const n of hosts.nodes.values()) await n.host.createGroup(name, { voters: ['a', 'b', 'c'], stateMachine: n.sm });
  await hosts.until(() => hosts.leader(name) !== undefined, 5_000, 'a leader');
  return { hosts, clocks };
}

function must<T>(x: T | undefined, what: string): T {
  assert.ok(x !== undefined, what);
  return x;
}

/** A leader other than `old` (which, stalled, still believes it leads). */
async function newLeader(hosts: MemoryHosts, name: string, old: MemoryNode): Promise<MemoryNode> {
  const other = (): MemoryNode | undefined => [...hosts.nodes.values()].find((n) => n !== old && n.host.roleOf(name).role === 'leader' && n.host.roleOf(name).ready);
  await hosts.until(() => other() !== undefined, 5_000, 'a new leader');
  return must(other(), 'a new leader');
}

describe('raft host stalls', () => {
  it('raft host stall - a leader stalled past its lease and cut off while another leader commits does not serve a leased read on ticks it never ran', async () => {
    const { hosts, clocks } = await group('s1');
    const old = must(hosts.leader('s1'), 'a leader');
    await hosts.settle(old.host.propose('s1', enc.encode('w1'), { concern: 'majority', timeoutMs: 2_000 }));
    // Inside its lease, a leased read index comes with no round.
    const inLease = await hosts.settle(old.host.readIndex('s1', { mode: 'leased', timeoutMs: 1_000 }));
    // Its event loop stalls, and what it would hear waits (cut off); the others elect a leader that commits w2.
    must(clocks.get(old.id), 'its clock').stalled = true;
    hosts.cut.add(old.id);
    const next = await newLeader(hosts, 's1', old);
    const w2 = await hosts.settle(next.host.propose('s1', enc.encode('w2'), { concern: 'majority', timeoutMs: 2_000 }));
    assert.ok(w2.index > inLease.index);
    // A leased read reaches it before its late timer fires: its lease ran out long ago in real
    // time. It may refuse (no longer leader) or wait for a quorum round it cannot finish while cut
    // off; it must not answer from the lease.
    let stale: string | null = null;
    try {
      const r = await hosts.settle(old.host.readIndex('s1', { mode: 'leased', timeoutMs: 500 }), 1_000);
      if (r.index < w2.index) stale = `read index ${r.index}, but w2 was committed at ${w2.index}`;
    } catch {
      // refused, or not answered: both keep the read linearizable
    }
    assert.equal(stale, null, `the stalled leader answered a leased read from its lease: ${String(stale)}`);
    await hosts.stop();
  });

  it('raft host stall - a follower holding a read lease, stalled past it, does not serve from it once the leader has committed without it', async () => {
    const { hosts, clocks } = await group('s2');
    const leader = must(hosts.leader('s2'), 'a leader');
    const w1 = await hosts.settle(leader.host.propose('s2', enc.encode('w1'), { concern: 'majority', timeoutMs: 2_000 }));
    const follower = must([...hosts.nodes.values()].find((n) => n !== leader), 'a follower');
    // The follower asks for a read lease and gets one.
    await hosts.until(() => {
      const p = follower.host.leaseRead('s2', 1_000);
      p?.catch(() => undefined);
      return p !== undefined;
    }, 2_000, 'a read lease on the follower');
    // It stalls and is cut off; the leader waits out the lease it granted, then commits w2 without it.
    must(clocks.get(follower.id), 'its clock').stalled = true;
    hosts.cut.add(follower.id);
    const w2 = await hosts.settle(leader.host.propose('s2', enc.encode('w2'), { concern: 'majority', timeoutMs: 3_000 }));
    assert.ok(w2.index > w1.index);
    await hosts.clock.advance(200);
    // A leased read reaches the follower before its late timer fires: no lease, so no answer from it alone.
    const p = follower.host.leaseRead('s2', 500);
    p?.catch(() => undefined);
    assert.equal(p, undefined, 'the stalled follower served a leased read from a lease that ran out while it was stalled');
    await hosts.stop();
  });
});
