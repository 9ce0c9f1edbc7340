/**
 * The Raft log is compacted by bytes as well as by entries: large entries (a batch of vectors)
 * would otherwise keep hundreds of megabytes in memory and in LMDB behind the applied index until
 * `compactEvery` entries pile up. Real hosts on in-memory ports (test/helpers/memory-hosts.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryHosts, type MemoryNode } from '../helpers/memory-hosts.js';

const KEEP = 20_000;
const EVERY = 20_000;

async function threeNodes(): Promise<{ hosts: MemoryHosts; leader: MemoryNode }> {
  const hosts = new MemoryHosts();
  for (const id of ['a', 'b', 'c']) hosts.add(id, { compactKeepBytes: KEEP, compactEveryBytes: EVERY });
  for (const n of hosts.nodes.values()) await n.host.createGroup('g', { voters: ['a', 'b', 'c'], stateMachine: n.sm });
  await hosts.until(() => hosts.leader('g') !== undefined, 5_000, 'a leader');
  return { hosts, leader: hosts.leader('g') as MemoryNode };
}

/** Bytes of data in `n`'s log of group g. */
const logBytes = (n: MemoryNode): number => n.host.inspect('g').log.all().reduce((s, e) => s + e.data.length, 0);

describe('raft host compaction', () => {
  it('raft host compaction - large entries: every replica keeps at most the byte bounds of its log, applied and stored alike', async () => {
    const { hosts, leader } = await threeNodes();
    let last = 0;
    // 40 entries of 4 KB: 160 KB, four times what the bounds let a log hold.
    for (let i = 0; i < 40; i++) last = (await hosts.settle(leader.host.propose('g', new Uint8Array(4_096).fill(i), { concern: 'majority', timeoutMs: 2_000 }))).index;
    await hosts.until(() => [...hosts.nodes.values()].every((n) => n.sm.appliedIndex >= last), 5_000, 'every replica to apply');
    // one more turn for each to compact behind what it applied
    await hosts.settle(leader.host.propose('g', new Uint8Array(4_096), { concern: 'all', timeoutMs: 2_000 }));
    for (const n of hosts.nodes.values()) {
      const log = n.host.inspect('g').log;
      assert.ok(log.firstIndex() > 20, `${n.id}: its log still starts at ${log.firstIndex()}`);
      // at most KEEP behind the applied index, EVERY more before it compacts, and one entry's overshoot
      assert.ok(logBytes(n) <= KEEP + EVERY + 4_096, `${n.id}: its log holds ${logBytes(n)} bytes`);
      // the store dropped them too: a restart would load only what is left
      const stored = n.store.load('g');
      assert.ok(stored && (stored.entries[0]?.index ?? Infinity) >= log.firstIndex(), `${n.id}: the store still has entry ${String(stored?.entries[0]?.index)}`);
      // and every write is still there to read
      assert.equal(n.sm.entries.size, 41);
    }
    await hosts.stop();
  });

  it('raft host compaction - small entries stay under the byte bounds: the log is compacted only by its entry count', async () => {
    const { hosts, leader } = await threeNodes();
    for (let i = 0; i < 40; i++) await hosts.settle(leader.host.propose('g', new Uint8Array(100), { concern: 'all', timeoutMs: 2_000 }));
    for (const n of hosts.nodes.values()) assert.equal(n.host.inspect('g').log.firstIndex(), 1, `${n.id} compacted a log of ${logBytes(n)} bytes`);
    await hosts.stop();
  });
});
