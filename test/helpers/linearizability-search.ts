/**
 * The search of one key's history, for linearizability.ts: Wing & Gong's (1993), with Lowe's
 * (2017) cache of (set of operations linearized, register state), as Porcupine's checkSingle.
 */
import { rng } from './shard-workload.js';
import type { KeyOp, Verdict } from './linearizability.js';

/** The deepest point the search reached: the operations linearized, in order, and the state. */
export interface Deepest {
  order: number[];
  state: number;
}

export interface SearchOutcome {
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
export function searchKey(ops: KeyOp[], initial: number, budget: number): SearchOutcome {
  const n = ops.length;
  const { head, calls } = buildEntries(ops);
  const words = Math.ceil(n / 32);
  const bits = new Uint32Array(words);
  // Zobrist hashing of the linearized set, kept up to date in O(1) per step.
  const unit = rng(0x9e3779b9 ^ n);
  const rand = () => Math.floor(unit() * 2 ** 32);
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
  // The deepest stack is copied only when the search backs out of it, not at every new depth.
  let deeper = false;
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
            deeper = true;
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
    if (deeper) {
      deeper = false;
      best.order = stack.flatMap((s) => (s.glued ? [s.glued.op, s.entry.op] : [s.entry.op]));
      best.state = state;
    }
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

