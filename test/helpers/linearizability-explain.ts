/**
 * Explanations of a key that is not linearizable, for the person reading a failed test. First a
 * direct proof when one of the usual anomalies is there (a read of a value never written, a read
 * of a value written only later, a stale read); then where the search got stuck: the longest
 * linearizable prefix it found and the operations it could not place after it.
 */
import type { KeyOp, KeyStates, Operation } from './linearizability.js';
import type { Deepest } from './linearizability-search.js';

const MAX_LISTED = 6;

export function explainViolation(key: string, ops: KeyOp[], states: KeyStates, best: Deepest): string {
  const lines = [`key ${JSON.stringify(key)} is not linearizable (${ops.length} operations).`];
  const direct = directProof(ops, states);
  if (direct) lines.push(direct);
  lines.push(stuck(ops, states, best));
  return lines.join('\n');
}

/** A time as given, to at most three decimals. */
export function fmt(t: number): string {
  return Number.isFinite(t) ? String(Number(t.toFixed(3))) : '?';
}

function token(v: string | null | undefined): string {
  return v === null || v === undefined ? 'absent' : JSON.stringify(v);
}

export function describeOp(op: Operation): string {
  const at = `[${fmt(op.invoke)}, ${op.complete === undefined ? '? (failed: effect unknown)' : fmt(op.complete)}]`;
  switch (op.kind) {
    case 'write':
      return `write ${token(op.value)} at ${at}`;
    case 'delete':
      return `delete at ${at}`;
    case 'read':
      return `read at ${at} saw ${token(op.value)}`;
    default: {
      const never: never = op.kind;
      return never;
    }
  }
}

/**
 * Looks, read by read in invoke order, for one that is a violation on its own. A read saw state
 * u; the producers of u are the writes of u (deletes when u is absent, and the initial state when
 * it is u). The read is stale when some operation X whose effect is not u (a write or delete of
 * another state, or a read that saw another) began after every producer completed and completed
 * before the read began: whichever producer came last, X put the key in another state after it and
 * before the read, and nothing could put u back. Comparisons are strict: ties are concurrent.
 */
function directProof(ops: KeyOp[], states: KeyStates): string | undefined {
  const initial = { invoke: -Infinity, complete: -Infinity };
  const reads = ops.filter((o) => o.op.kind === 'read').sort((a, b) => a.invoke - b.invoke);
  for (const r of reads) {
    const u = r.state;
    const producers: { invoke: number; complete: number; o?: KeyOp }[] = ops
      .filter((o) => o.op.kind !== 'read' && o.state === u)
      .map((o) => ({ invoke: o.invoke, complete: o.complete, o }));
    if (u === states.initial) producers.push(initial);
    const saw = describeOp(r.op);
    if (producers.length === 0) {
      return u === 0
        ? `The ${saw}, but the key was never deleted and started as ${token(states.names[states.initial])}.`
        : `The ${saw}, a value no write on this key wrote.`;
    }
    if (producers.every((p) => p.invoke > r.complete)) {
      const first = producers.reduce((a, b) => (b.invoke < a.invoke ? b : a));
      return `The ${saw}, from the future: ${describeOp(first.o!.op)} began only after the read completed (${fmt(first.invoke)} > ${fmt(r.complete)}).`;
    }
    let x: KeyOp | undefined;
    for (const o of ops) {
      if (o.complete >= r.invoke || o.state === u) continue;
      if (x === undefined || o.invoke > x.invoke) x = o;
    }
    if (x === undefined) continue;
    const last = producers.reduce((a, b) => (b.complete > a.complete ? b : a));
    if (x.invoke <= last.complete) continue;
    const many = producers.length > 1 ? ` (the last to complete of the ${producers.length} operations that leave that state)` : '';
    const after = last.o ? `${describeOp(last.o.op)}${many} was followed by` : 'the key had left its initial state by';
    const began = last.o ? `began after it (${fmt(x.invoke)} > ${fmt(last.complete)}) and ` : '';
    return (
      `Stale read: the ${saw}, but ${after} ${describeOp(x.op)}, which ${began}` +
      `completed before the read began (${fmt(x.complete)} < ${fmt(r.invoke)}).`
    );
  }
  return undefined;
}

/** Where the search got stuck: after the deepest prefix, the operation it could not place. */
function stuck(ops: KeyOp[], states: KeyStates, best: Deepest): string {
  const placed = new Set(best.order);
  const held = token(states.names[best.state]);
  const tail = best.order.slice(-MAX_LISTED).map((i) => describeOp(ops[i]!.op));
  const prefix =
    best.order.length === 0
      ? `No operation can go first (the key starts ${token(states.names[states.initial])}).`
      : `The longest linearizable prefix found has ${best.order.length} operation${best.order.length === 1 ? '' : 's'}, ending: ${tail.join('; ')}; after it the key held ${held}.`;
  let blocker: KeyOp | undefined;
  for (const [i, o] of ops.entries()) {
    if (placed.has(i) || o.complete === Infinity) continue;
    if (blocker === undefined || o.complete < blocker.complete) blocker = o;
  }
  if (blocker === undefined) return prefix;
  const b = blocker;
  const rivals = ops.filter((o, i) => !placed.has(i) && o !== b && o.invoke <= b.complete).sort((x, y) => x.invoke - y.invoke);
  const mismatch = b.op.kind === 'read' && b.state !== best.state ? ` (it saw ${token(states.names[b.state])}, the key held ${held})` : '';
  const others =
    rivals.length === 0
      ? 'and no other operation could go before it.'
      : `nor could any of the ${rivals.length} operations that began before it completed lead to it: ` +
        rivals.slice(0, MAX_LISTED).map((o) => describeOp(o.op)).join('; ') +
        (rivals.length > MAX_LISTED ? '; ...' : '') + '.';
  return `${prefix}\nNext had to come ${describeOp(b.op)}, which could not go there${mismatch}, ${others}`;
}
