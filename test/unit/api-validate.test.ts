import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CollectionSpec } from '../../src/api/types.js';
import {
  sameSettings,
  validateCount,
  validateCreate,
  validateDelete,
  validateGet,
  validateNamed,
  validateSearch,
  validateSearchBatch,
  validateUpsert,
} from '../../src/api/validate.js';
import { InvalidArgumentError, PayloadTooLargeError } from '../../src/runtime/errors.js';

const docs: CollectionSpec = {
  name: 'docs', dim: 3, metric: 'cosine', shards: 2, replicas: 3,
  sharding: { strategy: 'consistent-hash', vnodes: 128 }, hnsw: { m: 16, efConstruction: 200, ef: 64 },
};
const custom: CollectionSpec = { ...docs, name: 'tenants', metric: 'l2', sharding: { strategy: 'custom', vnodes: 128 } };

function bad(fn: () => unknown, message: RegExp, cls: new (...a: never[]) => Error = InvalidArgumentError): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.match((e as Error).message, message);
    return true;
  });
}

describe('api validation', () => {
  it('create - fills PROTOCOL.md defaults', () => {
    assert.deepEqual(validateCreate({ name: 'docs', dim: 128 }), {
      name: 'docs', dim: 128, metric: 'cosine', shards: 1, replicas: 3,
      sharding: { strategy: 'consistent-hash', vnodes: 128 }, hnsw: { m: 16, efConstruction: 200, ef: 64 }, changeStream: false, timeoutMs: 5000,
    });
    assert.equal(validateCreate({ name: 'docs', dim: 128, changeStream: true }).changeStream, true);
  });

  it('create - every bad setting is refused, naming the field and the limit', () => {
    bad(() => validateCreate({ name: 'docs' }), /dim is required \(1 to 4096\)/);
    bad(() => validateCreate({ name: 'docs', dim: 0 }), /dim must be 1 to 4096, got 0/);
    bad(() => validateCreate({ name: 'docs', dim: 4097 }), /dim must be 1 to 4096, got 4097/);
    bad(() => validateCreate({ name: 'docs', dim: 1.5 }), /dim must be an integer/);
    bad(() => validateCreate({ name: 'docs', dim: 3, metric: 'hamming' }), /metric must be one of 'cosine', 'l2', 'ip', got 'hamming'/);
    bad(() => validateCreate({ name: 'docs', dim: 3, changeStream: 'yes' }), /changeStream must be true or false, got/);
    bad(() => validateCreate({ name: 'docs', dim: 3, changeStream: 1 }), /changeStream must be true or false, got/);
    bad(() => validateCreate({ name: 'docs', dim: 3, shards: 257 }), /shards must be 1 to 256, got 257/);
    bad(() => validateCreate({ name: 'docs', dim: 3, replicas: 8 }), /replicas must be 1 to 7, got 8/);
    bad(() => validateCreate({ name: 'docs', dim: 3, replicas: 0 }), /replicas must be 1 to 7, got 0/);
    bad(() => validateCreate({ name: 'admin', dim: 3 }), /reserved/);
    bad(() => validateCreate({ name: '_x', dim: 3 }), /reserved/);
    bad(() => validateCreate({ name: 'a.b', dim: 3 }), /must match/);
    bad(() => validateCreate({ name: 'x'.repeat(65), dim: 3 }), /must match/);
    bad(() => validateCreate({ name: 'docs', dim: 3, topK: 3 }), /unknown field 'topK' in collections.create request/);
    bad(() => validateCreate({ name: 'docs', dim: 3, hnsw: { m: 1 } }), /hnsw.m must be 2 to 128, got 1/);
    bad(() => validateCreate({ name: 'docs', dim: 3, timeoutMs: 0 }), /timeoutMs must be 1 to 60000, got 0/);
    bad(() => validateCreate({ name: 'docs', dim: 3, timeoutMs: 60001 }), /timeoutMs must be 1 to 60000/);
  });

  it('create - sharding strategies and their own fields', () => {
    const range = validateCreate({ name: 'r', dim: 2, shards: 3, sharding: { strategy: 'range', boundaries: ['g', 'p'] } });
    assert.deepEqual(range.sharding, { strategy: 'range', boundaries: ['g', 'p'] });
    bad(() => validateCreate({ name: 'r', dim: 2, shards: 3, sharding: { strategy: 'range', boundaries: ['g'] } }), /exactly shards - 1 = 2 strings, got 1/);
    bad(() => validateCreate({ name: 'r', dim: 2, shards: 3, sharding: { strategy: 'range', boundaries: ['p', 'g'] } }), /strictly increasing.*\[0\] 'p' is not below \[1\] 'g'/);
    bad(() => validateCreate({ name: 'r', dim: 2, shards: 3, sharding: { strategy: 'range', boundaries: ['g', 'g'] } }), /strictly increasing/);
    bad(() => validateCreate({ name: 'h', dim: 2, sharding: { strategy: 'hash', vnodes: 8 } }), /vnodes is only for/);
    bad(() => validateCreate({ name: 'h', dim: 2, sharding: { strategy: 'consistent-hash', boundaries: [] } }), /boundaries is only for the 'range' strategy/);
    bad(() => validateCreate({ name: 'h', dim: 2, sharding: { strategy: 'consistent-hash', vnodes: 0 } }), /sharding.vnodes must be 1 to 1024/);
    assert.deepEqual(validateCreate({ name: 'c', dim: 2, sharding: { strategy: 'custom' } }).sharding, { strategy: 'custom', vnodes: 128 });
  });

  it('create - same settings are recognised for idempotent create', () => {
    const a = validateCreate({ name: 'docs', dim: 3 });
    assert.ok(sameSettings(a, validateCreate({ name: 'docs', dim: 3, metric: 'cosine', shards: 1 })));
    assert.ok(!sameSettings(a, validateCreate({ name: 'docs', dim: 3, metric: 'l2' })));
  });

  it('upsert - a valid request becomes float32 vectors with defaults', () => {
    const r = validateUpsert({ points: [{ id: 'a', vector: [1, 2, 3], metadata: { region: 'eu' } }], requestId: 'r1' }, docs);
    assert.equal(r.writeConcern, 'majority');
    assert.equal(r.requestId, 'r1');
    assert.ok(r.points[0]?.vector instanceof Float32Array);
    assert.deepEqual([...(r.points[0]?.vector ?? [])], [1, 2, 3]);
    assert.deepEqual(validateUpsert({}, docs).points, []);
    const cbor = validateUpsert({ points: [{ id: 'b', vector: new Float32Array([0.5, 0, 0]) }] }, docs);
    assert.deepEqual([...(cbor.points[0]?.vector ?? [])], [0.5, 0, 0]);
  });

  it('upsert - bad points are refused with the point, the field and the limit', () => {
    bad(() => validateUpsert({ points: [{ id: 'a', vector: [1, 2, 3] }, { id: 'b', vector: [1, 2, 3] }, { id: 'c', vector: [1, 2, 3] }, { id: 'd', vector: [1, 2, 3, 4] }] }, docs),
      /points\[3\].vector has 4 dimensions; the collection has 3/);
    bad(() => validateUpsert({ points: [{ id: 'a', vector: [1, 'x', 3] }] }, docs), /points\[0\].vector\[1\] must be a number, got a string/);
    bad(() => validateUpsert({ points: [{ id: 'a', vector: [1, 1e39, 3] }] }, docs), /points\[0\].vector\[1\] must be a finite number within float32 range, got 1e\+39/);
    bad(() => validateUpsert({ points: [{ id: 'a', vector: new Float64Array([1, NaN, 3]) }] }, docs), /vector\[1\] must be a finite number.*NaN/);
    bad(() => validateUpsert({ points: [{ id: 'a', vector: [0, 0, 0] }] }, docs), /points\[0\].vector is all zeros/);
    bad(() => validateUpsert({ points: [{ id: '', vector: [1, 2, 3] }] }, docs), /points\[0\].id must not be empty/);
    bad(() => validateUpsert({ points: [{ id: 'é'.repeat(129), vector: [1, 2, 3] }] }, docs), /points\[0\].id is 258 bytes; the limit is 256/);
    bad(() => validateUpsert({ points: [{ id: 7, vector: [1, 2, 3] }] }, docs), /points\[0\].id must be a string, got a number/);
    bad(() => validateUpsert({ points: [{ id: 'a', vector: [1, 2, 3], metadata: [1] }] }, docs), /metadata must be a JSON object, got an array/);
    bad(() => validateUpsert({ points: [{ id: 'a', vector: [1, 2, 3], metadata: { blob: new Uint8Array(2) } }] }, docs), /metadata.blob must be a JSON value, got a Uint8Array/);
    bad(() => validateUpsert({ points: [{ id: 'a', vector: [1, 2, 3], metadata: { s: 'x'.repeat(70_000) } }] }, docs), /metadata is 700\d\d bytes as JSON; the limit is 65536/);
    bad(() => validateUpsert({ points: [{ id: 'a', vector: [1, 2, 3], shardKey: 't1' }] }, docs), /shardKey is only for collections with custom sharding/);
    bad(() => validateUpsert({ points: [{ id: 'a', vector: [1, 2, 3] }] }, custom), /points\[0\].shardKey is required: collection 'tenants' uses custom sharding/);
    bad(() => validateUpsert({ points: [{ id: 'a', vector: [1, 2, 3], color: 'red' }] }, docs), /unknown field points\[0\].color/);
    bad(() => validateUpsert({ points: [], writeConcern: 'quorum' }, docs), /writeConcern must be one of 'majority', 'all', 'leader', got 'quorum'/);
    bad(() => validateUpsert({ points: [], requestId: 'x'.repeat(129) }, docs), /requestId is 129 bytes; the limit is 128/);
    const many = Array.from({ length: 10_001 }, (_, i) => ({ id: `p${i}`, vector: [1, 2, 3] }));
    bad(() => validateUpsert({ points: many }, docs), /points has 10001 items; the limit is 10000/, PayloadTooLargeError);
    assert.equal(validateUpsert({ points: many.slice(0, 10_000) }, docs).points.length, 10_000);
  });

  it('delete and get - ids, limits, and a repeated id kept once at its first position', () => {
    assert.deepEqual(validateDelete({ ids: ['a', 'b'] }).ids, ['a', 'b']);
    bad(() => validateDelete({ ids: Array.from({ length: 10_001 }, (_, i) => `${i}`) }), /ids has 10001 items; the limit is 10000/, PayloadTooLargeError);
    bad(() => validateDelete({ ids: ['a', 3] }), /ids\[1\] must be a string/);
    const g = validateGet({ ids: ['b', 'a', 'b', 'c', 'a'] });
    assert.deepEqual(g.ids, ['b', 'a', 'c']);
    assert.equal(g.withVector, true);
    assert.equal(g.consistency, 'leased');
    bad(() => validateGet({ ids: [], consistency: 'linearizable' }), /consistency must be one of 'strong', 'leased', 'eventual'/);
  });

  it('search - defaults, k and ef bounds, shardKeys only for custom sharding', () => {
    const s = validateSearch({ vector: [1, 0, 0] }, docs);
    assert.equal(s.k, 10);
    assert.equal(s.withVector, false);
    assert.equal(s.withMetadata, true);
    assert.equal(s.consistency, 'leased');
    bad(() => validateSearch({ vector: [1, 0, 0], k: 0 }, docs), /k must be 1 to 1000, got 0/);
    bad(() => validateSearch({ vector: [1, 0, 0], k: 1001 }, docs), /k must be 1 to 1000, got 1001/);
    bad(() => validateSearch({ vector: [1, 0, 0], k: 20, ef: 10 }, docs), /ef must be 20 to 10000, got 10/);
    bad(() => validateSearch({ k: 3 }, docs), /vector is required/);
    bad(() => validateSearch({ vector: [1, 0] }, docs), /vector has 2 dimensions; the collection has 3/);
    bad(() => validateSearch({ vector: [1, 0, 0], shardKeys: ['t'] }, docs), /shardKeys is only for collections with custom sharding/);
    assert.deepEqual(validateSearch({ vector: [1, 0, 0], shardKeys: ['t1', 't2'] }, custom).shardKeys, ['t1', 't2']);
    bad(() => validateSearch({ vector: [1, 0, 0], shardKeys: [] }, custom), /shardKeys must not be empty/);
    assert.deepEqual(validateSearch({ vector: [1, 0, 0], filter: { region: 'eu' } }, docs).filter, { region: 'eu' });
  });

  it('search-batch and count - limits and paths inside the batch', () => {
    bad(() => validateSearchBatch({ queries: Array.from({ length: 101 }, () => ({ vector: [1, 0, 0] })) }, docs), /queries has 101 items; the limit is 100/, PayloadTooLargeError);
    bad(() => validateSearchBatch({ queries: [{ vector: [1, 0, 0] }, { vector: [1, 0, 0], k: 0 }] }, docs), /queries\[1\].k must be 1 to 1000/);
    assert.equal(validateSearchBatch({ queries: [{ vector: [1, 0, 0], k: 5 }] }, docs).queries[0]?.k, 5);
    assert.equal(validateCount({}).consistency, 'leased');
    bad(() => validateNamed({}, 'collections.describe'), /name is required/);
    bad(() => validateNamed({ name: 3 }, 'collections.drop'), /name must be a string, got a number/);
    bad(() => validateUpsert('text', docs), /upsert body must be an object, got a string/);
  });
});

describe('collections.create indexes', () => {
  it('validate - indexes are checked field by field, and the error names the field and the allowed types', () => {
    const ok = validateCreate({ name: 'docs', dim: 3, indexes: { year: 'integer', lang: 'keyword', 'meta.score': 'float', draft: 'bool' } });
    assert.deepEqual(ok.indexes, { draft: 'bool', lang: 'keyword', 'meta.score': 'float', year: 'integer' });
    assert.equal(validateCreate({ name: 'docs', dim: 3, indexes: {} }).indexes, undefined, 'no fields: no indexes');
    bad(() => validateCreate({ name: 'docs', dim: 3, indexes: { year: 'date' } }), /^indexes\.year must be one of keyword, integer, float, bool, got 'date'/);
    bad(() => validateCreate({ name: 'docs', dim: 3, indexes: { year: 1 } }), /^indexes\.year must be one of keyword, integer, float, bool, got a number/);
    bad(() => validateCreate({ name: 'docs', dim: 3, indexes: { 'a..b': 'keyword' } }), /^indexes\.a\.\.b: a field name must be non-empty dotted segments/);
    bad(() => validateCreate({ name: 'docs', dim: 3, indexes: { '': 'keyword' } }), /^indexes\.: a field name must be non-empty/);
    bad(() => validateCreate({ name: 'docs', dim: 3, indexes: { 'a.__proto__': 'keyword' } }), /^indexes\.a\.__proto__: .*'__proto__'/);
    bad(() => validateCreate({ name: 'docs', dim: 3, indexes: { 'a.b.c.d.e': 'integer' } }), /^indexes\.a\.b\.c\.d\.e has 5 dotted segments; an indexed field has at most 4/);
    bad(() => validateCreate({ name: 'docs', dim: 3, indexes: { ['x'.repeat(257)]: 'keyword' } }), /^indexes\.'x{64}…' \(257 bytes\): a field name must be .* at most 256 bytes/);
    const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, 'keyword']));
    bad(() => validateCreate({ name: 'docs', dim: 3, indexes: many }), /^indexes has 33 fields; at most 32 may be indexed/);
    validateCreate({ name: 'docs', dim: 3, indexes: Object.fromEntries(Object.entries(many).slice(0, 32)) });
    bad(() => validateCreate({ name: 'docs', dim: 3, indexes: ['year'] }), /^indexes must be an object of field: type \(keyword, integer, float, bool\), got an array/);
  });

  it('validate - a create is the same collection only with the same indexes', () => {
    const a = validateCreate({ name: 'docs', dim: 3, indexes: { year: 'integer', lang: 'keyword' } });
    const b = validateCreate({ name: 'docs', dim: 3, indexes: { lang: 'keyword', year: 'integer' } });
    const c = validateCreate({ name: 'docs', dim: 3, indexes: { lang: 'keyword', year: 'float' } });
    const none = validateCreate({ name: 'docs', dim: 3 });
    assert.ok(sameSettings(a, b), 'field order does not matter');
    assert.ok(!sameSettings(a, c));
    assert.ok(!sameSettings(a, none));
    assert.ok(sameSettings(none, validateCreate({ name: 'docs', dim: 3, indexes: {} })));
  });

  it('validate - search takes explain as a boolean', () => {
    assert.equal(validateSearch({ vector: [1, 0, 0], explain: true }, docs).explain, true);
    assert.equal(validateSearch({ vector: [1, 0, 0] }, docs).explain, undefined);
    bad(() => validateSearch({ vector: [1, 0, 0], explain: 'yes' }, docs), /^explain must be true or false/);
  });
});
