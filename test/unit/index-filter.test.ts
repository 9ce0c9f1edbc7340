import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/runtime/errors.js';
import { FILTER_LIMITS, FlatIndex, matches, parseFilter } from '../../src/index/mod.js';

function rejects(input: unknown, pathAndWords: RegExp): void {
  assert.throws(() => parseFilter(input), (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(err)}`);
    assert.match(err.message, pathAndWords);
    return true;
  });
}

const m = (filter: unknown, metadata: Record<string, unknown> | undefined): boolean => matches(parseFilter(filter), metadata);

describe('filter language', () => {
  it('filter language - bad input names the path of the bad part', () => {
    rejects({ $and: [{ a: 1 }, { year: { $gte: 'x', $foo: 1 } }] }, /^filter\.\$and\[1\]\.year\.\$foo: unknown operator/);
    rejects({ $nor: [] }, /^filter\.\$nor: unknown operator/);
    rejects({ a: { $in: 3 } }, /^filter\.a\.\$in takes an array, got a number/);
    rejects({ a: { $in: [1, { x: 1 }] } }, /^filter\.a\.\$in\[1\] must be/);
    rejects({ a: { $exists: 'yes' } }, /^filter\.a\.\$exists takes a boolean, got a string/);
    rejects({ a: { $gt: null } }, /^filter\.a\.\$gt takes a finite number or a string, got null/);
    rejects({ a: { $eq: [1] } }, /^filter\.a\.\$eq takes a string, finite number, boolean or null, got an array/);
    rejects({ $and: [{ a: 1 }, { $or: [{ b: { $lt: Infinity } }] }] }, /^filter\.\$and\[1\]\.\$or\[0\]\.b\.\$lt takes a finite number/);
    rejects({ a: [1, 2] }, /^filter\.a must be a string, finite number, boolean, null or an object of operators/);
    rejects({ a: { b: 1 } }, /^filter\.a must be/);
    rejects({ $and: [] }, /^filter\.\$and must be a non-empty array/);
    rejects({ $or: {} }, /^filter\.\$or must be a non-empty array/);
    rejects({ $not: 3 }, /^filter\.\$not must be an object/);
    rejects([], /^filter must be an object, got an array/);
    rejects({ 'a..b': 1 }, /^filter\.a\.\.b: field name/);
  });

  it('filter language - a filter deeper than the limit is refused with its path', () => {
    let f: unknown = { a: 1 };
    for (let i = 0; i < FILTER_LIMITS.maxDepth - 1; i++) f = { $not: f };
    parseFilter(f); // exactly at the limit
    rejects({ $and: [f] }, /^filter\.\$and\[0\](\.\$not)+: filter is too deep \(more than 8 levels/);
  });

  it('filter language - a filter larger than the limit is refused', () => {
    parseFilter({ a: { $in: Array.from({ length: FILTER_LIMITS.maxNodes - 1 }, (_, i) => i) } });
    rejects({ a: { $in: Array.from({ length: FILTER_LIMITS.maxNodes }, (_, i) => i) } }, /^filter\.a\.\$in: filter is too large/);
    rejects({ $or: Array.from({ length: FILTER_LIMITS.maxNodes }, (_, i) => ({ [`f${i}`]: i })) }, /filter is too large/);
  });

  it('filter language - matching follows MongoDB semantics', () => {
    const meta = { region: 'eu', year: 2024, tags: ['a', 'b'], nested: { x: 5 }, none: null };
    assert.equal(m({}, meta), true);
    assert.equal(m({ region: 'eu', year: { $gte: 2020, $lt: 2025 } }, meta), true);
    assert.equal(m({ tags: 'b' }, meta), true, 'equality with an array field means contains');
    assert.equal(m({ tags: { $in: ['z', 'a'] } }, meta), true);
    assert.equal(m({ tags: { $nin: ['a'] } }, meta), false);
    assert.equal(m({ 'nested.x': { $gt: 4 } }, meta), true, 'dotted names reach nested objects');
    assert.equal(m({ missing: null }, meta), true, 'null matches a missing field');
    assert.equal(m({ none: null }, meta), true, 'null matches null');
    assert.equal(m({ region: null }, meta), false);
    assert.equal(m({ missing: { $ne: 1 } }, meta), true, '$ne matches a missing field');
    assert.equal(m({ missing: { $nin: [1] } }, meta), true, '$nin matches a missing field');
    assert.equal(m({ region: { $gt: 1 } }, meta), false, 'a string compared with a number matches nothing');
    assert.equal(m({ year: { $lt: 'z' } }, meta), false, 'a number compared with a string matches nothing');
    assert.equal(m({ region: { $gt: 'ea', $lt: 'f' } }, meta), true);
    assert.equal(m({ missing: { $exists: false }, none: { $exists: true } }, meta), true);
    assert.equal(m({ $or: [{ region: 'us' }, { year: 2024 }] }, meta), true);
    assert.equal(m({ $not: { region: 'eu' } }, meta), false);
    assert.equal(m({ region: 'eu' }, undefined), false);
  });

  it('filter language - postings and a full scan select the same points, deep paths, dotted keys and long strings included', () => {
    const flat = new FlatIndex({ dim: 2, metric: 'l2' });
    const points = Array.from({ length: 400 }, (_, i) => ({
      id: `p${i}`,
      vector: Float32Array.from([i % 17, i % 13]),
      metadata:
        i % 50 === 0
          ? undefined
          : { c: i % 7, tags: [`t${i % 3}`, `u${i % 4}`], s: `s${i % 5}`, deep: { v: i % 2 === 0, a: { b: { c: { d: i % 3 } } } }, n: i % 3 === 0 ? null : i, 'x.y': i % 2, x: i % 4 === 0 ? { y: 1 } : 2, long: `${'L'.repeat(300)}${i % 2}`, objs: [{ k: 1 }], z: i % 5 === 0 ? -0 : 1 },
    }));
    flat.upsert(points);
    flat.delete(['p3', 'p10', 'p11']);
    const filters = [{ c: 3 }, { c: { $in: [1, 2] }, tags: 't0' }, { $or: [{ s: 's1' }, { 'deep.v': true }] }, { $and: [{ c: 3 }, { n: { $gt: 100 } }] }, { n: null }, { c: { $ne: 3 } }, { $not: { tags: { $in: ['u1', 'u2'] } } }, { s: 's9' },
      { 'deep.a.b.c.d': 2 }, { 'deep.a.b.c.d': { $in: [0, 1] }, c: 1 }, { 'x.y': 1 }, { long: `${'L'.repeat(300)}1` }, { 'objs.k': 1 }, { z: 0 }, { $or: [{ c: 1 }, { s: { $in: ['s2', 's3'] } }] }];
    for (const raw of filters) {
      const filter = parseFilter(raw);
      const got = flat.search({ vector: [0, 0], k: 1000, filter }).map((h) => h.id).sort();
      const want = points.filter((p) => !['p3', 'p10', 'p11'].includes(p.id) && matches(filter, p.metadata)).map((p) => p.id).sort();
      assert.deepEqual(got, want, JSON.stringify(raw));
    }
    const count = (raw: unknown): number => flat.search({ vector: [0, 0], k: 1000, filter: parseFilter(raw) }).length;
    assert.ok(count({ 'x.y': 1 }) > 0, 'a dotted filter name reaches nested x.y');
    assert.ok(count({ 'x.y': 1 }) < count({ c: { $exists: true } }), 'and not the literal key "x.y"');
    assert.ok(count({ 'deep.a.b.c.d': 2 }) > 0, 'paths deeper than the postings are found by scanning');
    assert.ok(count({ long: `${'L'.repeat(300)}1` }) > 0, 'strings too long for postings are found by scanning');
  });
});
