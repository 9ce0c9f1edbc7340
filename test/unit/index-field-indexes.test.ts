/**
 * The point table's field indexes (postings, and the sorted numbers of declared `integer` and
 * `float` fields) against the filter semantics they must keep: on random metadata (arrays, nulls,
 * mixed types, nested fields) and random filters, `select` equals a scan with `matches()`, and
 * `estimate` is never below the true count and equal to it when it says `exact`; through
 * upserts, re-upserts, deletes, hides and unhides, and a table rebuilt from its state.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matches, parseFilter, type Filter } from '../../src/index/mod.js';
import { PointTable } from '../../src/index/point-table.js';
import { SortedNumbers } from '../../src/index/sorted-numbers.js';
import type { IndexedFields, Metadata } from '../../src/index/types.js';
import { rng } from '../helpers/shard-workload.js';

const DECLARED: IndexedFields = { a: 'integer', b: 'float', k: 'keyword', f: 'bool', 'n.x': 'integer', 'n.y': 'float' };
const FIELDS = ['a', 'b', 'k', 'f', 'n.x', 'n.y', 'n', 'u', 'gone'];

function scalar(r: () => number): unknown {
  const pick = Math.floor(r() * 12);
  switch (pick) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
    case 3:
      return ['x', 'y', 'z', ''][Math.floor(r() * 4)];
    case 4:
      return -0;
    case 5:
      return Math.round(r() * 100) / 10 - 5; // floats from -5 to 5
    default:
      return Math.floor(r() * 9) - 4; // small integers: many ties
  }
}

function value(r: () => number, depth = 0): unknown {
  const p = r();
  if (p < 0.6) return scalar(r);
  if (p < 0.8) return Array.from({ length: Math.floor(r() * 4) }, () => (r() < 0.1 ? [scalar(r)] : scalar(r)));
  if (p < 0.9 && depth < 2) return { x: value(r, depth + 1), y: value(r, depth + 1) };
  return r() < 0.5 ? Math.floor(r() * 3) : 'y';
}

function metadata(r: () => number): Metadata | undefined {
  if (r() < 0.05) return undefined;
  const m: Metadata = {};
  for (const f of ['a', 'b', 'k', 'f', 'u']) if (r() < 0.8) m[f] = value(r);
  if (r() < 0.7) m['n'] = r() < 0.8 ? { x: value(r), y: value(r) } : value(r);
  return m;
}

function leaf(r: () => number): unknown {
  const field = FIELDS[Math.floor(r() * FIELDS.length)] as string;
  const v = (): unknown => {
    const s = scalar(r);
    return s;
  };
  const cmp = (): number | string => (r() < 0.85 ? (Math.floor(r() * 9) - 4) + (r() < 0.3 ? 0.5 : 0) : (['x', 'y', 'z'][Math.floor(r() * 3)] as string));
  switch (Math.floor(r() * 9)) {
    case 0:
      return { [field]: v() };
    case 1:
      return { [field]: { $ne: v() } };
    case 2:
      return { [field]: { $gt: cmp() } };
    case 3:
      return { [field]: { $gte: cmp() } };
    case 4:
      return { [field]: { $lt: cmp() } };
    case 5:
      return { [field]: { $lte: cmp(), $gte: cmp() } };
    case 6:
      return { [field]: { $in: Array.from({ length: 1 + Math.floor(r() * 3) }, v) } };
    case 7:
      return { [field]: { $nin: Array.from({ length: 1 + Math.floor(r() * 3) }, v) } };
    default:
      return { [field]: { $exists: r() < 0.5 } };
  }
}

function filter(r: () => number, depth = 0): unknown {
  const p = r();
  if (depth >= 3 || p < 0.45) return leaf(r);
  const n = 1 + Math.floor(r() * 3);
  if (p < 0.75) return { $and: Array.from({ length: n }, () => filter(r, depth + 1)) };
  if (p < 0.9) return { $or: Array.from({ length: n }, () => filter(r, depth + 1)) };
  return { $not: filter(r, depth + 1) };
}

function truth(t: PointTable, f: Filter): number[] {
  const out: number[] = [];
  for (let l = 0; l < t.labelSpan; l++) if (t.isVisible(l) && matches(f, t.metadataOf(l))) out.push(l);
  return out;
}

function check(t: PointTable, raw: unknown, why: string): { exact: boolean } {
  const f = parseFilter(raw);
  const want = truth(t, f);
  const got = [...t.select(f)].sort((x, y) => x - y);
  assert.deepEqual(got, want, `${why}: select(${JSON.stringify(raw)})`);
  const e = t.estimate(f);
  assert.ok(e.matches >= want.length, `${why}: estimate ${e.matches} of ${JSON.stringify(raw)} is below the ${want.length} matches`);
  if (e.exact) assert.equal(e.matches, want.length, `${why}: estimate of ${JSON.stringify(raw)} says exact`);
  return e;
}

describe('field indexes', () => {
  it('field indexes - select and estimate agree with a scan on random metadata and filters, through writes, hides and a reload', () => {
    const r = rng(20261202);
    let t = new PointTable(2, 16, DECLARED);
    const ids = Array.from({ length: 300 }, (_, i) => `p${i}`);
    let checks = 0;
    let exact = 0;
    for (let round = 0; round < 60; round++) {
      for (let op = 0; op < 80; op++) {
        const id = ids[Math.floor(r() * ids.length)] as string;
        const p = r();
        if (p < 0.65) t.upsert({ id, vector: new Float32Array([r(), r()]), metadata: metadata(r) });
        else if (p < 0.8) t.remove(id);
        else if (p < 0.9) t.setHidden([id], true);
        else t.setHidden([id], false);
      }
      // Half the rounds with nothing hidden: where the counts can be exact.
      if (round % 2 === 0) t.setHidden(ids, false);
      if (round % 10 === 9) t = PointTable.fromState(t.toState(), DECLARED);
      for (let q = 0; q < 40; q++) {
        const e = check(t, filter(r), `round ${round}`);
        checks++;
        if (e.exact) exact++;
      }
    }
    // The test bites only if the indexes answer a good share of the filters exactly.
    assert.ok(exact > checks / 5, `only ${exact} of ${checks} estimates were exact`);
  });

  it('field indexes - an empty key does not make its children top-level fields', () => {
    const t = new PointTable(1, 16);
    t.upsert({ id: 'a', vector: new Float32Array([1]), metadata: { '': { color: 'red' } } });
    t.upsert({ id: 'b', vector: new Float32Array([1]), metadata: { color: 'blue' } });
    check(t, { color: 'red' }, 'empty key');
    assert.deepEqual(t.estimate(parseFilter({ color: 'red' })), { matches: 0, exact: true });
  });

  it('field indexes - ranges on a declared numeric field are counted exactly, and an $and by its smallest part', () => {
    const t = new PointTable(1, 16, { year: 'integer', lang: 'keyword' });
    for (let i = 0; i < 1000; i++) t.upsert({ id: `p${i}`, vector: new Float32Array([1]), metadata: { year: 2000 + (i % 50), lang: i % 100 === 0 ? 'fr' : 'en' } });
    assert.deepEqual(t.estimate(parseFilter({ year: { $gte: 2040 } })), { matches: 200, exact: true });
    assert.deepEqual(t.estimate(parseFilter({ year: { $gt: 2040, $lt: 2045 } })), { matches: 80, exact: true });
    assert.deepEqual(t.estimate(parseFilter({ lang: 'fr', year: { $lt: 2010 } })), { matches: 10, exact: true });
    assert.deepEqual(t.estimate(parseFilter({ lang: { $ne: 'fr' } })), { matches: 990, exact: true });
    // a string range on a numeric field is not indexed: the bound is every point
    assert.deepEqual(t.estimate(parseFilter({ year: { $gt: 'a' } })), { matches: 1000, exact: false });
    t.setHidden(['p0'], true);
    assert.equal(t.estimate(parseFilter({ lang: 'fr' })).exact, false, 'with a hidden point the postings are an upper bound');
    assert.deepEqual(t.estimate(parseFilter({ lang: 'fr', year: { $lt: 2010 } })), { matches: 9, exact: true }, 'a small $and is counted point by point');
  });

  it('field indexes - bounds on one single-valued numeric field are one interval: counted exactly and listed without reading the half-lines', () => {
    const r = rng(7);
    const t = new PointTable(1, 16, { n: 'integer', f: 'float', tag: 'keyword' });
    for (let i = 0; i < 20_000; i++) t.upsert({ id: `p${i}`, vector: new Float32Array([1]), metadata: { n: Math.floor(r() * 1000), f: r() * 10 - 5, tag: i % 3 === 0 ? 'a' : 'b' } });
    // both half-lines of each range hold over 4,096 points: only the interval counts them exactly
    const cases: unknown[] = [
      { n: { $gte: 500, $lt: 510 } },
      { n: { $gt: 400, $lte: 410 } },
      { n: { $gte: 500, $lte: 500 } },
      { n: { $gt: 500, $lt: 500 } },
      { n: { $gte: 600, $lt: 100 } },
      { $and: [{ n: { $gte: 400 } }, { n: { $gt: 450 } }, { n: { $lt: 700 } }, { n: { $lte: 650 } }] },
      { f: { $gt: -0.5, $lt: 0.25 } },
      { n: { $gte: 500, $lt: 600 }, tag: 'a' },
      { n: { $gte: 300, $lt: 320 }, f: { $gte: 0 } },
      { n: { $gte: 300, $lt: 350, $ne: 320 } },
    ];
    for (const raw of cases) {
      const e = check(t, raw, 'interval');
      assert.ok(e.exact, `${JSON.stringify(raw)} is counted exactly`);
    }
    // an array in the field: each bound may hold for another element, so no interval (still correct)
    t.upsert({ id: 'arr', vector: new Float32Array([1]), metadata: { n: [50, 700] } });
    check(t, { n: { $gte: 500, $lt: 510 } }, 'with an array');
    assert.deepEqual(t.select(parseFilter({ n: { $gt: 40, $lt: 60 } })).includes(t.labelOf('arr') as number), true, 'an element in range');
  });

  it('field indexes - sorted numbers keep order through many inserts and removes', () => {
    const r = rng(7);
    const s = new SortedNumbers();
    const pairs = new Map<string, [number, number]>();
    for (let i = 0; i < 20_000; i++) {
      const v = Math.floor(r() * 500) - 250;
      const l = Math.floor(r() * 3000);
      const key = `${v}/${l}`;
      if (pairs.has(key)) {
        assert.ok(s.remove(v, l));
        pairs.delete(key);
      } else {
        s.add(v, l);
        pairs.set(key, [v, l]);
      }
    }
    assert.equal(s.entries, pairs.size);
    assert.equal(s.remove(10_000, 1), false);
    for (const [op, x] of [['gt', 3], ['gte', -250], ['lt', 0], ['lte', 249], ['gt', 249], ['lt', -250]] as const) {
      const want = [...pairs.values()].filter(([v]) => (op === 'gt' ? v > x : op === 'gte' ? v >= x : op === 'lt' ? v < x : v <= x)).length;
      assert.equal(s.count(op, x), want, `${op} ${x}`);
      let n = 0;
      let last = -Infinity;
      s.forEach(op, x, () => n++);
      assert.equal(n, want);
      void last;
      last = 0;
    }
  });
});
