import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeBody, decodeCbor, encodeBody, encodeCbor, encodingOf } from '../../src/runtime/codec.js';
import { DecodeError } from '../../src/runtime/errors.js';

const hdr = (ct: string) => ({ get: (k: string) => (k.toLowerCase() === 'content-type' ? ct : '') });

describe('codec', () => {
  it('codec - CBOR round trip keeps a Float32Array as a Float32Array with the same values', () => {
    const v = new Float32Array([0.1, -2.5, 3e-8, 1e30]);
    const out = decodeCbor(encodeCbor({ id: 'a', vector: v, meta: { n: 1, s: 'x', nested: [true, null] } })) as {
      id: string;
      vector: Float32Array;
      meta: unknown;
    };
    assert.ok(out.vector instanceof Float32Array);
    assert.deepEqual([...out.vector], [...v]);
    assert.deepEqual(out.meta, { n: 1, s: 'x', nested: [true, null] });
  });

  it('codec - a decoded Float32Array owns its memory: changing the input bytes afterwards does not change it', () => {
    const bytes = encodeCbor({ v: new Float32Array([1, 2, 3]) });
    const out = decodeCbor(bytes) as { v: Float32Array };
    bytes.fill(0);
    assert.deepEqual([...out.v], [1, 2, 3]);
  });

  it('codec - CBOR Float32Array uses the RFC 8746 little-endian float32 tag (85), readable by other languages', () => {
    const bytes = encodeCbor(new Float32Array([1]));
    // 0xd8 0x55 = tag(85), then a byte string of 4 bytes
    assert.equal(bytes[0], 0xd8);
    assert.equal(bytes[1], 85);
  });

  it('codec - JSON edge turns typed arrays into arrays of numbers', () => {
    const bytes = encodeBody({ hits: [{ vector: new Float32Array([0.5, 1]) }] }, 'json');
    assert.deepEqual(JSON.parse(Buffer.from(bytes).toString('utf8')), { hits: [{ vector: [0.5, 1] }] });
  });

  it('codec - the edge encoding follows Content-Type, JSON by default', () => {
    assert.equal(encodingOf(undefined), 'json');
    assert.equal(encodingOf(hdr('')), 'json');
    assert.equal(encodingOf(hdr('application/cbor')), 'cbor');
    assert.equal(encodingOf(hdr('Application/CBOR; charset=binary')), 'cbor');
    assert.equal(encodingOf(hdr('application/json')), 'json');
  });

  it('codec - an empty body is {} in both encodings', () => {
    assert.deepEqual(decodeBody(new Uint8Array(0), 'json'), {});
    assert.deepEqual(decodeBody(new Uint8Array(0), 'cbor'), {});
  });

  it('codec - garbage bytes are a DecodeError, never a crash', () => {
    const garbage = [
      Uint8Array.from([0xff, 0xfe, 0x00, 0x13]),
      Uint8Array.from([0x9f]), // indefinite array never closed
      Uint8Array.from([0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // byte string claiming 2^64 bytes
      Uint8Array.from([0xa1]), // map with a key and no value
    ];
    for (const g of garbage) {
      assert.throws(() => decodeCbor(g), DecodeError, `CBOR ${Buffer.from(g).toString('hex')}`);
    }
    assert.throws(() => decodeBody(Buffer.from('{"a": '), 'json'), DecodeError);
    assert.throws(() => decodeBody(Uint8Array.from([0xc3, 0x28]), 'json'), (e: unknown) => e instanceof DecodeError && /UTF-8/.test(e.message));
    assert.throws(() => decodeCbor(new Uint8Array(0)), DecodeError);
  });

  it('codec - random byte strings never escape as anything but DecodeError', () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: 1 + Math.floor(rand() * 24) }, () => Math.floor(rand() * 256));
      try {
        decodeCbor(bytes);
      } catch (err) {
        assert.ok(err instanceof DecodeError, `input ${Buffer.from(bytes).toString('hex')} threw ${String(err)}`);
      }
    }
  });
});
