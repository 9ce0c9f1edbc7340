import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRaftConfig } from '../../src/raft/config.js';
import type { NodeId } from '../../src/raft/types.js';
import { parseRaftHostOptions } from '../../src/replication/raft-options.js';

describe('raft options', () => {
  it("raft options - the host's default timing: elections after 300 to 600 ms, heartbeats every 100 ms", () => {
    const o = parseRaftHostOptions({}, 'n1');
    assert.equal(o.tickMs * o.electionTicks, 300);
    assert.equal(o.tickMs * o.heartbeatTicks, 100);
  });

  it("raft options - the core's own default, for its tests and simulation, is an election timeout of 10 ticks", () => {
    assert.equal(parseRaftConfig({ id: 'a' as NodeId }).electionTicks, 10);
  });
});
