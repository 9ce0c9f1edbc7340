import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InternalError, InvalidArgumentError } from '../../src/runtime/errors.js';
import { IndexHost, parseFilter, POINTS_PER_MESSAGE } from '../../src/index/mod.js';

const PARAMS = { m: 8, efConstruction: 32, ef: 16 };

describe('index host', () => {
  it('index host - searches made together fail one by one, and a search after apply sees all of it', async () => {
    const host = IndexHost.start();
    const index = await host.create('hnsw', { dim: 2, metric: 'l2', hnsw: PARAMS });
    const many = Array.from({ length: POINTS_PER_MESSAGE * 2 + 5 }, (_, i) => ({ id: `p${i}`, vector: Float32Array.from([i, 0]), metadata: { odd: i % 2 === 1 } }));
    const applying = index.apply([{ type: 'upsert', points: many }, { type: 'delete', ids: ['p0', 'p1', 'nope'] }]);
    const during = index.count(); // made while the apply is being sent: waits for all of it
    assert.deepEqual(await applying, [null, 2]);
    assert.equal(await during, many.length - 2);
    const results = await Promise.allSettled([
      index.search({ vector: [3, 0], k: 2 }),
      index.search({ vector: [3, 0, 0], k: 2 }),
      index.search({ vector: [3, 0], k: 2, filter: parseFilter({ odd: true }) }),
    ]);
    assert.equal(results[0].status, 'fulfilled');
    assert.deepEqual(results[0].status === 'fulfilled' && results[0].value.map((h) => h.id), ['p3', 'p2']);
    assert.equal(results[1].status, 'rejected');
    assert.ok(results[1].status === 'rejected' && results[1].reason instanceof InvalidArgumentError, 'the worker error comes back as its own class');
    assert.match(results[1].status === 'rejected' ? String(results[1].reason.message) : '', /vector has 3 dimensions; the index has 2/);
    assert.deepEqual(results[2].status === 'fulfilled' && results[2].value.map((h) => h.id), ['p3', 'p5']);
    const [got, missing] = await index.get(['p7', 'p0']);
    assert.deepEqual(Array.from(got?.vector ?? []), [7, 0]);
    assert.equal(missing, null);
    await host.close();
    await assert.rejects(index.count(), (e: unknown) => e instanceof InternalError && /index host closed/.test(e.message));
  });

  it('index host - searches of several indexes made together travel together, each answered by its own index', async () => {
    const host = IndexHost.start();
    const a = await host.create('hnsw', { dim: 2, metric: 'l2', hnsw: PARAMS });
    const b = await host.create('hnsw', { dim: 2, metric: 'l2', hnsw: PARAMS });
    const points = (prefix: string) => Array.from({ length: 20 }, (_, i) => ({ id: `${prefix}${i}`, vector: Float32Array.from([i, 0]) }));
    await Promise.all([a.upsert(points('a')), b.upsert(points('b'))]);
    const before = { ...host.searchStats };
    const hits = await Promise.all(
      Array.from({ length: 5 }, (_, i) => [a.search({ vector: [i, 0], k: 1 }), b.search({ vector: [i, 0], k: 1 })]).flat(),
    );
    assert.deepEqual(
      hits.map((h) => h.map((x) => x.id)),
      Array.from({ length: 5 }, (_, i) => [[`a${i}`], [`b${i}`]]).flat(),
    );
    assert.equal(host.searchStats.searches - before.searches, 10);
    assert.equal(host.searchStats.messages - before.messages, 1, 'ten searches of two indexes made in one turn: one message');
    // Twenty points of two dims are scored exactly: every search counted under its plan (shoal_search_plans_total).
    assert.deepEqual(host.plans, { exact: 10, hnsw: 0, 'hnsw-filtered': 0, 'hnsw-postfilter': 0 });
    const explained = await a.searchExplained({ vector: [3, 0], k: 2, filter: parseFilter({ nothing: 1 }) });
    assert.deepEqual(explained, { hits: [], explain: { plan: 'exact', matches: 0, points: 20, indexed: true } });
    assert.equal(host.plans.exact, 11);
    // A search of `a` made while a large apply to `a` is being sent sees all of it; one of `b` made then is answered too.
    const late = Array.from({ length: POINTS_PER_MESSAGE * 2 }, (_, i) => ({ id: `late${i}`, vector: Float32Array.from([1000 + i, 0]) }));
    const applying = a.upsert(late);
    const [fromA, fromB] = await Promise.all([a.search({ vector: [1000 + late.length - 1, 0], k: 1 }), b.search({ vector: [3, 0], k: 1 })]);
    await applying;
    assert.deepEqual(fromA.map((h) => h.id), [`late${late.length - 1}`]);
    assert.deepEqual(fromB.map((h) => h.id), ['b3']);
    await host.close();
  });

  it('index host - hide and unhide steps: hidden points are not searched, got or counted, and a checkpoint keeps them hidden', async () => {
    const host = IndexHost.start();
    const dir = mkdtempSync(join(tmpdir(), 'shoal-host-hidden-'));
    try {
      const options = { dim: 2, metric: 'l2' as const, hnsw: PARAMS, exactBudget: 0 };
      const points = Array.from({ length: 50 }, (_, i) => ({ id: `p${i}`, vector: Float32Array.from([i, 0]), metadata: { odd: i % 2 === 1 } }));
      for (const kind of ['hnsw', 'flat'] as const) {
        const index = await host.create(kind, options);
        const results = await index.apply([
          { type: 'upsert', points },
          { type: 'hide', ids: ['p3', 'p4', 'nope', 'p3'] },
          { type: 'unhide', ids: ['p5'] },
          { type: 'upsert', points: [{ id: 'p3', vector: Float32Array.from([100, 0]), metadata: { odd: true } }] },
        ]);
        assert.deepEqual(results, [null, 2, 0, null], kind);
        assert.equal(await index.count(), 48, kind);
        assert.deepEqual((await index.search({ vector: [3, 0], k: 3 })).map((h) => h.id), ['p2', 'p1', 'p5'], `${kind}: p1 and p5 tie, by id`);
        assert.deepEqual((await index.search({ vector: [3, 0], k: 2, filter: parseFilter({ odd: true }) })).map((h) => h.id), ['p1', 'p5'], kind);
        assert.deepEqual((await index.search({ vector: [100, 0], k: 1 })).map((h) => h.id), ['p49'], `${kind}: a hidden id upserted stays hidden`);
        assert.deepEqual(await index.get(['p4', 'p5']).then((ps) => ps.map((p) => p?.id ?? null)), [null, 'p5'], kind);
        let after = index;
        if (kind === 'hnsw') {
          await index.checkpoint(join(dir, 'ckpt'));
          after = await host.load(join(dir, 'ckpt'), options);
          assert.equal(await after.count(), 48, 'the loaded index keeps them hidden');
          assert.deepEqual((await after.search({ vector: [3, 0], k: 3 })).map((h) => h.id), ['p2', 'p1', 'p5']);
        }
        assert.equal(await after.unhide(['p3', 'p4', 'p6']), 2, kind);
        assert.equal(await after.count(), 50, kind);
        assert.deepEqual((await after.search({ vector: [100, 0], k: 1 })).map((h) => h.id), ['p3'], `${kind}: it comes back with its new vector`);
        assert.deepEqual(Array.from((await after.get(['p4']))[0]?.vector ?? []), [4, 0], kind);
        assert.equal(await after.hide(['p0']), 1, kind);
        assert.deepEqual(await after.apply([{ type: 'delete', ids: ['p0', 'p1'] }]), [2], `${kind}: a hidden id is deleted`);
        assert.equal(await after.count(), 48, kind);
      }
    } finally {
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('index host - indexes in one worker are independent', async () => {
    const host = IndexHost.start();
    const a = await host.create('flat', { dim: 1, metric: 'ip', hnsw: PARAMS });
    const b = await host.create('hnsw', { dim: 1, metric: 'l2', hnsw: PARAMS });
    await a.upsert([{ id: 'x', vector: Float32Array.from([2]) }]);
    assert.equal(await a.count(), 1);
    assert.equal(await b.count(), 0);
    assert.deepEqual((await a.search({ vector: [3], k: 1 })).map((h) => [h.id, h.distance]), [['x', -5]]);
    await b.close();
    await assert.rejects(b.count(), /is not open in the index worker/);
    assert.equal(await a.count(), 1);
    await host.close();
  });
});
