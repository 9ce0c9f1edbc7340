/**
 * The coordinator's record of when each move last progressed (src/actors/coordinator/move-progress.ts),
 * which the alert on a move that makes no progress reads through
 * shoal_rebalance_move_last_progress_timestamp_seconds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MoveProgress, type MoveSeen } from '../../src/actors/coordinator/move-progress.js';

const move = (over: Partial<MoveSeen> = {}): MoveSeen => ({ id: 'm-1', collection: 'docs', shard: 0, to: 'n3', phase: 'copy', bytesCopied: 0, ...over });

describe('move progress', () => {
  it('move progress - a move first seen has progressed then; one whose phase, target and bytes stay put keeps that time', () => {
    const p = new MoveProgress();
    p.observe([move()], 1_000);
    p.observe([move()], 2_000);
    p.observe([move()], 60_000);
    assert.deepEqual(p.list(), [{ id: 'm-1', collection: 'docs', shard: 0, bytesCopied: 0, lastProgressMs: 1_000 }]);
  });

  it('move progress - bytes copied, a new phase or a new target each count as progress', () => {
    const p = new MoveProgress();
    p.observe([move()], 1_000);
    p.observe([move({ bytesCopied: 4096 })], 2_000);
    assert.equal(p.list()[0]?.lastProgressMs, 2_000);
    assert.equal(p.list()[0]?.bytesCopied, 4096);
    p.observe([move({ bytesCopied: 4096, phase: 'catch-up' })], 3_000);
    assert.equal(p.list()[0]?.lastProgressMs, 3_000);
    p.observe([move({ bytesCopied: 4096, phase: 'catch-up' })], 9_000);
    assert.equal(p.list()[0]?.lastProgressMs, 3_000);
    p.observe([move({ bytesCopied: 4096, phase: 'catch-up', to: 'n4' })], 10_000);
    assert.equal(p.list()[0]?.lastProgressMs, 10_000);
  });

  it('move progress - a move no longer in flight is forgotten; clear forgets all', () => {
    const p = new MoveProgress();
    p.observe([move(), move({ id: 'r-docs-0-1', shard: 1 })], 1_000);
    assert.equal(p.list().length, 2);
    p.observe([move({ id: 'r-docs-0-1', shard: 1 })], 2_000);
    assert.deepEqual(p.list().map((e) => e.id), ['r-docs-0-1']);
    p.clear();
    assert.deepEqual(p.list(), []);
  });
});
