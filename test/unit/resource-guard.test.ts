/**
 * The resource guard's decisions, on injected measurements and a manual clock: refused at or
 * below the free-disk reserve and from 90% of --max-memory, each naming the node, the path or
 * the limit; allowed again at the next sample once clear.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/runtime/clock.js';
import { OverloadedError } from '../../src/runtime/errors.js';
import { MEMORY_REFUSE_FRACTION, RESOURCE_PROBE_MS, ResourceGuard, ResourceLimitError } from '../../src/runtime/resource-guard.js';
import { QUIET } from '../helpers/memory-hosts.js';

const MiB = 2 ** 20;

describe('resource guard', () => {
  it('resource guard - refuses writes at or below the free-disk reserve, naming node and path, and allows them again once space is freed', async () => {
    const clock = new ManualClock(0);
    let free = 100 * MiB;
    const g = await ResourceGuard.start({ nodeId: 'n7', dataDir: '/data/n7', minFreeDiskBytes: 64 * MiB, clock, log: QUIET, freeDiskBytes: () => Promise.resolve({ free, size: 1024 * MiB }), memoryBytes: () => Promise.resolve(10 * MiB) });
    assert.equal(g.writeError(), undefined);
    free = 64 * MiB;
    await clock.advance(RESOURCE_PROBE_MS);
    await new Promise((r) => setImmediate(r));
    const err = g.writeError();
    assert.ok(err instanceof OverloadedError);
    assert.ok(err instanceof ResourceLimitError && err.limit === 'min_free_disk', 'the error names its limit (a metric label)');
    assert.match(err.message, /^node n7: disk full \(ENOSPC\) at \/data\/n7: 64\.0 MiB free of 1024\.0 MiB, at or below the 64\.0 MiB kept free \(--min-free-disk\)/);
    free = 65 * MiB;
    await clock.advance(RESOURCE_PROBE_MS);
    await new Promise((r) => setImmediate(r));
    assert.equal(g.writeError(), undefined);
    g.stop();
  });

  it('resource guard - refuses writes from 90% of --max-memory, naming the limit; a node started over it refuses its first write', async () => {
    const clock = new ManualClock(0);
    const limit = 1000 * MiB;
    let mem = limit * MEMORY_REFUSE_FRACTION;
    const g = await ResourceGuard.start({ nodeId: 'n2', dataDir: '/d', minFreeDiskBytes: 0, maxMemoryBytes: limit, clock, log: QUIET, freeDiskBytes: () => Promise.resolve({ free: 10 * MiB, size: 20 * MiB }), memoryBytes: () => Promise.resolve(mem) });
    assert.equal(g.writeError()?.limit, 'max_memory');
    assert.match(g.writeError()?.message ?? '', /^node n2: memory 900\.0 MiB is at 90% or more of its limit of 1000\.0 MiB \(--max-memory\)/);
    mem = limit * MEMORY_REFUSE_FRACTION - MiB;
    await clock.advance(RESOURCE_PROBE_MS);
    await new Promise((r) => setImmediate(r));
    assert.equal(g.writeError(), undefined);
    g.stop();
  });
});
