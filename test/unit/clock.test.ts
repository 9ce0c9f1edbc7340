import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/runtime/clock.js';

describe('clock', () => {
  it('clock - a manual clock fires timers in due order, only when advanced past them', async () => {
    const c = new ManualClock(1000);
    const fired: string[] = [];
    c.setTimer(() => fired.push(`b@${c.now()}`), 20);
    c.setTimer(() => fired.push(`a@${c.now()}`), 10);
    const x = c.setTimer(() => fired.push('cancelled'), 15);
    c.setTimer(() => fired.push(`c@${c.now()}`), 20);
    x.cancel();
    await c.advance(9);
    assert.deepEqual(fired, []);
    await c.advance(11);
    assert.deepEqual(fired, ['a@1010', 'b@1020', 'c@1020']);
    assert.equal(c.now(), 1020);
    assert.equal(c.pending(), 0);
  });

  it('clock - a timer set by a firing timer fires in the same advance when it falls due', async () => {
    const c = new ManualClock();
    const fired: number[] = [];
    const tick = (): void => {
      fired.push(c.now());
      c.setTimer(tick, 100);
    };
    c.setTimer(tick, 100);
    await c.advance(350);
    assert.deepEqual(fired, [100, 200, 300]);
  });
});
