import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReadsBetweenWrites } from '../../src/shard/reads-between-writes.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A promise and its resolver. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('reads between writes', () => {
  it('reads between writes - reads run together; a write waits for them, and reads that come meanwhile wait for the write', async () => {
    const g = new ReadsBetweenWrites();
    const log: string[] = [];
    const r1 = gate();
    const r2 = gate();
    const w = gate();
    const a = g.read(async () => (log.push('r1 start'), await r1.wait, log.push('r1 end')));
    const b = g.read(async () => (log.push('r2 start'), await r2.wait, log.push('r2 end')));
    await tick();
    const write = g.write(async () => (log.push('w start'), await w.wait, log.push('w end')));
    await tick();
    const c = g.read(async () => log.push('r3'));
    await tick();
    assert.deepEqual(log, ['r1 start', 'r2 start'], 'both reads run; the write and the later read wait');
    r1.open();
    await tick();
    assert.ok(!log.includes('w start'), 'the write waits for the last read');
    r2.open();
    await tick();
    assert.equal(log.at(-1), 'w start');
    assert.ok(!log.includes('r3'), 'a read that came while the write waited runs after it');
    w.open();
    await Promise.all([a, b, write, c]);
    assert.deepEqual(log, ['r1 start', 'r2 start', 'r1 end', 'r2 end', 'w start', 'w end', 'r3']);
  });

  it('reads between writes - a failing read or write releases the gate', async () => {
    const g = new ReadsBetweenWrites();
    await assert.rejects(g.read(async () => Promise.reject(new Error('read failed'))), /read failed/);
    await assert.rejects(g.write(async () => Promise.reject(new Error('write failed'))), /write failed/);
    assert.equal(await g.read(async () => 1), 1);
    assert.equal(await g.write(async () => 2), 2);
  });
});
