import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkHistory, History, type CheckResult, type Operation } from '../helpers/linearizability.js';
import { rng } from '../helpers/shard-workload.js';

const w = (key: string, value: string, invoke: number, complete: number | undefined): Operation => ({ key, kind: 'write', value, invoke, complete });
const r = (key: string, value: string | null, invoke: number, complete: number | undefined): Operation => ({ key, kind: 'read', value, invoke, complete });
const del = (key: string, invoke: number, complete: number | undefined): Operation => ({ key, kind: 'delete', invoke, complete });

function accepts(history: Operation[], options?: Parameters<typeof checkHistory>[1]): CheckResult {
  const res = checkHistory(history, options);
  assert.equal(res.verdict, 'linearizable', res.why);
  assert.equal(res.ok, true);
  return res;
}

function rejects(history: Operation[], key: string, why?: RegExp, options?: Parameters<typeof checkHistory>[1]): CheckResult {
  const res = checkHistory(history, options);
  assert.equal(res.verdict, 'violation', `expected a violation on ${key}, got ${res.verdict}`);
  assert.equal(res.ok, false);
  assert.equal(res.key, key);
  if (why) assert.match(res.why ?? '', why);
  return res;
}

/**
 * A simulated atomic register store: each client runs its calls one after another, and each call
 * takes effect at one instant inside [invoke, complete], so the history is linearizable by
 * construction. A failed write takes effect at some instant after its invoke, or never.
 */
function simulate(o: { seed: number; ops: number; keys: number; clients: number; failRate?: number; deleteRate?: number }): Operation[] {
  const rand = rng(o.seed);
  const planned: { op: Operation; at: number; lands: boolean }[] = [];
  const perClient = Math.ceil(o.ops / o.clients);
  for (let c = 0; c < o.clients; c++) {
    let t = rand() * 5;
    for (let i = 0; i < perClient; i++) {
      const key = `k${Math.floor(rand() * o.keys)}`;
      const pick = rand();
      const kind = pick < 0.5 ? 'read' : pick < 0.5 + (o.deleteRate ?? 0.05) ? 'delete' : 'write';
      const at = t + rand() * 3;
      const complete = at + rand() * 3;
      const failed = rand() < (o.failRate ?? 0);
      const op: Operation = { key, kind, invoke: t, complete: failed ? undefined : complete };
      if (kind === 'write') op.value = `c${c}-${i}`;
      // A failed call's effect may land long after the client gave up on it, or not at all.
      planned.push({ op, at: failed ? t + rand() * 20 : at, lands: !failed || rand() < 0.5 });
      t = complete + rand() * 2;
    }
  }
  planned.sort((a, b) => a.at - b.at);
  const register = new Map<string, string | null>();
  for (const { op, lands } of planned) {
    if (op.kind === 'read') op.value = register.get(op.key) ?? null;
    else if (lands) register.set(op.key, op.kind === 'write' ? op.value! : null);
  }
  return planned.map((p) => p.op).sort((a, b) => a.invoke - b.invoke);
}

/**
 * Makes one completed read stale: it now returns the token of a completed write that another
 * completed write or delete certainly followed before the read began. Returns the key.
 */
function injectStaleRead(history: Operation[], seed: number): string | undefined {
  const rand = rng(seed);
  const reads = history.filter((o) => o.kind === 'read' && o.complete !== undefined);
  const start = Math.floor(rand() * reads.length);
  for (let i = 0; i < reads.length; i++) {
    const read = reads[(start + i) % reads.length]!;
    const done = history.filter((o) => o.key === read.key && o.kind !== 'read' && o.complete !== undefined && o.complete < read.invoke);
    for (const w1 of done) {
      if (w1.kind !== 'write' || w1.value === read.value) continue;
      if (done.some((x) => x.invoke > w1.complete! && x.value !== w1.value)) {
        read.value = w1.value;
        return read.key;
      }
    }
  }
  return undefined;
}

/**
 * An independent, obviously correct and exponential check of one key: tries every order in
 * which each operation goes after every operation that completed before it began. A failed
 * write or delete may also be left out.
 */
function bruteForce(history: Operation[]): boolean {
  const ops = history.filter((o) => !(o.kind === 'read' && o.complete === undefined));
  const placed = ops.map(() => false);
  const go = (state: string | null): boolean => {
    if (ops.every((o, i) => placed[i] || o.complete === undefined)) return true;
    for (const [i, o] of ops.entries()) {
      if (placed[i]) continue;
      // o may go next only if no operation left completed before it began
      if (ops.some((q, j) => !placed[j] && j !== i && q.complete !== undefined && q.complete < o.invoke)) continue;
      if (o.kind === 'read' && o.value !== state) continue;
      placed[i] = true;
      const ok = go(o.kind === 'read' ? state : o.kind === 'write' ? o.value! : null);
      placed[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return go(null);
}

/**
 * A small random history of one key, with no regard for linearizability: writes of a few
 * repeated values, or (`unique`) each write its own token and more of them failed.
 */
function randomSmall(rand: () => number, n: number, unique: boolean): Operation[] {
  const out: Operation[] = [];
  const values = unique ? Array.from({ length: n }, (_, i) => `t${i}`) : ['a', 'b', 'c'];
  for (let i = 0; i < n; i++) {
    const invoke = Math.floor(rand() * 20);
    const complete = rand() < (unique ? 0.3 : 0.15) ? undefined : invoke + Math.floor(rand() * 8);
    const pick = rand();
    if (pick < 0.45) out.push(r('k', null, invoke, complete));
    else if (pick < 0.55) out.push(del('k', invoke, complete));
    else out.push(w('k', unique ? values[i]! : values[Math.floor(rand() * 3)]!, invoke, complete));
  }
  const written = [null, ...out.filter((o) => o.kind === 'write').map((o) => o.value!)];
  for (const o of out) if (o.kind === 'read') o.value = written[Math.floor(rand() * written.length)]!;
  return out;
}

describe('linearizability checker', () => {
  it('linearizability - accepts sequential histories of writes, reads and deletes', () => {
    accepts([]);
    const res = accepts([
      r('a', null, 0, 1),
      w('a', 'v1', 2, 3),
      r('a', 'v1', 4, 5),
      w('a', 'v2', 6, 7),
      r('a', 'v2', 8, 9),
      del('a', 10, 11),
      r('a', null, 12, 13),
    ]);
    assert.equal(res.checkedOps, 7);
    assert.equal(res.keys, 1);
  });

  it('linearizability - a read concurrent with a write may see the old or the new value', () => {
    const before = [w('a', 'v1', 0, 10), w('a', 'v2', 20, 40)];
    accepts([...before, r('a', 'v1', 25, 35)]);
    accepts([...before, r('a', 'v2', 25, 35)]);
    // two concurrent writes may land in either order, as long as the reads agree on one
    accepts([w('a', 'x', 0, 10), w('a', 'y', 0, 10), r('a', 'x', 11, 12), r('a', 'x', 13, 14)]);
    accepts([w('a', 'x', 0, 10), w('a', 'y', 0, 10), r('a', 'y', 11, 12)]);
    // calls that touch at an instant count as concurrent
    accepts([w('a', 'v1', 0, 10), w('a', 'v2', 10, 20), r('a', 'v1', 20, 30)]);
  });

  it('linearizability - rejects a stale read: a read that began after w2 completed returns the older w1', () => {
    const res = rejects([w('a', 'w1', 0, 10), w('a', 'w2', 20, 30), r('a', 'w1', 40, 50)], 'a', /Stale read/);
    console.log(`stale read explained:\n${res.why}`);
    assert.match(res.why!, /read at \[40, 50\] saw "w1"/);
    assert.match(res.why!, /write "w2" at \[20, 30\]/);
    assert.match(res.why!, /\(30 < 40\)/);
    // a later read that saw w2 makes a read of w1 after it stale too
    rejects([w('a', 'w1', 0, 10), w('a', 'w2', 5, 100), r('a', 'w2', 20, 30), r('a', 'w1', 40, 50)], 'a', /Stale read/);
  });

  it('linearizability - rejects a read of a value never written, and a read of a value written only later', () => {
    rejects([w('a', 'v1', 0, 10), r('a', 'v9', 20, 30)], 'a', /no write on this key wrote/);
    rejects([r('a', 'v1', 0, 5), w('a', 'v1', 10, 20)], 'a', /from the future/);
    rejects([r('a', null, 0, 5)], 'a', /never deleted and started as "v0"/, { initial: { a: 'v0' } });
  });

  it('linearizability - rejects orders no single sequence explains, with no single stale read to blame', () => {
    // both writes span every read; the reads see v1, then v2, then v1 again
    const res = rejects([w('a', 'v1', 0, 100), w('a', 'v2', 0, 100), r('a', 'v1', 10, 20), r('a', 'v2', 30, 40), r('a', 'v1', 50, 60)], 'a');
    assert.doesNotMatch(res.why!, /Stale read/);
    assert.match(res.why!, /longest linearizable prefix found has \d+ operations/);
    assert.match(res.why!, /Next had to come read at \[50, 60\] saw "v1"/);
  });

  it('linearizability - a failed write may take effect any time after its invoke, or never', () => {
    // read after the failure: fine
    accepts([w('a', 'v1', 0, undefined), r('a', 'v1', 100, 110)]);
    // it may land even after later calls of the same client, and after other writes completed
    accepts([w('a', 'v1', 0, undefined), w('a', 'v2', 20, 30), r('a', 'v2', 40, 50), r('a', 'v1', 60, 70)]);
    // or never
    accepts([w('a', 'v1', 0, undefined), r('a', null, 100, 110), r('a', null, 200, 210)]);
    // but not before its invoke
    rejects([r('a', 'v1', 0, 5), w('a', 'v1', 10, undefined)], 'a', /from the future/);
    // and once seen, it stays until something else is written
    rejects([w('a', 'v1', 0, undefined), r('a', 'v1', 10, 20), r('a', null, 30, 40)], 'a', /Stale read/);
    accepts([w('a', 'v1', 0, undefined), r('a', 'v1', 10, 20), del('a', 25, undefined), r('a', null, 30, 40)]);
    // a failed read saw nothing and is dropped
    const res = accepts([w('a', 'v1', 0, 10), r('a', 'zzz', 20, undefined)]);
    assert.equal(res.checkedOps, 1);
  });

  it('linearizability - deletes make the key absent, and a read after a completed delete must not see the old value', () => {
    accepts([w('a', 'v1', 0, 10), del('a', 20, 30), r('a', null, 40, 50), w('a', 'v2', 60, 70), r('a', 'v2', 80, 90)]);
    accepts([w('a', 'v1', 0, 10), del('a', 20, 30), r('a', 'v1', 25, 35)]);
    rejects([w('a', 'v1', 0, 10), del('a', 20, 30), r('a', 'v1', 40, 50)], 'a', /Stale read.*followed by delete at \[20, 30\]/);
    rejects([w('a', 'v1', 0, 10), r('a', null, 20, 30)], 'a', /Stale read/);
  });

  it('linearizability - starts each key from its given initial value, absent otherwise', () => {
    accepts([r('a', 'v0', 0, 1), r('b', null, 0, 1)], { initial: new Map([['a', 'v0']]) });
    accepts([r('a', 'v0', 0, 1), w('a', 'v1', 2, 3), r('a', 'v1', 4, 5)], { initial: { a: 'v0' } });
    rejects([w('a', 'v1', 2, 3), r('a', 'v0', 4, 5)], 'a', /Stale read.*initial state/, { initial: { a: 'v0' } });
  });

  it('linearizability - keys are checked independently, and the violation names its key', () => {
    const history: Operation[] = [];
    for (let k = 0; k < 20; k++) {
      history.push(w(`k${k}`, `v${k}`, k, k + 10), r(`k${k}`, `v${k}`, k + 20, k + 30));
    }
    // a read of k3 interleaved with k7's writes in time says nothing about k7
    history.push(w('k7', 'late', 50, 60), r('k3', 'v3', 55, 65));
    const res = accepts(history);
    assert.equal(res.keys, 20);
    history.push(w('k12', 'w2', 100, 110), r('k12', 'v12', 120, 130));
    rejects(history, 'k12', /Stale read/);
  });

  it('linearizability - agrees with a brute-force search on small random histories, linearizable or not', () => {
    const rand = rng(17);
    const tally = { linearizable: 0, violation: 0 };
    for (let i = 0; i < 4_000; i++) {
      const history = randomSmall(rand, 2 + Math.floor(rand() * 6), i % 2 === 1);
      const expected = bruteForce(history);
      const res = checkHistory(history);
      assert.equal(res.ok, expected, `history ${i}: ${JSON.stringify(history)}\n${res.why ?? ''}`);
      tally[res.verdict === 'linearizable' ? 'linearizable' : 'violation']++;
    }
    assert.ok(tally.linearizable > 400 && tally.violation > 400, JSON.stringify(tally));
    console.log(`brute force agrees on 4,000 small histories: ${JSON.stringify(tally)}`);
  });

  it('linearizability - a key whose search runs out of budget is undecided, not ok and not a violation', () => {
    const history = simulate({ seed: 7, ops: 200, keys: 1, clients: 8 });
    const res = checkHistory(history, { maxVisitsPerKey: 5 });
    assert.equal(res.verdict, 'undecided');
    assert.equal(res.ok, false);
    assert.equal(res.key, 'k0');
    assert.match(res.why!, /gave up after 6 steps/);
    // a violation on another key wins over an undecided one
    history.push(w('z', 'w1', 0, 1), w('z', 'w2', 2, 3), r('z', 'w1', 4, 5));
    assert.equal(checkHistory(history, { maxVisitsPerKey: 5 }).verdict, 'violation');
  });

  it('linearizability - History records invokes and answers with its clock', () => {
    let now = 0;
    const h = new History(() => now);
    const a = h.invoke('a', 'write', 'c1-1');
    now = 5;
    const b = h.invoke('a', 'read');
    const c = h.invoke('a', 'write', 'c2-1');
    now = 10;
    h.ok(a);
    h.ok(b, 'c1-1');
    h.fail(c);
    const d = h.invoke('a', 'delete');
    now = 12;
    h.ok(d);
    h.invoke('a', 'write', 'c3-1'); // never finished: counts as failed
    assert.deepEqual(h.operations, [
      { key: 'a', kind: 'write', value: 'c1-1', invoke: 0, complete: 10 },
      { key: 'a', kind: 'read', value: 'c1-1', invoke: 5, complete: 10 },
      { key: 'a', kind: 'write', value: 'c2-1', invoke: 5, complete: undefined },
      { key: 'a', kind: 'delete', invoke: 10, complete: 12 },
      { key: 'a', kind: 'write', value: 'c3-1', invoke: 12, complete: undefined },
    ]);
    assert.equal(h.check().verdict, 'linearizable');
    assert.throws(() => h.ok(a), /finished twice/);
    assert.throws(() => h.ok(h.invoke('a', 'read')), /a read needs the value it saw/);
    assert.throws(() => h.invoke('a', 'write'), /a write needs its token/);
    // the default clock is performance.now()
    const real = new History();
    const e = real.invoke('x', 'read');
    real.ok(e, null);
    assert.ok(real.operations[0]!.complete! >= real.operations[0]!.invoke);
  });

  it('linearizability - random histories of an atomic register are accepted, and one injected stale read is rejected', () => {
    let visits = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const history = simulate({ seed, ops: 300, keys: 1 + (seed % 4), clients: 2 + (seed % 7), failRate: seed % 3 === 0 ? 0.1 : 0 });
      const res = checkHistory(history);
      assert.equal(res.verdict, 'linearizable', `seed ${seed}: ${res.why}`);
      visits += res.visits;
      const key = injectStaleRead(history, seed);
      assert.ok(key !== undefined, `seed ${seed}: no read to make stale`);
      const bad = checkHistory(history);
      assert.equal(bad.verdict, 'violation', `seed ${seed}: the stale read on ${key} was not caught`);
      assert.equal(bad.key, key);
      assert.match(bad.why!, /Stale read/);
    }
    console.log(`random histories: 40 seeds, ${visits} search steps for the linearizable ones`);
  });

  it('linearizability - 5,000 operations over 50 keys with 8 clients check in well under a second', () => {
    const history = simulate({ seed: 42, ops: 5_000, keys: 50, clients: 8, failRate: 0.02 });
    const res = accepts(history);
    console.log(`5,000 ops / 50 keys / 8 clients: ${res.timeMs.toFixed(1)} ms, ${res.visits} steps`);
    const hot = simulate({ seed: 43, ops: 2_000, keys: 1, clients: 8, failRate: 0.05 });
    const hotRes = accepts(hot);
    console.log(`2,000 ops / 1 key / 8 clients, 5% failed: ${hotRes.timeMs.toFixed(1)} ms, ${hotRes.visits} steps`);
    injectStaleRead(history, 42);
    const bad = checkHistory(history);
    assert.equal(bad.verdict, 'violation');
    console.log(`the same with one stale read: ${bad.timeMs.toFixed(1)} ms, ${bad.visits} steps`);
  });
});
