/**
 * Hostile request bodies, decoded and validated as the router does (issue 18, item 3): each is
 * refused with an error that names what is wrong, quickly, and nothing reaches a shard changed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateMaintenance, validateRemove } from '../../src/api/ops.js';
import { validateCount, validateGet, validateNamed, validateSearch, validateUpsert } from '../../src/api/validate.js';
import type { CollectionSpec } from '../../src/api/types.js';
import { parseFilter } from '../../src/index/filter-parse.js';
import { CBOR_MAX_DEPTH, checkPublicCbor } from '../../src/runtime/cbor-check.js';
import { decodeBody, encodeCbor } from '../../src/runtime/codec.js';
import { MAX_ERROR_MESSAGE_CHARS, respondEdgeError } from '../../src/runtime/wire-replies.js';
import { InvalidArgumentError, toPublicError } from '../../src/runtime/errors.js';

const spec: CollectionSpec = {
  name: 'c', dim: 3, metric: 'cosine', shards: 1, replicas: 1,
  sharding: { strategy: 'hash' }, hnsw: { m: 16, efConstruction: 200, ef: 64 },
};
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The public error a request gets: INVALID_ARGUMENT (or another public code) with its message. */
function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    const e = toPublicError(err);
    return { code: e.code, message: e.message };
  }
  assert.fail('expected the request to be refused');
}

describe('hostile input', () => {
  it('hostile input - CBOR bodies that the client sends pass the check: typed arrays, nested metadata, indefinite-length containers, the self-describe tag', () => {
    const body = { points: [{ id: 'a', vector: new Float32Array([1, 2, 3]), metadata: { a: [1, { b: 'é' }], n: null, t: true, f: 1.5 } }], requestId: 'r' };
    const bytes = encodeCbor(body);
    checkPublicCbor(bytes);
    const out = decodeBody(bytes, 'cbor') as { points: [{ vector: Float32Array }] };
    assert.deepEqual([...out.points[0].vector], [1, 2, 3]);
    // {_ "ids": [_ "a", "b"]}
    const indefinite = new Uint8Array([0xbf, 0x63, 0x69, 0x64, 0x73, 0x9f, 0x61, 0x61, 0x61, 0x62, 0xff, 0xff]);
    assert.deepEqual(decodeBody(indefinite, 'cbor'), { ids: ['a', 'b'] });
    assert.deepEqual(decodeBody(new Uint8Array([0xd9, 0xd9, 0xf7, 0xa0]), 'cbor'), {}, 'tag 55799 (self-described CBOR) around {}');
  });

  it('hostile input - CBOR text that is not UTF-8 is refused, not turned into U+FFFD (two ids would become one)', () => {
    // {"ids": ["\xff"]} and {"ids": ["\xfe"]}
    for (const bad of [0xff, 0xfe]) {
      const r = refusal(() => decodeBody(new Uint8Array([0xa1, 0x63, 0x69, 0x64, 0x73, 0x81, 0x61, bad]), 'cbor'));
      assert.equal(r.code, 'INVALID_ARGUMENT');
      assert.match(r.message, /text string that is not valid UTF-8 \(at byte 6\)/);
    }
    assert.match(refusal(() => decodeBody(new Uint8Array([0x7b, 0x22, 0xff]), 'json')).message, /not valid UTF-8/);
  });

  it('hostile input - a CBOR bignum is refused at once (decoding a 200 KB one took cbor-x 19 s of CPU)', () => {
    const n = 200_000;
    const bytes = new Uint8Array(6 + n).fill(0xff);
    bytes.set([0xa1, 0x61, 0x6b, 0xc2, 0x5a], 0); // {"k": 2(h'ff…')} — the length's 4 bytes follow
    new DataView(bytes.buffer).setUint32(5, n - 4);
    const t0 = performance.now();
    const r = refusal(() => decodeBody(bytes.subarray(0, 9 + n - 4), 'cbor'));
    assert.match(r.message, /CBOR tag 2 is not accepted/);
    assert.ok(performance.now() - t0 < 1_000, 'refused without decoding the bignum');
  });

  it('hostile input - CBOR tags other than typed arrays are refused: dates, sets, regular expressions, errors, shared references', () => {
    for (const [tag, value] of [[1, new Date(0)], [258, new Set([1])], [27, /a+/], [27, new Error('x')]] as const) {
      const r = refusal(() => decodeBody(encodeCbor({ points: [{ id: 'a', vector: [1, 1, 1], metadata: { v: value } }] }), 'cbor'));
      assert.match(r.message, new RegExp(`CBOR tag ${tag} is not accepted`));
    }
    // 28(["x"]) then 29(0): a shared reference
    assert.match(refusal(() => decodeBody(new Uint8Array([0x82, 0xd8, 0x1c, 0x81, 0x61, 0x78, 0xd8, 0x1d, 0x00]), 'cbor')).message, /CBOR tag 28/);
    // tag 85 must hold a byte string, not an array
    assert.match(refusal(() => decodeBody(new Uint8Array([0xd8, 0x55, 0x81, 0x01]), 'cbor')).message, /typed-array tag \(64 to 87\) must hold a definite-length byte string/);
  });

  it('hostile input - a CBOR map key __proto__ is refused (cbor-x would rename it __proto_), so is JSON metadata or a filter with one', () => {
    const proto = JSON.parse('{"points":[{"id":"a","vector":[1,1,1],"metadata":{"__proto__":{"x":1}}}]}') as unknown;
    assert.match(refusal(() => decodeBody(encodeCbor(proto), 'cbor')).message, /a map key '__proto__'/);
    assert.match(refusal(() => validateUpsert(proto, spec)).message, /points\[0\]\.metadata has the key '__proto__'/);
    assert.match(refusal(() => validateCount(JSON.parse('{"__proto__": {"consistency": "strong"}}'))).message, /unknown field '__proto__'/);
    assert.match(refusal(() => parseFilter(JSON.parse('{"__proto__": 1}'))).message, /filter\.__proto__: .*'__proto__'/);
    assert.match(refusal(() => parseFilter({ 'a.__proto__.b': 1 })).message, /no segment may be '__proto__'/);
    // `constructor` is an ordinary key
    const ok = validateUpsert({ points: [{ id: 'a', vector: [1, 1, 1], metadata: { constructor: { x: 1 } } }] }, spec);
    assert.deepEqual(ok.points[0]?.metadata, { constructor: { x: 1 } });
    assert.deepEqual(parseFilter({ constructor: 'x' }), { op: 'eq', field: 'constructor', path: ['constructor'], value: 'x' });
  });

  it('hostile input - a lone surrogate (JSON "\\ud800") is refused in ids, metadata and filters: it has no UTF-8 form', () => {
    const body = (s: string): unknown => JSON.parse(s);
    assert.match(refusal(() => validateGet(body('{"ids":["ok","\\ud800"]}'))).message, /ids\[1\] is not valid Unicode/);
    assert.match(refusal(() => validateUpsert(body('{"points":[{"id":"a","vector":[1,1,1],"metadata":{"s":"x\\udfff"}}]}'), spec)).message, /metadata\.s is not valid Unicode/);
    assert.match(refusal(() => validateUpsert(body('{"points":[{"id":"a","vector":[1,1,1],"metadata":{"\\udc00":1}}]}'), spec)).message, /metadata has a key that is not valid Unicode/);
    assert.match(refusal(() => parseFilter(body('{"a":"\\ud800"}'))).message, /filter\.a must be a string, finite number/);
    // a surrogate pair is a character like any other
    assert.deepEqual(validateGet(body('{"ids":["\\ud83d\\ude00"]}')).ids, ['😀']);
  });

  it('hostile input - metadata and filters must be plain objects, not Sets, Maps, RegExps or Errors', () => {
    for (const v of [new Set([1]), new Map([['a', 1]]), /a/, new Error('x')]) {
      assert.match(refusal(() => validateUpsert({ points: [{ id: 'a', vector: [1, 1, 1], metadata: v }] }, spec)).message, /points\[0\]\.metadata must be a JSON object, got a (Set|Map|RegExp|Error)/);
      assert.match(refusal(() => parseFilter(v)).message, /filter must be an object/);
      assert.match(refusal(() => validateCount(v)).message, /count body must be an object, got a (Set|Map|RegExp|Error)/);
    }
    const nullProto = Object.assign(Object.create(null) as object, { a: 1 });
    assert.equal(JSON.stringify(validateUpsert({ points: [{ id: 'a', vector: [1, 1, 1], metadata: nullProto }] }, spec).points[0]?.metadata), '{"a":1}');
  });

  it(`hostile input - nesting: CBOR past ${CBOR_MAX_DEPTH} levels is refused before decoding; JSON 100,000 deep is an error, not a stack overflow`, () => {
    const deep = new Uint8Array(100_001).fill(0x81);
    deep[100_000] = 0x01;
    assert.match(refusal(() => decodeBody(deep, 'cbor')).message, new RegExp(`nesting deeper than ${CBOR_MAX_DEPTH} levels`));
    const okDepth = new Uint8Array(CBOR_MAX_DEPTH + 1).fill(0x81);
    okDepth[CBOR_MAX_DEPTH] = 0x01;
    checkPublicCbor(okDepth);
    const json = (s: string) => decodeBody(utf8(s), 'json');
    assert.match(refusal(() => validateCount(json('['.repeat(100_000) + ']'.repeat(100_000)))).message, /count body must be an object, got an array/);
    const deepMeta = `{"points":[{"id":"a","vector":[1,1,1],"metadata":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}]}`;
    assert.match(refusal(() => validateUpsert(json(deepMeta), spec)).message, /nests deeper than 32 levels/);
    const deepFilter = `{"vector":[1,1,1],"filter":${'{"$not":'.repeat(100_000)}{"a":1}${'}'.repeat(100_000)}}`;
    const q = validateSearch(json(deepFilter), spec);
    assert.match(refusal(() => parseFilter(q.filter)).message, /filter is too deep \(more than 8 levels of nesting\)/);
  });

  it('hostile input - malformed CBOR heads and lengths are refused with where they are', () => {
    const cases: [number[], RegExp][] = [
      [[0x9b, 0, 0, 0, 1, 0, 0, 0, 0], /an array of 4294967296 items where 0 bytes are left/],
      [[0x7a, 0xff, 0xff, 0xff, 0xff], /a string of 4294967295 bytes where 0 are left/],
      [[0xa1, 0x61, 0x61], /the value ends early/],
      [[0x01, 0x02], /1 bytes left over after the value \(at byte 1\)/],
      [[0xff], /a break \(0xff\) outside an indefinite-length item/],
      [[0x1c], /reserved additional information 28/],
      [[0x7f, 0x61, 0x61, 0xff], /an indefinite-length string \(not supported; send its length\)/],
      [[0xbf, 0x61, 0x61, 0xff], /ends after a key, without its value/],
    ];
    for (const [bytes, re] of cases) assert.match(refusal(() => decodeBody(new Uint8Array(bytes), 'cbor')).message, re);
  });

  it('hostile input - huge numbers and non-finite vectors are INVALID_ARGUMENT naming the field', () => {
    assert.match(refusal(() => validateSearch(decodeBody(utf8('{"vector":[1,1,1],"k":1e400}'), 'json'), spec)).message, /^k must be an integer, got Infinity/);
    assert.match(refusal(() => validateSearch(decodeBody(encodeCbor({ vector: new Float32Array([1, NaN, 1]) }), 'cbor'), spec)).message, /^vector\[1\] must be a finite number/);
    assert.match(refusal(() => validateSearch(decodeBody(encodeCbor({ vector: new Float64Array([1, 1, 1e300]) }), 'cbor'), spec)).message, /^vector\[2\] must be a finite number within float32 range, got 1e\+300/);
  });
});

describe('hostile input - names and messages', () => {
  it('hostile input - a node id must be a subject token (a NUL in one reached the metadata store as an invalid key: INTERNAL)', () => {
    for (const node of ['\u0000', 'a.b', 'n 1', 'n*', '>']) {
      const r = refusal(() => validateMaintenance({ node, on: true }));
      assert.equal(r.code, 'INVALID_ARGUMENT');
      assert.match(r.message, /^node '.*' is not a node id: 1 to 128 of A-Z a-z 0-9 _ -$/s);
    }
    assert.match(refusal(() => validateRemove({ node: 'x'.repeat(129) })).message, /^node is 129 bytes; the limit is 128/);
    assert.equal(validateRemove({ node: 'n-2_b' }).node, 'n-2_b');
  });

  it('hostile input - error messages quote at most 64 characters of a hostile name, key or value', () => {
    const huge = 'x'.repeat(500_000);
    for (const r of [
      refusal(() => validateNamed({ name: huge }, 'collections.describe')),
      refusal(() => validateCount({ [huge]: 1 })),
      refusal(() => validateCount({ consistency: huge })),
      refusal(() => validateUpsert({ points: [{ id: 'a', vector: [1, 1, 1] }], writeConcern: huge }, spec)),
    ]) {
      assert.equal(r.code, 'INVALID_ARGUMENT');
      assert.ok(r.message.length < 300, `a short message, got ${r.message.length} characters`);
      assert.match(r.message, /'x{64}…' \(\d+ bytes\)/);
    }
  });

  it('hostile input - a public error reply carries at most 4,096 characters of message, in its body and its header', () => {
    let sent: { data: Uint8Array; header: string } | undefined;
    const msg = { respond: (data: Uint8Array, opts: { headers: { get(k: string): string } }) => (sent = { data, header: opts.headers.get('Nats-Service-Error') }) };
    respondEdgeError(msg as unknown as Parameters<typeof respondEdgeError>[0], 'json', new InvalidArgumentError(`bad ${'z'.repeat(2_000_000)}`));
    assert.ok(sent);
    const body = JSON.parse(new TextDecoder().decode(sent.data)) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'INVALID_ARGUMENT');
    assert.equal(body.error.message.length, MAX_ERROR_MESSAGE_CHARS + '… (message cut)'.length);
    assert.equal(sent.header, body.error.message);
  });
});

describe('hostile input - error replies', () => {
  it('hostile input - an error reply the NATS client will not send (over max payload) becomes a short INTERNAL reply, never a throw out of the reply callback (which ended the node)', () => {
    const sent: { data: Uint8Array; code: string }[] = [];
    let calls = 0;
    const msg = {
      respond: (data: Uint8Array, opts: { headers: { get(k: string): string } }) => {
        if (calls++ === 0) throw new Error("'payload' max_payload size exceeded");
        sent.push({ data, code: opts.headers.get('Nats-Service-Error-Code') });
        return true;
      },
    };
    respondEdgeError(msg as unknown as Parameters<typeof respondEdgeError>[0], 'json', new InvalidArgumentError('name is bad'));
    assert.equal(sent.length, 1);
    const body = JSON.parse(new TextDecoder().decode(sent[0]?.data)) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'INTERNAL');
    assert.match(body.error.message, /the error reply could not be sent \('payload' max_payload size exceeded\); it was INVALID_ARGUMENT/);
    assert.equal(sent[0]?.code, '500');
    // and when even that fails, nothing is thrown
    const dead = { respond: () => { throw new Error('connection closed'); } };
    respondEdgeError(dead as unknown as Parameters<typeof respondEdgeError>[0], 'cbor', new InvalidArgumentError('x'));
  });
});
