/**
 * What a replica's core makes of the state it restarts from, when the host wrote its pieces at
 * different times: the host defers a hard state that only moved the commit index (Raft recovers
 * it), but compacts the log up to what the state machine holds durably.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeEntry } from '../../src/raft/entry.js';
import { RaftNode } from '../../src/raft/raft-node.js';
import type { LogIndex, NodeId, Term } from '../../src/raft/types.js';

const id = (s: string): NodeId => s as NodeId;

describe('raft restart', () => {
  it('raft restart - a compaction point beyond the stored commit index counts as committed, so the replica can still describe a snapshot', () => {
    const conf = { voters: [id('a'), id('b'), id('c')], learners: [] };
    // Stored: commit 3 (a commit-only hard state written later was lost), log compacted at 10,
    // entries 11 and 12 after it; the state machine holds 10.
    const entries = [makeEntry(11 as LogIndex, 2 as Term, 'normal', new Uint8Array([1])), makeEntry(12 as LogIndex, 2 as Term, 'normal', new Uint8Array([2]))];
    const core = new RaftNode(
      { id: id('a'), seed: 1 },
      {
        hardState: { term: 2 as Term, vote: id('a'), commit: 3 as LogIndex, repairing: false },
        snapshot: { index: 10 as LogIndex, term: 2 as Term, conf },
        entries,
        applied: 10,
      },
    );
    assert.ok(core.log.committed >= 10, `committed ${core.log.committed} is below the compaction point 10`);
    // A leader with a follower too far behind describes its image at its applied index.
    assert.deepEqual(core.snapshotMetaAt(10), { index: 10, term: 2, conf });
  });

  it('raft restart - what the state machine applied counts as committed, so a leader can describe its image at its applied index', () => {
    const conf = { voters: [id('a'), id('b'), id('c')], learners: [] };
    // Stored: commit 3 (commit-only hard states deferred), no compaction, entries 1..12; the
    // state machine holds 12: those entries were committed before it applied them.
    const entries = Array.from({ length: 12 }, (_, i) => makeEntry((i + 1) as LogIndex, 2 as Term, 'normal', new Uint8Array([i])));
    const core = new RaftNode(
      { id: id('a'), seed: 1 },
      {
        hardState: { term: 2 as Term, vote: id('a'), commit: 3 as LogIndex, repairing: false },
        snapshot: { index: 0 as LogIndex, term: 0 as Term, conf },
        entries,
        applied: 12,
      },
    );
    assert.equal(core.log.committed, 12);
    assert.equal(core.snapshotMetaAt(12).index, 12);
  });
});
