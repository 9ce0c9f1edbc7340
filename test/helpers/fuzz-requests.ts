/**
 * Hostile requests for the public API (issue 18, item 3), as fast-check arbitraries, and how
 * they are written as bytes. fuzz-checks.ts holds what their replies are held to.
 *
 * The checked collection (`fuzzed`) is sent reads of every shape, and writes whose bodies are
 * garbage (random bytes, random JSON or CBOR values, deep nesting); well-formed-looking writes,
 * mutated to be hostile, go to a scratch collection, so that "unchanged" means something: no
 * request to `fuzzed` may change it, whatever its reply says. Used by
 * test/integration/fuzz.test.ts (a fixed seed) and by `npm run fuzz` (longer runs).
 */
import fc from 'fast-check';
import { encodeCbor } from '../../src/runtime/codec.js';

export const FUZZED = 'fuzzed';
export const SCRATCH = 'scratch';
export const DIM = 4;

const DATA_OPS = ['upsert', 'delete', 'get', 'search', 'search-batch', 'count'] as const;
const ADMIN_OPS = [
  'collections.create', 'collections.list', 'collections.describe', 'collections.drop', 'collections.reshard',
  'cluster.status', 'cluster.health', 'nodes.maintenance', 'nodes.remove', 'shards.transfer-leader',
  'rebalance.status', 'rebalance.start', 'rebalance.pause', 'rebalance.resume', 'rebalance.configure',
] as const;
const WRITES = new Set(['upsert', 'delete']);
/** Collection names on data subjects: the checked one, the scratch one, missing, reserved, too long. */
const COLLECTIONS = [FUZZED, FUZZED, FUZZED, SCRATCH, SCRATCH, 'missing', 'admin', '_hidden', 'x'.repeat(64), 'y'.repeat(65)];

/** A seeded point of the checked collection. */
export interface SeedPoint {
  id: string;
  vector: number[];
  metadata: Record<string, unknown>;
}

export function seedPoints(n: number): SeedPoint[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `p-${i}`,
    vector: Array.from({ length: DIM }, (_, d) => ((i * 7 + d * 3) % 11) + 1),
    metadata: { group: `g${i % 5}`, n: i, tags: [`t${i % 3}`, 'all'], nested: { even: i % 2 === 0 } },
  }));
}

// ---------------------------------------------------------------------------------------------
// Values

/** A number JSON cannot write (1e400, NaN): rendered raw into JSON text; CBOR carries it as a float. */
export class RawNumber {
  constructor(readonly text: string) {}
  get value(): number {
    return Number(this.text);
  }
}

/** An object with an own key, set as JSON.parse sets it (so `__proto__` is a key, not the prototype). */
function own(entries: [string, unknown][]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

const hostileString = fc.oneof(
  fc.constantFrom('', 'a', 'p-1', 'é', '😀', '\ud800', 'x\udfff', '\u0000', '__proto__', 'constructor', 'prototype', '$and', '$where', 'admin', 'toString', '1e400', 'NaN'),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.integer({ min: 257, max: 200_000 }).map((n) => 'x'.repeat(n)),
  // near the 1 MiB max payload (a request over it is not sent: the NATS client refuses it)
  fc.constant('y'.repeat(1_000_000)),
);

const hostileNumber = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.5, 3, 4, 10, 1000, 1001, 10_000, 60_000, 60_001, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308, 5e-324),
  fc.constantFrom('1e400', '-1e400', 'NaN', 'Infinity', '1e-400', '123456789012345678901234567890').map((t) => new RawNumber(t)),
  fc.double(),
  fc.integer(),
);

const hostileVector = fc.oneof(
  fc.array(hostileNumber, { maxLength: 6 }),
  fc.array(fc.double({ noNaN: true, noDefaultInfinity: true, min: -10, max: 10 }), { minLength: DIM, maxLength: DIM }),
  fc.constantFrom(
    new Float32Array([NaN, 1, 1, 1]), new Float32Array([1, Infinity, 1, 1]), new Float32Array([1, 1, 1, -Infinity]),
    new Float32Array([0, 0, 0, 0]), new Float32Array([1, 2, 3]), new Float64Array([1, 1, 1, 1e300]),
    new Int8Array([1, 2, 3, 4]), new Uint8Array([1, 2, 3, 4]),
  ),
  fc.integer({ min: 0, max: 20_000 }).map((n) => new Float32Array(n).fill(1)),
);

const hostileLeaf: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 3, arbitrary: hostileNumber },
  fc.constantFrom(null, true, false, undefined, [], {}, [[[]]], 10n, 2n ** 80n),
  hostileVector,
  fc.constant(own([['__proto__', { polluted: true }]])),
  fc.constant(own([['constructor', { prototype: { polluted: true } }]])),
);

/** A JSON-ish value of any shape, with hostile leaves and keys. */
const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 4, arbitrary: hostileLeaf },
    fc.array(tie('v'), { maxLength: 4 }),
    fc.array(fc.tuple(fc.oneof(hostileString, fc.constantFrom('points', 'ids', 'vector', 'filter', 'k', 'metadata', 'id', 'name', '$and', '$not', '$in', 'a')), tie('v')), { maxLength: 4 }).map(own),
  ),
})).v;

/** Filters in PROTOCOL.md's language, some valid, some deeper than the limit of 8, some wrong. */
const filter: fc.Arbitrary<unknown> = fc.letrec<{ f: unknown }>((tie) => ({
  f: fc.oneof(
    { depthSize: 'medium', withCrossShrink: true },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom('group', 'n', 'tags', 'nested.even', 'missing', '__proto__', 'constructor', 'a..b', '', '$bad', 'x'.repeat(300)), fc.oneof(hostileLeaf, fc.tuple(fc.constantFrom('$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$regex'), hostileLeaf).map(([op, v]) => own([[op, v]])))).map(([k, v]) => own([[k, v]])) },
    fc.array(tie('f'), { maxLength: 3 }).map((fs) => ({ $and: fs })),
    fc.array(tie('f'), { maxLength: 3 }).map((fs) => ({ $or: fs })),
    tie('f').map((f) => ({ $not: f })),
    hostileLeaf,
  ),
})).f;

/** A filter nested `depth` times in `$not` (or `$and`): the limit is 8. */
const deepFilter = fc.tuple(fc.integer({ min: 7, max: 40 }), fc.boolean()).map(([depth, and]) => {
  let f: unknown = { group: 'g1' };
  for (let i = 0; i < depth; i++) f = and ? { $and: [f] } : { $not: f };
  return f;
});

// ---------------------------------------------------------------------------------------------
// Requests

export type Payload =
  | { kind: 'value'; value: unknown }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'deep'; open: 'array' | 'object' | 'filter' | 'metadata'; depth: number }
  | { kind: 'corrupt'; value: unknown; edits: [number, number][] };

export interface FuzzRequest {
  /** `data` subjects name a collection; `admin` ones an area and op. */
  target: { kind: 'data'; collection: string; op: (typeof DATA_OPS)[number] } | { kind: 'admin'; op: (typeof ADMIN_OPS)[number] };
  encoding: 'json' | 'cbor';
  payload: Payload;
}

/** Sets `path` in a copy of `base` to `value` (as an own key, even `__proto__`). */
function setPath(base: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(base) && typeof head === 'number') {
    const copy = [...base];
    copy[Math.min(head, copy.length)] = setPath(copy[head], rest, value);
    return copy;
  }
  const entries: [string, unknown][] = base !== null && typeof base === 'object' && !ArrayBuffer.isView(base) ? Object.entries(base) : [];
  const key = String(head);
  const at = entries.findIndex(([k]) => k === key);
  const next = setPath(at >= 0 ? entries[at]?.[1] : undefined, rest, value);
  if (at >= 0) entries[at] = [key, next];
  else entries.push([key, next]);
  return own(entries);
}

const vec = [1, 2, 3, 4];
/** Well-formed bodies per operation, and the paths a mutation may replace or add. */
const TEMPLATES: Record<string, { body: unknown; paths: (string | number)[][] }> = {
  upsert: {
    body: { points: [{ id: 'new-1', vector: vec, metadata: { group: 'g1', n: 1 } }], writeConcern: 'majority' },
    paths: [['points'], ['points', 0], ['points', 0, 'id'], ['points', 0, 'vector'], ['points', 0, 'metadata'], ['points', 0, 'metadata', 'group'], ['points', 0, 'metadata', '__proto__'], ['points', 0, 'shardKey'], ['points', 1], ['writeConcern'], ['requestId'], ['timeoutMs'], ['__proto__'], ['constructor']],
  },
  delete: {
    body: { ids: ['new-1', 'new-2'], writeConcern: 'leader' },
    paths: [['ids'], ['ids', 0], ['ids', 2], ['writeConcern'], ['requestId'], ['timeoutMs'], ['__proto__']],
  },
  get: {
    body: { ids: ['p-1', 'p-2'], consistency: 'strong', withVector: true },
    paths: [['ids'], ['ids', 0], ['ids', 5], ['consistency'], ['withVector'], ['withMetadata'], ['timeoutMs'], ['__proto__'], ['constructor']],
  },
  search: {
    body: { vector: vec, k: 3, filter: { group: 'g1' }, consistency: 'eventual', withMetadata: true },
    paths: [['vector'], ['vector', 0], ['k'], ['ef'], ['filter'], ['filter', 'group'], ['filter', '$and'], ['consistency'], ['withVector'], ['shardKeys'], ['timeoutMs'], ['__proto__']],
  },
  'search-batch': {
    body: { queries: [{ vector: vec, k: 2 }, { vector: vec, k: 1, filter: { n: { $gte: 3 } } }] },
    paths: [['queries'], ['queries', 0], ['queries', 1, 'filter'], ['queries', 0, 'vector'], ['queries', 1, 'k'], ['queries', 2], ['timeoutMs'], ['__proto__']],
  },
  count: { body: { consistency: 'leased' }, paths: [['consistency'], ['timeoutMs'], ['__proto__'], ['constructor']] },
  'collections.create': {
    // five replicas on a smaller cluster: UNAVAILABLE at best
    body: { name: 'ghost', dim: 4, metric: 'l2', shards: 2, replicas: 5, sharding: { strategy: 'range', boundaries: ['m'] }, hnsw: { m: 8 } },
    paths: [['name'], ['dim'], ['metric'], ['shards'], ['sharding'], ['sharding', 'strategy'], ['sharding', 'boundaries'], ['sharding', 'vnodes'], ['hnsw'], ['hnsw', 'm'], ['hnsw', 'ef'], ['timeoutMs'], ['__proto__']],
  },
  'collections.list': { body: {}, paths: [['timeoutMs'], ['x'], ['__proto__']] },
  'collections.describe': { body: { name: 'ghost' }, paths: [['name'], ['timeoutMs'], ['__proto__']] },
  'collections.drop': { body: { name: 'ghost' }, paths: [['name'], ['timeoutMs'], ['__proto__']] },
  'collections.reshard': { body: { name: 'ghost', shards: 2, boundaries: ['m'] }, paths: [['name'], ['shards'], ['boundaries'], ['boundaries', 0], ['timeoutMs']] },
  'cluster.status': { body: {}, paths: [['timeoutMs'], ['__proto__']] },
  'cluster.health': { body: {}, paths: [['timeoutMs'], ['constructor']] },
  'nodes.maintenance': { body: { node: 'n9', on: true }, paths: [['node'], ['on'], ['timeoutMs']] },
  'nodes.remove': { body: { node: 'n9' }, paths: [['node'], ['timeoutMs']] },
  'shards.transfer-leader': { body: { collection: 'ghost', shard: 0, to: 'n9' }, paths: [['collection'], ['shard'], ['to'], ['timeoutMs']] },
  'rebalance.status': { body: {}, paths: [['timeoutMs'], ['__proto__']] },
  'rebalance.start': { body: { dryRun: true }, paths: [['dryRun'], ['timeoutMs']] },
  'rebalance.pause': { body: {}, paths: [['timeoutMs'], ['x']] },
  'rebalance.resume': { body: {}, paths: [['timeoutMs']] },
  'rebalance.configure': { body: { maxConcurrentMoves: 2, maxBytesPerSec: 0 }, paths: [['maxConcurrentMoves'], ['maxBytesPerSec'], ['auto'], ['replaceAfterMs'], ['timeoutMs']] },
};

const replacement = fc.oneof({ weight: 4, arbitrary: hostileLeaf }, hostileValue, filter, deepFilter);

function nearValid(op: string): fc.Arbitrary<unknown> {
  const t = TEMPLATES[op];
  if (!t) throw new Error(`no template for ${op}`);
  return fc.array(fc.tuple(fc.constantFrom(...t.paths), replacement), { minLength: 1, maxLength: 3 })
    .map((edits) => edits.reduce<unknown>((b, [path, v]) => setPath(b, path, v), t.body));
}

const metaKey = fc.oneof(fc.constantFrom('constructor', 'toString', 'prototype', 'hasOwnProperty', '__proto__', '$and', 'a.b', '', '😀', 'é'), fc.string({ maxLength: 8 }));
/** Metadata that is valid JSON but odd: keys that name Object's properties, emoji, big and tiny numbers. */
const oddMetadata: fc.Arbitrary<unknown> = fc.letrec<{ m: unknown }>((tie) => ({
  m: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 3, arbitrary: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom(1e308, -1e308, 5e-324, -0, 2 ** 53 + 2, 0.1, null, true, false, '', '\u0000', '😀')) },
    fc.array(tie('m'), { maxLength: 3 }),
    fc.array(fc.tuple(metaKey, tie('m')), { maxLength: 4 }).map(own),
  ),
})).m;
/** An upsert of well-formed points with odd but valid ids and metadata: accepted, and it must read back the same. */
const oddUpsert: fc.Arbitrary<unknown> = fc.array(
  fc.record({
    id: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.constantFrom('😀', 'é', '\u0000', ' ', 'constructor', '__proto__', 'x'.repeat(256))),
    vector: fc.array(fc.double({ min: -1e30, max: 1e30, noNaN: true }), { minLength: DIM, maxLength: DIM }),
    metadata: fc.array(fc.tuple(metaKey, oddMetadata), { maxLength: 5 }).map(own),
  }),
  { minLength: 1, maxLength: 4 },
).map((points) => ({ points }));

const target: fc.Arbitrary<FuzzRequest['target']> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('data' as const), collection: fc.constantFrom(...COLLECTIONS), op: fc.constantFrom(...DATA_OPS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('admin' as const), op: fc.constantFrom(...ADMIN_OPS) }) },
);

const garbage: fc.Arbitrary<Payload> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ kind: 'bytes' as const, bytes })),
  fc.constantFrom('', 'null', '[]', '"x"', '42', '{', '{"a":1}x', 'true', '{"points": null}', '\ufeff{}').map((s) => ({ kind: 'bytes' as const, bytes: new TextEncoder().encode(s) })),
  hostileValue.map((value) => ({ kind: 'value' as const, value })),
  fc.record({ kind: fc.constant('deep' as const), open: fc.constantFrom('array' as const, 'object' as const, 'filter' as const), depth: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 100_000 })) }),
);

/** One hostile request: its subject, encoding and body. */
export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.tuple(target, fc.constantFrom('json' as const, 'cbor' as const)).chain(([t, encoding]) => {
  const op = t.op;
  // Writes to the checked collection get garbage only; well-formed-looking ones go elsewhere.
  const checkedWrite = t.kind === 'data' && t.collection === FUZZED && WRITES.has(op);
  const shaped = nearValid(op);
  const payload: fc.Arbitrary<Payload> = checkedWrite
    ? garbage
    : fc.oneof(
        { weight: 3, arbitrary: shaped.map((value) => ({ kind: 'value' as const, value })) },
        { weight: 2, arbitrary: garbage },
        { weight: 1, arbitrary: fc.tuple(shaped, fc.array(fc.tuple(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 })).map(([value, e]) => ({ kind: 'corrupt' as const, value, edits: e })) },
        { weight: t.kind === 'data' && op === 'upsert' ? 2 : 0, arbitrary: oddUpsert.map((value) => ({ kind: 'value' as const, value })) },
        { weight: t.kind === 'data' && op === 'upsert' ? 1 : 0, arbitrary: fc.integer({ min: 30, max: 100_000 }).map((depth) => ({ kind: 'deep' as const, open: 'metadata' as const, depth })) },
      );
  return payload.map((p) => ({ target: t, encoding, payload: p }));
});

/** Requests that once failed (or would, without their fix): sent first in every run. */
export const REGRESSIONS: FuzzRequest[] = [
  // the error message echoed the name twice (body and header): over max payload, and the throw ended the node
  { target: { kind: 'admin', op: 'collections.create' }, encoding: 'json', payload: { kind: 'value', value: { name: 'y'.repeat(1_000_000), dim: 4 } } },
  // a NUL in a node id reached the metadata store as an invalid key: INTERNAL
  { target: { kind: 'admin', op: 'nodes.maintenance' }, encoding: 'cbor', payload: { kind: 'value', value: { node: '\u0000', on: true } } },
  { target: { kind: 'admin', op: 'nodes.remove' }, encoding: 'json', payload: { kind: 'value', value: { node: ' ' } } },
  // a 200 KB CBOR bignum took 19 s of CPU to decode
  { target: { kind: 'data', collection: FUZZED, op: 'search' }, encoding: 'cbor', payload: { kind: 'bytes', bytes: bignumBody(200_000) } },
  // metadata key __proto__ came back as __proto_; Sets were stored as {}
  { target: { kind: 'data', collection: SCRATCH, op: 'upsert' }, encoding: 'json', payload: { kind: 'value', value: { points: [{ id: 'p', vector: [1, 2, 3, 4], metadata: own([['__proto__', { x: 1 }]]) }] } } },
  { target: { kind: 'data', collection: SCRATCH, op: 'upsert' }, encoding: 'cbor', payload: { kind: 'value', value: { points: [{ id: 'p', vector: [1, 2, 3, 4], metadata: { s: new Set([1]) } }] } } },
  { target: { kind: 'data', collection: FUZZED, op: 'search' }, encoding: 'json', payload: { kind: 'deep', open: 'filter', depth: 100_000 } },
  { target: { kind: 'data', collection: FUZZED, op: 'upsert' }, encoding: 'cbor', payload: { kind: 'deep', open: 'array', depth: 100_000 } },
];

/** `{"k": 2(h'ff…')}`: a CBOR bignum of `n` bytes. */
function bignumBody(n: number): Uint8Array {
  const bytes = new Uint8Array(9 + n).fill(0xff);
  bytes.set([0xa1, 0x61, 0x6b, 0xc2, 0x5a], 0);
  new DataView(bytes.buffer).setUint32(5, n);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** JSON text of `v`, writing {@link RawNumber}s raw and typed arrays as arrays (JSON.stringify would write null and objects). */
export function jsonText(v: unknown): string {
  if (v instanceof RawNumber) return v.text;
  if (v === undefined) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (ArrayBuffer.isView(v)) return jsonText(Array.from(v as unknown as ArrayLike<number>));
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : String(v);
  if (Array.isArray(v)) return `[${v.map(jsonText).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${jsonText(x)}`).join(',')}}`;
  return JSON.stringify(v);
}

function cborValue(v: unknown): unknown {
  if (v instanceof RawNumber) return v.value;
  if (Array.isArray(v)) return v.map(cborValue);
  if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v)) return own(Object.entries(v).map(([k, x]) => [k, cborValue(x)]));
  return v;
}

function deepBytes(open: 'array' | 'object' | 'filter' | 'metadata', depth: number, encoding: 'json' | 'cbor'): Uint8Array {
  if (encoding === 'cbor' && (open === 'array' || open === 'object')) {
    // arrays of one item (0x81) or maps {"a": …} (0xa1 0x61 0x61), then 1
    const unit = open === 'array' ? [0x81] : [0xa1, 0x61, 0x61];
    const out = new Uint8Array(unit.length * depth + 1);
    for (let i = 0; i < depth; i++) out.set(unit, i * unit.length);
    out[out.length - 1] = 0x01;
    return out;
  }
  // CBOR filters and metadata are built as values, which the encoder walks by recursion: kept to 1,000 levels
  const d = encoding === 'cbor' ? Math.min(depth, 1_000) : depth;
  const nest = (o: string, inner: string, c: string): string => o.repeat(d) + inner + c.repeat(d);
  const text =
    open === 'array' ? nest('[', '1', ']')
    : open === 'object' ? nest('{"a":', '1', '}')
    : open === 'filter' ? `{"vector":[1,2,3,4],"filter":${nest('{"$not":', '{"group":"g1"}', '}')}}`
    : `{"points":[{"id":"deep","vector":[1,2,3,4],"metadata":${nest('{"a":', '1', '}')}}]}`;
  return encoding === 'cbor' ? encodeCbor(JSON.parse(text)) : new TextEncoder().encode(text);
}

export function subjectOf(req: FuzzRequest, prefix = 'shoal'): string {
  return req.target.kind === 'data' ? `${prefix}.v1.${req.target.collection}.${req.target.op}` : `${prefix}.v1.admin.${req.target.op}`;
}

export function bodyOf(req: FuzzRequest): Uint8Array {
  const p = req.payload;
  const encode = (v: unknown): Uint8Array => (req.encoding === 'cbor' ? encodeCbor(cborValue(v)) : new TextEncoder().encode(jsonText(v)));
  switch (p.kind) {
    case 'bytes':
      return p.bytes;
    case 'value':
      return encode(p.value);
    case 'deep':
      return deepBytes(p.open, p.depth, req.encoding);
    case 'corrupt': {
      const bytes = encode(p.value).slice();
      for (const [at, b] of p.edits) if (bytes.length > 0) bytes[Math.floor(at * bytes.length)] = b;
      return bytes;
    }
  }
}

/** The request as a person reads it: subject, encoding, and the body (text, or hex), cut to `max` characters. */
export function showRequest(req: FuzzRequest, max = 600): string {
  const bytes = bodyOf(req);
  const text = Buffer.from(bytes).toString(req.encoding === 'json' ? 'utf8' : 'hex');
  const cut = text.length > max ? `${text.slice(0, max)}… (${bytes.length} bytes in all)` : text;
  return `${subjectOf(req)} [${req.encoding}, ${p(req.payload)}] ${cut}`;
  function p(x: Payload): string {
    return x.kind === 'deep' ? `deep ${x.open} ×${x.depth}` : x.kind;
  }
}
