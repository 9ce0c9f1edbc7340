import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { applyInBatches, testNode } from '../helpers/shard.js';
import { model, randomVector, rng, workload } from '../helpers/shard-workload.js';

const DIM = 16;
const SEED = 4;
const COUNT = 2000;
const CHILD = new URL('../fixtures/shard-apply-child.js', import.meta.url).pathname;

/** Runs the child until it has applied past `atLeast`, then SIGKILLs it `delayMs` later; resolves with the last index it reported. */
function runAndKill(root: string, atLeast: number, delayMs: number): Promise<{ start: number; last: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, root, String(SEED), String(COUNT)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let start = -1;
    let last = -1;
    let killing = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      for (const line of out.split('\n')) {
        const m = /^(start|applied) (\d+)$/.exec(line);
        if (m?.[1] === 'start') start = Number(m[2]);
        if (m?.[1] === 'applied') last = Number(m[2]);
      }
      if (!killing && (last >= atLeast || out.includes('done'))) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ start, last });
      else reject(new Error(`child exited with ${code}: ${err}`));
    });
  });
}

describe('shard crash', () => {
  it('shard crash - killed during apply, a reopened state machine holds exactly the applied prefix and answers like a replica that never crashed', async () => {
    const root = mkdtempSync(join(tmpdir(), 'shoal-crash-'));
    try {
      const rand = rng(21);
      let reached = 0;
      for (let round = 0; round < 4; round++) {
        const { start, last } = await runAndKill(root, reached + 40, Math.floor(rand() * 40));
        assert.ok(start >= reached, `round ${round}: reopened at ${start}, below ${reached} it had reported applied`);
        reached = last;
      }
      const entries = workload({ seed: SEED, entries: COUNT, dim: DIM, ids: 300 });
      const crashed = testNode({ dim: DIM, checkpointEvery: 10, root });
      const sm = await crashed.open('crash');
      const applied = sm.appliedIndex;
      assert.ok(applied >= reached && applied > 0, `applied ${applied}, last reported ${reached}`);
      const want = model(entries.slice(0, applied));
      const ids = Array.from({ length: 300 }, (_, i) => `p${i}`);
      const got = await sm.get(ids, { withVector: true, withMetadata: true });
      assert.equal(sm.count(), want.size);
      assert.deepEqual(got.map((p) => p.id).sort(), [...want.keys()].sort(), 'exactly the points of the applied prefix');
      for (const p of got) {
        assert.deepEqual(Array.from(p.vector ?? []), want.get(p.id)?.vector.map(Math.fround), `vector of ${p.id}`);
        assert.deepEqual(p.metadata, want.get(p.id)?.metadata, `metadata of ${p.id}`);
      }
      const fresh = testNode({ dim: DIM, checkpointEvery: 10 });
      const ref = await fresh.open('crash');
      await applyInBatches(ref, entries.slice(0, applied), 64);
      const qr = rng(5);
      for (let q = 0; q < 30; q++) {
        const query = { vector: randomVector(qr, DIM), k: 10 };
        assert.deepEqual(await sm.search(query), await ref.search(query), `query ${q}`);
      }
      await Promise.all([sm.close(), ref.close()]);
      await Promise.all([crashed.close(), fresh.close()]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
