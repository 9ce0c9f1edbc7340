/**
 * The callers waiting on one group's replica, and the one place where they are created and
 * settled: proposals (once durable here for concern `leader`, once applied here for `majority`,
 * once every member applied them for `all`), reads (once their index is confirmed, and applied
 * here unless the read only wanted the index), waits for an index to be applied, membership
 * changes (once applied), and leadership transfers (once this replica stops leading). Each has a
 * deadline on the host's clock, and each is settled exactly once: by its event, by its deadline,
 * or by a failure of the whole group.
 */
import type { Clock, Timer } from '../runtime/clock.js';
import { NotLeaderError, TimeoutError } from '../runtime/errors.js';
import type { Entry } from '../raft/types.js';
import type { WriteConcern } from './raft-state-machine.js';

interface PendingProposal {
  term: number;
  concern: WriteConcern;
  resolve: (v: { index: number; result: unknown }) => void;
  reject: (e: Error) => void;
  timer: Timer;
  /** For concern `all`: applied here (with this result), now waiting for every member. */
  appliedHere?: { result: unknown };
}

interface PendingRead {
  resolve: (index: number) => void;
  reject: (e: Error) => void;
  timer: Timer;
  /** Confirmed (or, for a wait, the index to reach): served once applied reaches it. */
  index?: number;
  /** Resolve as soon as the index is confirmed, without waiting to apply it here (a follower's read asked for it). */
  confirmOnly?: boolean;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: Timer;
}

export function timeoutError(what: string, ms: number): TimeoutError {
  return new TimeoutError(`${what} did not complete within ${ms} ms`);
}

export class GroupWaiters {
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<number, PendingRead>();
  private readonly confs = new Map<number, Waiter>();
  private readonly transfers = new Set<Waiter>();

  constructor(
    private readonly group: string,
    private readonly clock: Clock,
  ) {}

  // ------------------------------------------------------------------ proposals

  /** A write proposed at `index` in `term`; an older proposal at that index was superseded by a new leader's entry. */
  proposal(index: number, term: number, concern: WriteConcern, timeoutMs: number): Promise<{ index: number; result: unknown }> {
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimer(() => {
        if (this.proposals.get(index)?.timer === timer) this.proposals.delete(index);
        reject(timeoutError(`write to group ${this.group} (index ${index})`, timeoutMs));
      }, timeoutMs);
      const older = this.proposals.get(index);
      if (older) {
        older.timer.cancel();
        older.reject(this.superseded(index));
      }
      this.proposals.set(index, { term, concern, resolve, reject, timer });
    });
  }

  /** Entries now durable here: proposals of concern `leader` among them are done. */
  durable(entries: readonly Entry[]): void {
    if (this.proposals.size === 0) return;
    for (const e of entries) {
      const p = this.proposals.get(e.index);
      if (p && p.concern === 'leader' && p.term === e.term) {
        this.proposals.delete(e.index);
        p.timer.cancel();
        p.resolve({ index: e.index, result: undefined });
      }
    }
  }

  /** An entry applied here: it answers the proposal and membership change waiting on its index (as superseded if it is another entry). */
  applied(e: Entry, result: unknown): void {
    const w = this.confs.get(e.index);
    if (w) {
      this.confs.delete(e.index);
      w.timer.cancel();
      if (e.type === 'config') w.resolve();
      else w.reject(new NotLeaderError(`group ${this.group}: the membership change was superseded by a new leader`));
    }
    const p = this.proposals.get(e.index);
    if (!p) return;
    if (e.term !== p.term) {
      this.proposals.delete(e.index);
      p.timer.cancel();
      p.reject(this.superseded(e.index));
      return;
    }
    if (p.concern === 'all') {
      p.appliedHere = { result };
      return; // settled by appliedEverywhere
    }
    this.proposals.delete(e.index);
    p.timer.cancel();
    p.resolve({ index: e.index, result });
  }

  /** Whether a proposal of concern `all` waits. */
  hasAll(): boolean {
    for (const p of this.proposals.values()) if (p.concern === 'all') return true;
    return false;
  }

  /** Concern `all`: every member has applied up to `minApplied`. */
  appliedEverywhere(minApplied: number): void {
    for (const [index, p] of this.proposals) {
      if (p.concern === 'all' && p.appliedHere && index <= minApplied) {
        this.proposals.delete(index);
        p.timer.cancel();
        p.resolve({ index, result: p.appliedHere.result });
      }
    }
  }

  /** Fails every waiting proposal (the group stopped applying). */
  failProposals(err: Error): void {
    for (const p of this.proposals.values()) {
      p.timer.cancel();
      p.reject(err);
    }
    this.proposals.clear();
  }

  private superseded(index: number): NotLeaderError {
    return new NotLeaderError(`group ${this.group}: the write at index ${index} was superseded by a new leader's entry; it was not applied`);
  }

  // ------------------------------------------------------------------ reads

  /** A read the core is confirming under `id`: resolves with its index once confirmed (`confirmOnly`), or once applied here too. */
  read(id: number, confirmOnly: boolean, timeoutMs: number): Promise<number> {
    return this.addRead(id, { confirmOnly }, timeoutMs, `read barrier on group ${this.group}`);
  }

  /** Resolves once `appliedIndex()` reaches `index`. */
  applyWait(id: number, index: number, timeoutMs: number, appliedIndex: () => number): Promise<void> {
    return this.addRead(id, { index }, timeoutMs, () => `applying index ${index} on group ${this.group} (applied ${appliedIndex()})`).then(() => undefined);
  }

  /** The core confirmed read `id` at `index`. */
  readConfirmed(id: number, index: number): void {
    const r = this.reads.get(id);
    if (!r) return;
    r.index = index;
    if (r.confirmOnly) {
      this.reads.delete(id);
      r.timer.cancel();
      r.resolve(index);
    }
  }

  /** The core could not confirm read `id` (it stopped leading). */
  readFailed(id: number, err: Error): void {
    const r = this.reads.get(id);
    if (!r) return;
    this.reads.delete(id);
    r.timer.cancel();
    r.reject(err);
  }

  /** Serves the confirmed reads and waits whose index is applied. */
  serveReads(appliedIndex: number): void {
    if (this.reads.size === 0) return;
    for (const [id, r] of this.reads) {
      if (r.index !== undefined && r.index <= appliedIndex) {
        this.reads.delete(id);
        r.timer.cancel();
        r.resolve(r.index);
      }
    }
  }

  private addRead(id: number, o: { confirmOnly?: boolean; index?: number }, timeoutMs: number, what: string | (() => string)): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const timer = this.clock.setTimer(() => {
        this.reads.delete(id);
        reject(timeoutError(typeof what === 'string' ? what : what(), timeoutMs));
      }, timeoutMs);
      this.reads.set(id, { resolve, reject, timer, ...o });
    });
  }

  // ------------------------------------------------------------------ membership and leadership

  /** A membership change proposed at `index`: resolves once applied here. */
  conf(index: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimer(() => {
        this.confs.delete(index);
        reject(timeoutError(`membership change of group ${this.group}`, timeoutMs));
      }, timeoutMs);
      this.confs.set(index, { resolve, reject, timer });
    });
  }

  /** A leadership transfer: resolves once this replica stops leading. */
  transfer(timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: this.clock.setTimer(() => {
          this.transfers.delete(w);
          reject(timeoutError(what, timeoutMs));
        }, timeoutMs),
      };
      this.transfers.add(w);
    });
  }

  /** This replica stopped leading: transfers are done. */
  leadershipLost(): void {
    for (const w of this.transfers) {
      w.timer.cancel();
      w.resolve();
    }
    this.transfers.clear();
  }

  /** Fails everything still waiting (stop, removal). */
  failAll(err: Error): void {
    this.failProposals(err);
    for (const r of this.reads.values()) {
      r.timer.cancel();
      r.reject(err);
    }
    this.reads.clear();
    for (const w of [...this.confs.values(), ...this.transfers]) {
      w.timer.cancel();
      w.reject(err);
    }
    this.confs.clear();
    this.transfers.clear();
  }
}
