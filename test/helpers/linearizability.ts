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
import { searchKey } from './linearizability-search.js';

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
