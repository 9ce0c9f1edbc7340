import assert from 'node:assert/strict';
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
    // A search of `a` made while a large apply to `a` is being sent sees all of it; one of `b` made then is answered too.
    const late = Array.from({ length: POINTS_PER_MESSAGE * 2 }, (_, i) => ({ id: `late${i}`, vector: Float32Array.from([1000 + i, 0]) }));
    const applying = a.upsert(late);
    const [fromA, fromB] = await Promise.all([a.search({ vector: [1000 + late.length - 1, 0], k: 1 }), b.search({ vector: [3, 0], k: 1 })]);
    await applying;
    assert.deepEqual(fromA.map((h) => h.id), [`late${late.length - 1}`]);
    assert.deepEqual(fromB.map((h) => h.id), ['b3']);
    await host.close();
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
