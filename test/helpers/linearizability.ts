/**
 * A linearizability checker for histories of operations on independent keys, each key a
 * register (absent, or holding one token), and a recorder that builds such histories.
 *
 * Linearizability is local (Herlihy & Wing, P-compositionality): a history is linearizable iff
 * each key's sub-history is, so the history is split by key and each key is checked alone. The
 * search per key is Wing & Gong's (1993), with Lowe's (2017) cache of (set of operations
 * linearized, register state) so that no configuration is explored twice, as Porcupine does.
 *
 * A write or delete whose call failed or timed out (`complete: undefined`) may have taken effect
 * at any time after its invoke, or never: it has no return event, so nothing forces it into the
 * order, and the history is linearizable once every completed operation is placed. A failed
 * read observed nothing and is dropped.
 *
 * The search is exponential in the worst case: each key has a budget of search steps, and a key
 * that runs out of it is reported `undecided` (neither linearizable nor a violation), so that a
 * test fails saying so rather than hang.
 */
import { performance } from 'node:perf_hooks';
import { describeOp, explainViolation } from './linearizability-explain.js';

export type OpKind = 'write' | 'read' | 'delete';

/** One call on one key, with the real-time interval in which it ran. */
export interface Operation {
  key: string;
  kind: OpKind;
  /**
   * write: the token written, unique to this write (e.g. writer id + sequence number, stored in
   * the point's metadata); read: the token observed, `null` when the key was absent; delete:
   * unused.
   */
  value?: string | null;
  /** When the call was made (ms, or any monotonic unit shared by the whole history). */
  invoke: number;
  /**
   * When the answer came back; `undefined` when the call failed or timed out, so that its effect
   * is unknown: it may take effect at any time after `invoke`, or never.
   */
  complete: number | undefined;
}

export type Verdict = 'linearizable' | 'violation' | 'undecided';

export interface CheckResult {
  /** True only when every key is linearizable. */
  ok: boolean;
  /** `undecided`: some key ran out of its search budget, and no key was found to be a violation. */
  verdict: Verdict;
  /** The key that is not linearizable (or, when undecided, the first key that ran out of budget). */
  key?: string;
  /** Why, for a person reading a failed test: the operations around the failure. */
  why?: string;
  /** Operations checked (failed reads are dropped and not counted). */
  checkedOps: number;
  keys: number;
  /** Search steps taken over all keys. */
  visits: number;
  timeMs: number;
}

export interface CheckOptions {
  /** A key's state before the history; absent (`null`) when not given. */
  initial?: ReadonlyMap<string, string | null> | Readonly<Record<string, string | null>>;
  /** Search steps allowed per key before it is reported undecided. */
  maxVisitsPerKey?: number;
}

export const DEFAULT_MAX_VISITS_PER_KEY = 2_000_000;

/** An operation of one key, as the search sees it; states are interned: 0 is absent. */
export interface KeyOp {
  op: Operation;
  invoke: number;
  /** `Infinity` for a call whose effect is unknown. */
  complete: number;
  /** write: the state it leaves; delete: 0; read: the state it observed. */
  state: number;
  /**
   * A failed write of a token no other operation leaves (the only way to reach its state): the
   * search places it only just before a read of its token (see prepare).
   */
  lazy: boolean;
  /** A read of a lazy write's token: that write's index, else -1. */
  glue: number;
}

/** The states of one key, interned: `names[s]` is the token of state `s`, `names[0]` is null. */
export interface KeyStates {
  names: (string | null)[];
  initial: number;
}

export function checkHistory(history: readonly Operation[], options: CheckOptions = {}): CheckResult {
  const start = performance.now();
  const budget = options.maxVisitsPerKey ?? DEFAULT_MAX_VISITS_PER_KEY;
  const byKey = new Map<string, Operation[]>();
  let checkedOps = 0;
  for (const op of history) {
    validate(op);
    if (op.kind === 'read' && op.complete === undefined) continue;
    checkedOps++;
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  }
  let visits = 0;
  let undecided: { key: string; why: string } | undefined;
  for (const key of [...byKey.keys()].sort()) {
    const { ops, states } = prepare(byKey.get(key)!, initialOf(options.initial, key));
    const r = searchKey(ops, states.initial, budget);
    visits += r.visits;
    if (r.outcome === 'linearizable') continue;
    if (r.outcome === 'undecided') {
      undecided ??= {
        key,
        why: `key ${JSON.stringify(key)}: undecided, the search gave up after ${r.visits} steps (maxVisitsPerKey) ` +
          `on ${ops.length} operations; raise the budget or record fewer concurrent or failed calls per key`,
      };
      continue;
    }
    const why = explainViolation(key, ops, states, r.best);
    return { ok: false, verdict: 'violation', key, why, checkedOps, keys: byKey.size, visits, timeMs: performance.now() - start };
  }
  const timeMs = performance.now() - start;
  if (undecided) return { ok: false, verdict: 'undecided', ...undecided, checkedOps, keys: byKey.size, visits, timeMs };
  return { ok: true, verdict: 'linearizable', checkedOps, keys: byKey.size, visits, timeMs };
}

function validate(op: Operation): void {
  const bad = (why: string) => new Error(`linearizability: ${why}: ${JSON.stringify(op)}`);
  if (!Number.isFinite(op.invoke)) throw bad('invoke must be a finite number');
  if (op.complete !== undefined && !(op.complete >= op.invoke)) throw bad('complete must be a number not before invoke');
  if (op.kind === 'write' && typeof op.value !== 'string') throw bad('a write needs a string token');
  if (op.kind === 'read' && op.complete !== undefined && op.value === undefined) throw bad('a completed read needs the value it saw (null when absent)');
}

function initialOf(initial: CheckOptions['initial'], key: string): string | null {
  if (initial === undefined) return null;
  if (initial instanceof Map) return initial.get(key) ?? null;
  return (initial as Readonly<Record<string, string | null>>)[key] ?? null;
}

/**
 * Interns the key's states and drops the failed writes and deletes that no read could have
 * seen: such a call's only effect is a state no read observed, so leaving it out of any
 * linearization leaves a linearization, and keeping it would only widen the search.
 *
 * A failed write W of a token that nothing else leaves (not the initial state, no other write)
 * is lazy: if a linearization places W, the next operation is a read of the token (anything else
 * would make W's effect unseen, and W can be left out) and moving W later, up to that read, keeps
 * it a linearization, since no operation must follow W. So the search tries W only together with
 * such a read; tried on its own at every step, each failed write would double the search.
 */
function prepare(list: Operation[], initial: string | null): { ops: KeyOp[]; states: KeyStates } {
  const names: (string | null)[] = [null];
  const ids = new Map<string, number>();
  const intern = (v: string | null | undefined): number => {
    if (v === null || v === undefined) return 0;
    let s = ids.get(v);
    if (s === undefined) {
      s = names.length;
      names.push(v);
      ids.set(v, s);
    }
    return s;
  };
  const initialState = intern(initial);
  const seen = new Set<number>();
  for (const op of list) if (op.kind === 'read') seen.add(intern(op.value));
  const ops: KeyOp[] = [];
  const writers = new Map<number, number[]>();
  for (const op of list) {
    const state = op.kind === 'delete' ? 0 : intern(op.value);
    if (op.complete === undefined && !seen.has(state)) continue;
    if (op.kind === 'write') writers.set(state, [...(writers.get(state) ?? []), ops.length]);
    ops.push({ op, invoke: op.invoke, complete: op.complete ?? Infinity, state, lazy: false, glue: -1 });
  }
  const lazyOf = new Map<number, number>();
  for (const [state, ws] of writers) {
    const w = ws[0]!;
    if (ws.length === 1 && state !== initialState && ops[w]!.complete === Infinity) {
      ops[w]!.lazy = true;
      lazyOf.set(state, w);
    }
  }
  for (const o of ops) if (o.op.kind === 'read') o.glue = lazyOf.get(o.state) ?? -1;
  return { ops, states: { names, initial: initialState } };
}

/** The deepest point the search reached: the operations linearized, in order, and the state. */
export interface Deepest {
  order: number[];
  state: number;
}

interface SearchOutcome {
  outcome: Verdict;
  visits: number;
  best: Deepest;
}

interface Entry {
  op: number;
  time: number;
  call: boolean;
  /** A call's return entry; null for a return, and for a call whose effect is unknown. */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

interface Cached {
  bits: Uint32Array;
  state: number;
}

/**
 * Wing & Gong's search with Lowe's cache (Porcupine's checkSingle). The entries are the calls
 * and returns in time order, in a linked list; the search walks it from the head, linearizing a
 * call when the register allows it and the resulting (set, state) is new, and backtracking when
 * it meets a return whose call is not linearized yet (that operation had to come earlier).
 */
function searchKey(ops: KeyOp[], initial: number, budget: number): SearchOutcome {
  const n = ops.length;
  const { head, calls } = buildEntries(ops);
  const words = Math.ceil(n / 32);
  const bits = new Uint32Array(words);
  // Zobrist hashing of the linearized set, kept up to date in O(1) per step.
  const rand = xorshift(0x9e3779b9 ^ n);
  const z1 = Uint32Array.from({ length: n }, () => rand());
  const z2 = Uint32Array.from({ length: n }, () => rand());
  let h1 = 0;
  let h2 = 0;
  const cache = new Map<number, Cached[]>();
  /** A linearized call, with the lazy write placed just before it, if any. */
  const stack: { entry: Entry; glued: Entry | null; state: number }[] = [];
  let state = initial;
  let pending = ops.filter((o) => o.complete !== Infinity).length;
  let visits = 0;
  const best: Deepest = { order: [], state };
  let bestDone = 0;
  let done = 0;

  let entry = head.next;
  while (pending > 0) {
    if (entry !== null && entry.call) {
      if (++visits > budget) return { outcome: 'undecided', visits, best };
      const o = ops[entry.op]!;
      if (o.lazy) {
        entry = entry.next;
        continue;
      }
      let next = o.op.kind === 'read' ? (o.state === state ? state : -1) : o.state;
      let glued: Entry | null = null;
      if (next < 0 && o.glue >= 0 && !has(bits, o.glue) && callableNow(ops[o.glue]!.invoke, entry)) {
        glued = calls[o.glue]!;
        next = o.state;
      }
      if (next >= 0) {
        flip(bits, entry.op);
        let k1 = h1 ^ z1[entry.op]!;
        let k2 = h2 ^ z2[entry.op]!;
        if (glued) {
          flip(bits, glued.op);
          k1 ^= z1[glued.op]!;
          k2 ^= z2[glued.op]!;
        }
        if (remember(cache, bits, next, k1, k2)) {
          h1 = k1;
          h2 = k2;
          stack.push({ entry, glued, state });
          state = next;
          if (glued) lift(glued);
          lift(entry);
          if (o.complete !== Infinity) pending--;
          done += glued ? 2 : 1;
          if (done > bestDone) {
            bestDone = done;
            best.order = stack.flatMap((s) => (s.glued ? [s.glued.op, s.entry.op] : [s.entry.op]));
            best.state = state;
          }
          entry = head.next;
          continue;
        }
        flip(bits, entry.op);
        if (glued) flip(bits, glued.op);
      }
      entry = entry.next;
      continue;
    }
    // A return (or the end of the list): its operation had to be linearized before here.
    const top = stack.pop();
    if (top === undefined) return { outcome: 'violation', visits, best };
    state = top.state;
    for (const e of top.glued ? [top.entry, top.glued] : [top.entry]) {
      flip(bits, e.op);
      h1 ^= z1[e.op]!;
      h2 ^= z2[e.op]!;
      if (ops[e.op]!.complete !== Infinity) pending++;
      done--;
      unlift(e);
    }
    entry = top.entry.next;
  }
  return { outcome: 'linearizable', visits, best };
}

function has(bits: Uint32Array, i: number): boolean {
  return (bits[i >>> 5]! & (1 << (i & 31))) !== 0;
}

function flip(bits: Uint32Array, i: number): void {
  bits[i >>> 5]! ^= 1 << (i & 31);
}

/**
 * Whether a call invoked at `invoke` may be linearized now, the search being at `from`: its call
 * entry comes before the list's first return entry, which lies at or after `from`.
 */
function callableNow(invoke: number, from: Entry): boolean {
  let e: Entry | null = from;
  while (e !== null && e.call) e = e.next;
  return e === null || invoke <= e.time;
}

/** Adds (bits, state) to the cache; false when it was there already. */
function remember(cache: Map<number, Cached[]>, bits: Uint32Array, state: number, h1: number, h2: number): boolean {
  const hash = ((h1 ^ Math.imul(state, 0x9e3779b1)) >>> 0) * 2 ** 21 + (h2 >>> 11);
  const bucket = cache.get(hash);
  if (bucket === undefined) {
    cache.set(hash, [{ bits: bits.slice(), state }]);
    return true;
  }
  for (const c of bucket) if (c.state === state && sameBits(c.bits, bits)) return false;
  bucket.push({ bits: bits.slice(), state });
  return true;
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The list of call and return entries in time order, after a head sentinel. At equal times a
 * call goes before a return, so that operations that touch at an instant count as concurrent:
 * the checker never reports a violation that rests on a tie.
 */
function buildEntries(ops: KeyOp[]): { head: Entry; calls: Entry[] } {
  const events: Entry[] = [];
  const calls = ops.map((o, i) => {
    const call: Entry = { op: i, time: o.invoke, call: true, match: null, prev: null, next: null };
    events.push(call);
    if (o.complete !== Infinity) {
      call.match = { op: i, time: o.complete, call: false, match: null, prev: null, next: null };
      events.push(call.match);
    }
    return call;
  });
  events.sort((a, b) => a.time - b.time || Number(b.call) - Number(a.call) || a.op - b.op);
  const head: Entry = { op: -1, time: -Infinity, call: false, match: null, prev: null, next: null };
  let last = head;
  for (const entry of events) {
    last.next = entry;
    entry.prev = last;
    last = entry;
  }
  return { head, calls };
}

function lift(call: Entry): void {
  call.prev!.next = call.next;
  if (call.next) call.next.prev = call.prev;
  const ret = call.match;
  if (ret) {
    ret.prev!.next = ret.next;
    if (ret.next) ret.next.prev = ret.prev;
  }
}

/** Undoes lift(call); entries are put back in the reverse order of their removal. */
function unlift(call: Entry): void {
  const ret = call.match;
  if (ret) {
    ret.prev!.next = ret;
    if (ret.next) ret.next.prev = ret;
  }
  call.prev!.next = call;
  if (call.next) call.next.prev = call;
}

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** A handle on a call recorded by History.invoke. */
export type OpRef = number & { readonly __opRef: unique symbol };

/**
 * Records a history as a test runs: `const op = h.invoke(key, 'write', token)` before the call,
 * then `h.ok(op)` (a read: `h.ok(op, observed)`) when it answers, or `h.fail(op)` when it fails
 * or times out. A call never finished counts as failed.
 */
export class History {
  readonly #ops: Operation[] = [];
  readonly #finished: boolean[] = [];
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  invoke(key: string, kind: OpKind, value?: string): OpRef {
    if (kind === 'write' && typeof value !== 'string') throw new Error('History.invoke: a write needs its token');
    if (kind !== 'write' && value !== undefined) throw new Error(`History.invoke: a ${kind} takes no value`);
    const op: Operation = { key, kind, invoke: this.#now(), complete: undefined };
    if (value !== undefined) op.value = value;
    this.#ops.push(op);
    this.#finished.push(false);
    return (this.#ops.length - 1) as OpRef;
  }

  /** The call answered; a read passes the token it saw, or null when the key was absent. */
  ok(ref: OpRef, observed?: string | null): void {
    const op = this.#finish(ref);
    if (op.kind === 'read') {
      if (observed === undefined) throw new Error('History.ok: a read needs the value it saw (null when absent)');
      op.value = observed;
    } else if (observed !== undefined) {
      throw new Error(`History.ok: a ${op.kind} observes nothing`);
    }
    op.complete = this.#now();
  }

  /** The call failed or timed out: its effect, if any, is unknown. */
  fail(ref: OpRef): void {
    this.#finish(ref);
  }

  #finish(ref: OpRef): Operation {
    const op = this.#ops[ref];
    if (op === undefined) throw new Error(`History: no operation ${ref}`);
    if (this.#finished[ref]) throw new Error(`History: ${describeOp(op)} finished twice`);
    this.#finished[ref] = true;
    return op;
  }

  get operations(): readonly Operation[] {
    return this.#ops.map((o) => ({ ...o }));
  }

  check(options?: CheckOptions): CheckResult {
    return checkHistory(this.#ops, options);
  }
}
