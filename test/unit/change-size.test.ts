/**
 * The router's bound on a change-stream message (src/actors/router/change-size.ts) is never below
 * the message the shard's publisher really sends, whatever the floats look like, and a write over
 * the max payload is refused naming the field, the shard and the limit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeMessageBound, checkChangeMessageSize } from '../../src/actors/router/change-size.js';
import { changeMessage } from '../../src/actors/replica/change-publisher.js';
import type { ShardPoint } from '../../src/actors/shard-protocol.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('change message size', () => {
  it('change size - the bound holds for floats of every magnitude and sign, ids, metadata and shard keys in UTF-8', () => {
    const r = rng(7);
    for (let round = 0; round < 50; round++) {
      const points: ShardPoint[] = Array.from({ length: 1 + Math.floor(r() * 20) }, (_, i) => {
        const v = new Float32Array(1 + Math.floor(r() * 64));
        for (let j = 0; j < v.length; j++) v[j] = (r() - 0.5) * 10 ** Math.floor(r() * 76 - 38);
        return { id: `p-${round}-${i}-é`, vector: v, ...(r() < 0.5 ? { metadata: { lang: 'ünïcode', n: r() } } : {}), ...(r() < 0.3 ? { shardKey: `tenant-ø-${i}` } : {}) };
      });
      const sent = Buffer.byteLength(JSON.stringify(changeMessage(3, 123456789, { op: 'upsert', time: Date.now(), points: points as never })));
      const bound = changeMessageBound(points);
      assert.ok(bound >= sent, `round ${round}: bound ${bound} < message ${sent}`);
      assert.ok(bound <= sent * 3 + 400, `round ${round}: bound ${bound} is far above the message ${sent}`);
    }
  });

  it('change size - a shard part over the max payload is INVALID_ARGUMENT naming points, the shard and the limit', () => {
    const big: ShardPoint[] = Array.from({ length: 100 }, (_, i) => ({ id: `p${i}`, vector: new Float32Array(512).fill(-1.2345678e-30) }));
    assert.throws(
      () => checkChangeMessageSize('docs', new Map([[0, big.slice(0, 2)], [1, big]]), 1024 * 1024),
      (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && /^points: collection 'docs' has a change stream, and the 100 points of this write that go to shard 1 could make a change message of up to \d+ bytes, over the NATS max payload of 1048576/.test(e.message),
    );
    checkChangeMessageSize('docs', new Map([[0, big.slice(0, 50)]]), 1024 * 1024);
  });
});
