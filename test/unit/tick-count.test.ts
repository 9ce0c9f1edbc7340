import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TickCount } from '../../src/replication/tick-count.js';

describe('tick count', () => {
  it('tick count - a late timer is owed every whole tick since, never more; a long pause is capped; a clock stepped back counts on from the new time', () => {
    const t = new TickCount(50, 14, 1_000);
    assert.equal(t.take(1_049), 0, 'no tick before one has passed');
    assert.equal(t.behind(1_049), false);
    assert.equal(t.take(1_050), 1);
    assert.equal(t.behind(1_180), true, 'over a tick behind: a lease must not be used before catching up');
    assert.equal(t.take(1_180), 2, 'the timer fired 80 ms late: two ticks owed');
    assert.equal(t.take(1_199), 0, 'the remainder (30 ms) stays owed, not counted ahead');
    assert.equal(t.take(1_200), 1);
    assert.equal(t.take(61_200), 14, 'a minute paused: capped');
    assert.equal(t.take(61_250), 1, 'and counting from the clock after');
    assert.equal(t.take(30_000), 0, 'stepped back: nothing taken back');
    assert.equal(t.take(30_050), 1, 'counting on from the new time');
  });
});
