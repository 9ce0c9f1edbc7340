/**
 * Raft's part of a request's trace (docs/operations.md#traces). Only entries proposed within a
 * trace are traced; heartbeats, empty appends, elections and a new leader's no-op make no span.
 *
 *   raft.propose   (leader)   from the proposal until its write concern is met
 *   ├ raft.flush   (leader)   its own write of the entry to disk
 *   ├ raft.append  (follower) from receiving the append until its acknowledgement is sent
 *   │ └ raft.flush (follower) the write of the entries to disk
 *   ├ raft.commit  (leader)   the moment the leader learns the entry is committed
 *   └ raft.apply   (every replica) the state machine's apply of the entry
 *
 * Each entry's context is kept in memory with the group (never in the log on disk) from its
 * proposal, or its arrival on a follower, until it is applied there. It travels to followers in
 * the `Shoal-Raft-Trace` header of the append's NATS message: `<group> <index> <traceparent>`
 * for each traced entry, comma-separated. One append message may carry entries of several
 * requests: its `raft.append` span is a child of the first traced entry's context and links to
 * the others (each entry's `raft.apply` still has its own trace as parent), so each trace
 * shows the append that carried it, as its child or as a link.
 */
import type { Entry, Message } from '../raft/types.js';
import { endSpan, fromTraceparent, linkTo, startChildSpan, SpanKind, toTraceparent, withSpan, type Context, type Link, type Span } from '../runtime/tracing.js';

/** The NATS header of a Raft frame that lists its traced entries. */
export const RAFT_TRACE_HEADER = 'Shoal-Raft-Trace';

/** Entries traced at once in one group, at most (more are left out of traces rather than held). */
const MAX_TRACED = 4_096;

/** The trace of one entry. */
export interface EntryTrace {
  term: number;
  /** The entry's context: its `raft.propose` span (remote on a follower). */
  ctx: Context;
  /** Proposed on this node (it then makes the `raft.commit` span). */
  local: boolean;
}

/** The traced entries of one group's replica, by index. */
export class GroupTraces {
  private readonly entries = new Map<number, EntryTrace>();

  constructor(
    readonly group: string,
    private readonly node: string,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  add(index: number, t: EntryTrace): void {
    if (this.entries.size < MAX_TRACED) this.entries.set(index, t);
  }

  /** The header part for the traced entries of `m` (an append), or undefined when none is. */
  headerOf(m: Message): string | undefined {
    if (m.type !== 'app' || this.entries.size === 0) return undefined;
    let out: string | undefined;
    for (const e of m.entries) {
      const t = this.entries.get(e.index);
      const tp = t && t.term === e.term ? toTraceparent(t.ctx) : undefined;
      if (tp) out = out === undefined ? `${this.group} ${e.index} ${tp}` : `${out},${this.group} ${e.index} ${tp}`;
    }
    return out;
  }

  /** On the leader: a `raft.commit` span for each entry proposed here among `committed`. */
  committed(committed: readonly Entry[], term: number): void {
    if (this.entries.size === 0) return;
    for (const e of committed) {
      const t = this.entries.get(e.index);
      if (t?.local && t.term === e.term) startChildSpan('raft.commit', t.ctx, this.attributes(e.index, e.term, { 'shoal.raft.leader_term': term })).end();
    }
  }

  /** Starts a `raft.apply` span for each traced entry of `batch`; call the result once applied. */
  applying(batch: readonly Entry[]): (err?: unknown) => void {
    const spans: Span[] = [];
    for (const e of batch) {
      const t = this.entries.get(e.index);
      if (t && t.term === e.term) spans.push(startChildSpan('raft.apply', t.ctx, this.attributes(e.index, e.term, { 'shoal.raft.apply_batch': batch.length })));
    }
    const last = batch[batch.length - 1];
    return (err) => {
      for (const s of spans) endSpan(s, err);
      if (last) this.forgetUpTo(last.index);
    };
  }

  clear(): void {
    this.entries.clear();
  }

  attributes(index: number, term: number, more?: Record<string, string | number>): Record<string, string | number> {
    return { 'shoal.node': this.node, 'shoal.raft.group': this.group, 'shoal.raft.index': index, 'shoal.raft.term': term, ...more };
  }

  private forgetUpTo(index: number): void {
    for (const k of this.entries.keys()) if (k <= index) this.entries.delete(k);
  }
}

/** What a turn does for traces: `raft.flush` spans under `flushParents` while its writes are flushed, then ends `afterSend` once its messages are sent. */
export interface TurnTrace {
  flushParents: Context[];
  afterSend: Span[];
}

/** A host's traced work waiting for its next turn. */
export class HostTraces {
  private pending: TurnTrace | undefined;

  constructor(private readonly node: string) {}

  /** A proposal made within a trace: its `raft.propose` span, its entry remembered, its flush in the next turn. */
  proposed(parent: Context, traces: GroupTraces, index: number, term: number): Span {
    const span = startChildSpan('raft.propose', parent, traces.attributes(index, term));
    const ctx = withSpan(parent, span);
    traces.add(index, { term, ctx, local: true });
    this.next().flushParents.push(ctx);
    return span;
  }

  /**
   * A follower received an append with traced entries (`byIndex`, from the header): its entries
   * are remembered, and its `raft.append` span lasts until the turn that steps it has sent the
   * acknowledgement.
   */
  appended(traces: GroupTraces, m: Extract<Message, { type: 'app' }>, byIndex: Map<number, Context>, from: string): void {
    let parent: Context | undefined;
    const links: Link[] = [];
    for (const e of m.entries) {
      const ctx = byIndex.get(e.index);
      if (!ctx) continue;
      traces.add(e.index, { term: e.term, ctx, local: false });
      if (parent === undefined) parent = ctx;
      else {
        const l = linkTo(ctx);
        if (l && !links.some((x) => x.context.spanId === l.context.spanId)) links.push(l);
      }
    }
    if (parent === undefined) return;
    const first = m.entries[0] as Entry;
    const last = m.entries[m.entries.length - 1] as Entry;
    const span = startChildSpan(
      'raft.append',
      parent,
      traces.attributes(first.index, m.term, { 'shoal.raft.last_index': last.index, 'shoal.raft.entries': m.entries.length, 'shoal.raft.leader': from, 'messaging.system': 'nats' }),
      links,
      SpanKind.SERVER,
    );
    const t = this.next();
    t.flushParents.push(withSpan(parent, span));
    t.afterSend.push(span);
  }

  /** The traced work for the turn about to run (undefined when there is none). */
  take(): TurnTrace | undefined {
    const t = this.pending;
    this.pending = undefined;
    return t;
  }

  /** Starts the turn's `raft.flush` spans (its writes were just issued). */
  flushing(t: TurnTrace, attributes: Record<string, string | number>): Span[] {
    return t.flushParents.map((p) => startChildSpan('raft.flush', p, { 'shoal.node': this.node, ...attributes }));
  }

  private next(): TurnTrace {
    return (this.pending ??= { flushParents: [], afterSend: [] });
  }
}

/** The traced entries listed in a `Shoal-Raft-Trace` header, by group then index; malformed parts are skipped. */
export function parseRaftTraceHeader(value: string): Map<string, Map<number, Context>> {
  const out = new Map<string, Map<number, Context>>();
  for (const part of value.split(',')) {
    const [group, index, tp] = part.trim().split(' ');
    const i = Number(index);
    if (!group || !tp || !Number.isSafeInteger(i) || i <= 0) continue;
    const ctx = fromTraceparent(tp);
    if (!ctx) continue;
    let m = out.get(group);
    if (!m) out.set(group, (m = new Map()));
    m.set(i, ctx);
  }
  return out;
}
