/**
 * A shard's index keeps no second copy of its vectors (issue 21): a shard of 20,480 points of 784
 * dims, reopened in a fresh process (test/fixtures/memory-child.ts), costs in anonymous resident
 * memory per point no more than raw hnswlib-node holding the same graph plus half a vector
 * (measured: ~4,380 B a point against raw's ~3,530, 1.24x). A float32 copy of every vector beside
 * the graph (as before issue 21: ~8,630 B a point) costs a whole vector more, and fails this.
 * LMDB's page cache is file-backed, not counted.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('../fixtures/memory-child.js', import.meta.url));
const DIST = fileURLToPath(new URL('../../', import.meta.url));
const N = 20_480;
const DIM = 784;

async function child(...args: string[]): Promise<Record<string, number>> {
  const { stdout } = await run(process.execPath, ['--expose-gc', CHILD, ...args], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as Record<string, number>;
}

const root = mkdtempSync(join(tmpdir(), 'shoal-index-memory-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('index memory', () => {
  it('a reopened shard costs per point at most raw hnswlib plus half a vector', async () => {
    await child('build', DIST, root, String(N), String(DIM));
    const shard = await child('reopen', DIST, root);
    const raw = await child('raw-load', root);
    assert.equal(shard['count'], N);
    assert.equal(raw['count'], N);
    const s = shard['rssAnonPerPoint'] as number;
    const r = raw['rssAnonPerPoint'] as number;
    const line = `RssAnon per point: shard ${s.toFixed(0)} B, raw hnswlib ${r.toFixed(0)} B (${(s / r).toFixed(2)}x); a vector is ${DIM * 4} B`;
    console.log(`# ${line}`);
    // the measurement itself: the graph alone holds each vector, so less than one vector is not a reading
    assert.ok(r > DIM * 4, `raw hnswlib measured ${r.toFixed(0)} B a point, less than its vectors: ${line}`);
    assert.ok(s <= r + DIM * 2, line);
  });
});
