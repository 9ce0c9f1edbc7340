import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Mailbox } from '../../src/runtime/mailbox.js';
import { RestartPolicy } from '../../src/runtime/supervision.js';

describe('mailbox', () => {
  it('mailbox - keeps FIFO order across growth and wrap-around', () => {
    const m = new Mailbox<number>(150);
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7; i++) assert.ok(m.offer(next++));
      for (let i = 0; i < 5; i++) out.push(m.poll() as number);
    }
    out.push(...m.drain());
    assert.deepEqual(out, Array.from({ length: next }, (_, i) => i));
  });

  it('mailbox - refuses past its capacity and accepts again once drained', () => {
    const m = new Mailbox<string>(3);
    assert.ok(m.offer('a') && m.offer('b') && m.offer('c'));
    assert.equal(m.offer('d'), false);
    assert.equal(m.length, 3);
    assert.equal(m.poll(), 'a');
    assert.ok(m.offer('d'));
    assert.deepEqual(m.drain(), ['b', 'c', 'd']);
  });

  it('mailbox - rejects a capacity below 1', () => {
    assert.throws(() => new Mailbox(0), RangeError);
  });
});

describe('supervision', () => {
  it('supervision - backoff doubles per failure inside the window, capped', () => {
    const p = new RestartPolicy({ maxRestarts: 10, windowMs: 1000, backoffMinMs: 10, backoffMaxMs: 50 });
    const waits = [0, 1, 2, 3, 4].map((t) => p.onFailure(t));
    assert.deepEqual(waits, [10, 20, 40, 50, 50].map((afterMs) => ({ action: 'restart', afterMs })));
  });

  it('supervision - escalates on the failure past maxRestarts inside the window', () => {
    const p = new RestartPolicy({ maxRestarts: 2, windowMs: 1000, backoffMinMs: 1, backoffMaxMs: 1 });
    assert.equal(p.onFailure(0).action, 'restart');
    assert.equal(p.onFailure(10).action, 'restart');
    assert.deepEqual(p.onFailure(20), { action: 'escalate', failures: 3 });
  });

  it('supervision - failures older than the window are forgotten', () => {
    const p = new RestartPolicy({ maxRestarts: 2, windowMs: 100, backoffMinMs: 1, backoffMaxMs: 100 });
    p.onFailure(0);
    p.onFailure(10);
    const d = p.onFailure(200);
    assert.deepEqual(d, { action: 'restart', afterMs: 1 });
  });
});
