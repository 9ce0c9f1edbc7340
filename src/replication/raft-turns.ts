/**
 * The turns of a {@link RaftHost}: in one turn of the event loop it collects every dirty group's
 * Ready, issues all of their writes together (lmdb-js commits them in one transaction), and once
 * `store.flushed()` resolves — and only then — sends what promises durability (votes, append
 * acknowledgements, batched per peer node and riding on the replies to the requests the turn
 * stepped) and applies committed entries. Turns overlap: a turn writes at once, even while
 * earlier turns' flushes are in flight, and its sends and applies wait for its own flush and for
 * every earlier one.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../runtime/logger.js';
import { describeError } from '../runtime/errors.js';
import { mustPersistBeforeSending, type HardState, type Ready } from '../raft/types.js';
import type { RaftLogStore } from '../storage/raft-log-store.js';
import type { GroupReplica } from './raft-group.js';
import type { SnapshotStreams } from './raft-snapshots.js';
import type { RaftTransport, Waiting } from './raft-transport.js';
import { endSpan } from '../runtime/tracing.js';
import type { HostTraces, TurnTrace } from './raft-trace.js';

/** Deliberate bugs of the host, for proving that the simulation catches them. Never set outside tests. */
export interface HostTestingBugs {
  /** Send votes and append acknowledgements as soon as they are made, before their writes are flushed. */
  ackBeforeFlush?: boolean;
}

export interface TurnDeps {
  store: RaftLogStore;
  transport: RaftTransport;
  snapshots: SnapshotStreams;
  now(): number;
  log: Logger;
  /** Log entries kept behind what the state machine holds durably, and the least worth compacting at once. */
  compactKeep: number;
  compactEvery: number;
  /** Compact also when the applied entries before a tail of at most `compactKeepBytes` hold this many bytes (raft-options.ts, DEFAULT_COMPACT_BYTES). */
  compactBytes: number;
  compactKeepBytes: number;
  notLeader(g: GroupReplica, reason: string, leader: string | null): Error;
  markDirty(g: GroupReplica): void;
  stopped(): boolean;
  /** A flush failed: the host must stop (fail-stop), since the core already counts that turn as handed out. */
  fatal(err: unknown): void;
  bugs: HostTestingBugs;
  /** Traced work waiting for the next turn (raft-trace.ts). */
  traces: HostTraces;
}

/** Turns run, turns that wrote, time waiting for flushes, Readys, entries persisted. */
export interface TurnStats {
  turns: number;
  writeTurns: number;
  flushWaitMs: number;
  readies: number;
  entries: number;
}

export class TurnPipeline {
  readonly stats: TurnStats = { turns: 0, writeTurns: 0, flushWaitMs: 0, readies: 0, entries: 0 };
  /** The turns whose flush is in flight, in order: each one's sends and applies wait for it and for every earlier one. */
  private chain: Promise<void> = Promise.resolve();
  private inFlight = 0;

  constructor(private readonly deps: TurnDeps) {}

  /** Resolves once every turn issued so far has been carried out (or failed). */
  settled(): Promise<void> {
    return this.chain.catch(() => undefined);
  }

  /** Runs one turn over the groups in `dirty` (and empties it). */
  run(dirty: Set<GroupReplica>): void {
    const waiting = this.deps.transport.takeWaiting();
    const traced = this.deps.traces.take();
    const readies: { g: GroupReplica; rd: Ready }[] = [];
    const writes: (() => void)[] = [];
    // The peers this turn sends a frame to anyway: the replies to their requests, the leaders of
    // the groups it follows that have something to do (a read index to ask, say), and whoever a
    // group queued a message for so far. A leader's read round goes to one of them when it needs
    // one acknowledgement (RaftNode.preferReadPeers).
    const peers = new Set<string>(waiting.map((w) => w.peer));
    for (const g of dirty) if (g.core.role !== 'leader' && g.core.lead !== null) peers.add(g.core.lead);
    for (const g of dirty) {
      g.core.preferReadPeers(peers);
      while (g.core.hasReady()) {
        const rd = g.core.ready();
        for (const m of rd.messages) peers.add(m.to);
        if (rd.entries.length > 0 || rd.snapshot || rd.truncateFrom !== undefined || (rd.hardState && !commitOnly(rd.hardState, g.persistedHard))) {
          // A hard state that only moved the commit index promises nothing and Raft recovers
          // the commit index after a crash: it is written with the group's next real write
          // instead of costing a flush of its own.
          const hardState = rd.hardState ?? g.unsavedHard;
          writes.push(() => this.deps.store.save(g.id, { ...rd, hardState }));
          if (hardState) g.persistedHard = hardState;
          g.unsavedHard = undefined;
        } else if (rd.hardState) {
          g.unsavedHard = rd.hardState;
        }
        if (rd.softState) g.onSoftState(rd.softState);
        for (const rs of rd.readStates) g.waiters.readConfirmed(rs.id, rs.index);
        for (const f of rd.readFailures) g.waiters.readFailed(f.id, this.deps.notLeader(g, 'notLeader', g.core.lead));
        // A leader's appends and heartbeats promise nothing about its disk: send them now, in
        // parallel with its own write.
        for (const m of rd.messages) if ((!mustPersistBeforeSending(m) || this.deps.bugs.ackBeforeFlush) && m.type !== 'snap') this.deps.transport.enqueue(g.id, m, g.traces.size > 0 ? g.traces.headerOf(m) : undefined);
        if (g.traces.size > 0 && rd.committedEntries.length > 0) g.traces.committed(rd.committedEntries, g.core.term);
        // Committed entries already durable here need not wait for a flush: they are applied
        // when this batch's writes are issued, so that the state machine's writes share the
        // batch's transaction and flush. (Only when no earlier Ready's committed entries still
        // wait for a flush: order matters.)
        const last = rd.committedEntries[rd.committedEntries.length - 1];
        if (last && last.index <= g.core.log.stable && !rd.snapshot && g.deferredApplies === 0) {
          const entries = rd.committedEntries;
          writes.push(() => g.enqueueApply(entries));
          readies.push({ g, rd: { ...rd, committedEntries: [] } });
        } else {
          if (last) g.deferredApplies++;
          readies.push({ g, rd });
        }
      }
      const compaction = this.maybeCompact(g);
      if (compaction) writes.push(compaction);
    }
    dirty.clear();
    // A turn with nothing to write, and no flush in flight, is carried out at once (afterFlush):
    // then everything it sends goes out together there, riding on the replies to the requests it
    // stepped (a leader's answer to a follower's read index, a heartbeat's acknowledgement)
    // instead of as requests of their own.
    if (writes.length > 0 || this.inFlight > 0) this.deps.transport.flush(this.deps.now());
    if (readies.length === 0 && writes.length === 0) {
      this.deps.transport.flush(this.deps.now(), waiting);
      if (traced) for (const s of traced.afterSend) endSpan(s);
      return;
    }
    this.stats.turns++;
    this.stats.readies += readies.length;
    for (const { rd } of readies) this.stats.entries += rd.entries.length;
    this.commit(readies, writes, waiting, traced);
  }

  /**
   * Issues the turn's writes (lmdb-js commits them in one transaction) and carries out its
   * Readys once they are flushed — and once every earlier turn's are. Turns do not wait for
   * each other's flushes to write: lmdb-js commits a transaction while the previous one is
   * still being flushed, and one flush then covers every transaction committed before it
   * started. A turn without writes is carried out at once when nothing is in flight.
   */
  private commit(readies: { g: GroupReplica; rd: Ready }[], writes: (() => void)[], waiting: Waiting[], traced: TurnTrace | undefined): void {
    for (const w of writes) w();
    const applied = readies.map(({ g }) => g.sm.appliedIndex);
    if (writes.length === 0) {
      if (this.inFlight === 0) this.afterFlush(readies, applied, waiting, traced);
      else this.chain = this.chain.then(() => this.afterFlush(readies, applied, waiting, traced));
      return;
    }
    this.inFlight++;
    this.stats.writeTurns++;
    const t0 = performance.now();
    const flushes = traced ? this.deps.traces.flushing(traced, { 'shoal.raft.turn_writes': writes.length }) : undefined;
    this.chain = Promise.all([this.chain, this.deps.store.flushed()]).then(
      () => {
        this.inFlight--;
        this.stats.flushWaitMs += performance.now() - t0;
        if (flushes) for (const s of flushes) endSpan(s);
        this.afterFlush(readies, applied, waiting, traced);
      },
      (err: unknown) => {
        this.inFlight--;
        if (flushes) for (const s of flushes) endSpan(s, err);
        if (traced) for (const s of traced.afterSend) endSpan(s, err);
        // Nothing of this turn is sent or applied, and nothing after it: the host stops.
        this.deps.fatal(err);
      },
    );
  }

  /** The turn's writes are durable: advance, send, apply. */
  private afterFlush(readies: { g: GroupReplica; rd: Ready }[], appliedAtTurn: number[], waiting: Waiting[], traced: TurnTrace | undefined): void {
    if (this.deps.stopped()) {
      if (traced) for (const s of traced.afterSend) endSpan(s);
      return;
    }
    readies.forEach(({ g, rd }, k) => {
      if (g.stopped) return;
      g.durableApplied = Math.max(g.durableApplied, appliedAtTurn[k] as number);
      g.core.advance(rd);
      for (const m of rd.messages) {
        if (m.type === 'snap') this.deps.snapshots.send(g, m, () => this.deps.markDirty(g));
        else if (mustPersistBeforeSending(m) && !this.deps.bugs.ackBeforeFlush) this.deps.transport.enqueue(g.id, m, g.traces.size > 0 ? g.traces.headerOf(m) : undefined);
      }
      g.waiters.durable(rd.entries);
      if (rd.committedEntries.length > 0) {
        g.deferredApplies--;
        g.enqueueApply(rd.committedEntries);
      }
      g.serveReads();
      if (g.core.hasReady()) this.deps.markDirty(g);
    });
    this.deps.transport.flush(this.deps.now(), waiting);
    // The acknowledgements of the appends this turn stepped have left.
    if (traced) for (const s of traced.afterSend) endSpan(s);
  }

  /**
   * Drops log entries well behind what the state machine holds durably: once `compactEvery`
   * entries lie before the kept tail of `compactKeep`, or once the entries before a tail of at
   * most `compactKeepBytes` or `compactKeep` entries (whichever is shorter) hold `compactBytes` bytes.
   * Returns the write to queue.
   */
  private maybeCompact(g: GroupReplica): (() => void) | undefined {
    const core = g.core;
    const limit = Math.min(g.durableApplied, core.compactableIndex());
    let upTo = limit - this.deps.compactKeep;
    if (upTo - core.log.firstIndex() < this.deps.compactEvery) upTo = this.byteCut(g, limit);
    if (upTo < core.log.firstIndex()) return undefined;
    try {
      const meta = core.compact(upTo);
      this.sizes.delete(g);
      return () => this.deps.store.compact(g.id, meta);
    } catch (err) {
      this.deps.log.warn('raft compaction skipped', { group: g.id, error: describeError(err) });
      return undefined;
    }
  }

  /** Per group: running byte sums of its log's entries from the first index (entries up to the compactable index never change). */
  private readonly sizes = new WeakMap<GroupReplica, LogSizes>();

  /** The index to compact up to by bytes (see {@link maybeCompact}), or below the log's first index when none is due. */
  private byteCut(g: GroupReplica, limit: number): number {
    const log = g.core.log;
    const first = log.firstIndex();
    if (limit < first) return first - 1;
    let st = this.sizes.get(g);
    if (!st || st.first !== first) this.sizes.set(g, (st = { first, cum: [] }));
    const cum = st.cum;
    for (let i = first + cum.length; i <= limit; i++) cum.push((cum[cum.length - 1] ?? 0) + (log.entry(i)?.data.byteLength ?? 0));
    // Nothing to cut while all of the log up to `limit` holds less than compactBytes (a
    // follower's need below only lowers the limit): the common case, without asking the core.
    if ((cum[limit - first] as number) < this.deps.compactBytes) return first - 1;
    // A leader keeps what its followers still need (RaftNode.followersNeed: a lagging follower's
    // match, the index of a snapshot being sent), unless that is more than HOLD_FACTOR times
    // compactBytes: then a follower that far behind gets a snapshot, as one long gone would.
    const need = g.core.followersNeed();
    if (need !== undefined && need >= first - 1 && need < limit) {
      const held = (cum[limit - first] as number) - (need < first ? 0 : (cum[need - first] as number));
      if (held <= HOLD_FACTOR * this.deps.compactBytes) limit = need;
      if (limit < first) return first - 1;
    }
    const total = cum[limit - first] as number;
    if (total < this.deps.compactBytes) return first - 1;
    // the least offset whose entries after it (up to limit) hold at most compactKeepBytes
    let lo = 0;
    let hi = limit - first;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (total - (cum[mid] as number) <= this.deps.compactKeepBytes) hi = mid;
      else lo = mid + 1;
    }
    // the tail kept is the shorter of the two: compactKeep entries of 300 KB each would be 300 MB
    const upTo = Math.max(first + lo, limit - this.deps.compactKeep);
    return (cum[upTo - first] ?? 0) >= this.deps.compactBytes ? upTo : first - 1;
  }
}

/**
 * Compaction by bytes keeps the entries a follower still needs while they hold at most this many
 * times `compactBytes` (32 MiB by default): a follower that lags for a few seconds under heavy
 * writes, or that installs a snapshot while the group goes on writing, catches up from the log.
 */
export const HOLD_FACTOR = 4;

/** Running byte sums of a group's log entries: `cum[i]` covers the entries `first .. first + i`. */
interface LogSizes {
  first: number;
  cum: number[];
}

function commitOnly(next: HardState, prev: HardState | undefined): boolean {
  return prev !== undefined && next.term === prev.term && next.vote === prev.vote && next.repairing === prev.repairing;
}
