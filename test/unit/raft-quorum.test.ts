/**
 * The commit rule's "majority match" (membership.ts quorumValue), now sorted in a scratch array:
 * checked against the obvious sort over many voter sets, and across calls of different sizes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quorum, quorumValue } from '../../src/raft/membership.js';
import type { NodeId } from '../../src/raft/types.js';

function reference(values: number[]): number {
  if (values.length === 0) return 0;
  return [...values].sort((a, b) => b - a)[Math.floor(values.length / 2)] as number;
}

describe('raft quorum', () => {
  it('raft quorum - the value a majority of voters reached, for 0 to 40 voters with ties and repeats', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let trial = 0; trial < 2_000; trial++) {
      const n = trial < 10 ? trial : 1 + rnd(trial % 7 === 0 ? 40 : 7);
      const voters = Array.from({ length: n }, (_, i) => `n${i}` as NodeId);
      const values = voters.map(() => rnd(trial % 3 === 0 ? 3 : 1_000));
      const got = quorumValue(voters, (v) => values[voters.indexOf(v)] as number);
      assert.equal(got, reference(values), `voters ${n}, values ${values.join(',')}`);
    }
  });

  it('raft quorum - three voters: the middle value, whoever holds it', () => {
    const v = ['a', 'b', 'c'] as NodeId[];
    assert.equal(quorum(v), 2);
    assert.equal(quorumValue(v, (n) => ({ a: 10, b: 7, c: 3 } as Record<string, number>)[n] as number), 7);
    assert.equal(quorumValue(v, (n) => ({ a: 3, b: 10, c: 7 } as Record<string, number>)[n] as number), 7);
    assert.equal(quorumValue(v, (n) => ({ a: 0, b: 0, c: 9 } as Record<string, number>)[n] as number), 0);
    // a large call first does not leave stale values for a smaller one
    quorumValue(Array.from({ length: 30 }, (_, i) => `x${i}` as NodeId), () => 1_000);
    assert.equal(quorumValue(v, (n) => ({ a: 1, b: 2, c: 3 } as Record<string, number>)[n] as number), 2);
  });
});
