import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LIMITS } from '../../src/api/limits.js';
import {
  chunkBySize,
  encodedBytes,
  firstOfEach,
  lastOfEach,
  partRequestId,
  payloadBudget,
  pointRequestBound,
  vectorReplyBytes,
} from '../../src/client/payload-split.js';
import { encodeBody } from '../../src/runtime/codec.js';

/** A unit-norm-ish embedding: small float32 values of both signs, the JSON worst case in practice. */
function embedding(dim: number, seed: number): Float32Array {
  let x = seed;
  return Float32Array.from({ length: dim }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return (x / 2 ** 31 - 0.5) / 8;
  });
}

describe('payload split', () => {
  it('payload split - chunks keep order, respect the byte budget and the count, and an oversized item stands alone', () => {
    const sizes = [3, 3, 3, 9, 12, 1, 1, 1];
    const chunks = chunkBySize(sizes, (x) => x, 10, 3);
    assert.deepEqual(chunks, [[3, 3, 3], [9], [12], [1, 1, 1]]);
    assert.deepEqual(chunks.flat(), sizes);
    assert.deepEqual(chunkBySize([], (x: number) => x, 10, 3), []);
  });

  it('payload split - part requestIds are deterministic, distinct, within 128 bytes, and the requestId itself when there is one part', () => {
    assert.equal(partRequestId('r1', 0, 1), 'r1');
    const parts = [0, 1, 2].map((i) => partRequestId('r1', i, 3));
    assert.deepEqual(parts, ['r1/part-1-of-3', 'r1/part-2-of-3', 'r1/part-3-of-3']);
    const long = 'x'.repeat(LIMITS.requestIdMaxBytes);
    const a = partRequestId(long, 0, 2);
    assert.ok(Buffer.byteLength(a) <= LIMITS.requestIdMaxBytes, a);
    assert.equal(a, partRequestId(long, 0, 2));
    assert.notEqual(a, partRequestId(long, 1, 2));
    assert.notEqual(a, partRequestId(`${long.slice(1)}y`, 0, 2));
  });

  it('payload split - a repeated id: a get keeps the first, an upsert the last, each at its own position', () => {
    assert.deepEqual(firstOfEach(['a', 'b', 'a', 'c', 'b'], (x) => x), ['a', 'b', 'c']);
    const pts = [{ id: 'a', v: 1 }, { id: 'b', v: 2 }, { id: 'a', v: 3 }];
    assert.deepEqual(lastOfEach(pts, (p) => p.id), [{ id: 'b', v: 2 }, { id: 'a', v: 3 }]);
  });

  it('payload split - the reply estimate of a vector covers its real encoding: exact in CBOR, an upper bound for embeddings in JSON', () => {
    for (const dim of [3, 128, 1536, 4096]) {
      const v = embedding(dim, dim);
      const cbor = encodeBody({ vector: v }, 'cbor').length - encodeBody({ vector: new Float32Array(0) }, 'cbor').length;
      assert.ok(vectorReplyBytes(dim, 'cbor') >= cbor && vectorReplyBytes(dim, 'cbor') - cbor <= 8, `cbor ${dim}: ${cbor}`);
      const json = encodeBody(v, 'json').length;
      assert.ok(vectorReplyBytes(dim, 'json') >= json, `json ${dim}: ${json} > ${vectorReplyBytes(dim, 'json')}`);
      assert.ok(vectorReplyBytes(dim, 'json') < json * 1.3, `json ${dim}: the estimate is not far above ${json}`);
    }
  });

  it('payload split - an upsert point\'s cheap bound is at least its exact size, in JSON and CBOR, typed or plain', () => {
    for (const encoding of ['json', 'cbor'] as const) {
      for (const vector of [embedding(1536, 7), Array.from(embedding(1536, 8)), [1e-300, -1.7976931348623157e308, 0.1]]) {
        const p = { id: 'doc-ü-1', vector, metadata: { title: 'ünïcode "quoted"', n: 0.1, tags: ['a', 'b'] }, shardKey: 'k' };
        assert.ok(pointRequestBound(p, encoding) >= encodedBytes(p, encoding), `${encoding} ${vector.constructor.name}`);
      }
    }
  });

  it('payload split - the budget keeps room for headers and options', () => {
    assert.equal(payloadBudget(1024 * 1024), 1024 * 1024 - 16 * 1024);
    assert.equal(payloadBudget(100), 1024);
  });
});
