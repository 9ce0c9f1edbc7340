/**
 * The leader's view of one peer (etcd's Progress): how far its log matches, what to send next,
 * and flow control. States:
 * - `probe`: one append at a time until the peer's log position is found;
 * - `replicate`: appends pipelined optimistically, bounded by entries and bytes in flight;
 * - `snapshot`: a snapshot is being streamed; appends wait for its outcome.
 */

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export interface FlowLimits {
  /** Append messages in flight per peer in `replicate`. */
  maxInflightMsgs: number;
  /** Entry bytes in flight per peer in `replicate`. */
  maxInflightBytes: number;
}

/**
 * Runs of heartbeat rounds remembered per peer in `replicate` (a run: consecutive rounds sent
 * after the same last append). When that many await answers, later rounds join the newest run
 * until answers free some (Progress.heartbeatSent).
 */
const MAX_ROUNDS_REMEMBERED = 16;

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe: an append is out; wait for its answer (or a heartbeat answer) before the next. */
  probeSent = false;
  pendingSnapshot = 0;
  /** Heard from in the current check-quorum window. */
  recentActive = false;
  /** The peer's applied index as last reported. */
  applied = 0;
  /** Highest heartbeat sequence this peer acknowledged in the current term. */
  ackedSeq = 0;
  /** Highest commit index sent to this peer that it can adopt (its log holds the leader's entries up to it). */
  commitSent = 0;
  isLearner: boolean;
  private inflight: { last: number; bytes: number }[] = [];
  private inflightBytes = 0;
  /**
   * The heartbeat rounds sent to this peer in this spell of `replicate` and not yet answered, as
   * runs, oldest first: the first round of each run, and the last index sent before its rounds.
   */
  private rounds: { seq: number; sent: number }[] = [];

  constructor(next: number, isLearner: boolean) {
    this.next = next;
    this.isLearner = isLearner;
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
      this.pendingSnapshot = 0;
    } else {
      this.next = this.match + 1;
    }
    this.state = 'probe';
    this.probeSent = false;
    this.clearInflight();
    this.rounds = [];
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.rounds = [];
    this.next = this.match + 1;
    this.probeSent = false;
    this.clearInflight();
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.rounds = [];
    this.pendingSnapshot = index;
    this.probeSent = false;
    this.clearInflight();
  }

  /** An accepted append up to `n`. Returns whether it told us something new. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A rejected append of `rejected` (its prevIndex), with the peer's hint of where logs may
   * agree. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (rejected <= this.match) {
      if (matchHint >= this.match) return false; // stale
      // The peer lost entries it had acknowledged: a replica that found a corrupt entry at
      // restart and dropped it. Start over from its hint (a lower match only delays commits).
      this.match = Math.max(0, matchHint);
      this.next = this.match + 1;
      this.probeSent = false;
      return true;
    }
    if (this.state === 'replicate') {
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Records an append sent with entries up to `last`. */
  sentEntries(last: number, count: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = last + 1;
        this.inflight.push({ last, bytes });
        this.inflightBytes += bytes;
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /**
   * Records a heartbeat of round `seq` sent now, in `replicate`, after appends up to `next - 1`
   * (in `probe` and `snapshot` nothing is pipelined for its answer to judge). When
   * {@link MAX_ROUNDS_REMEMBERED} runs await answers, the round joins the newest run, whose sent
   * index is at most its own: its answer then errs low (a loss told a little later, by a round
   * recorded once answers have freed runs), never high (a needless probe).
   */
  heartbeatSent(seq: number): void {
    if (this.state !== 'replicate') return;
    const sent = this.next - 1;
    const last = this.rounds[this.rounds.length - 1];
    if (last && last.sent === sent) return; // the same run: reads confirmed while no write was sent
    if (this.rounds.length >= MAX_ROUNDS_REMEMBERED) return;
    this.rounds.push({ seq, sent });
  }

  /**
   * The last index sent in an append before the heartbeat of round `seq` (as
   * {@link heartbeatSent} recorded it), or undefined for a round not sent in this spell of
   * `replicate`. Answers come in order: the runs before the one holding `seq` are dropped.
   */
  sentBeforeRound(seq: number): number | undefined {
    let k = 0;
    while (k + 1 < this.rounds.length && (this.rounds[k + 1] as { seq: number }).seq <= seq) k++;
    if (k > 0) this.rounds.splice(0, k);
    const r = this.rounds[0];
    return r !== undefined && r.seq <= seq ? r.sent : undefined;
  }

  /** Frees in-flight slots up to `index` (acknowledged). */
  freeTo(index: number): void {
    let k = 0;
    while (k < this.inflight.length && (this.inflight[k] as { last: number }).last <= index) {
      this.inflightBytes -= (this.inflight[k] as { bytes: number }).bytes;
      k++;
    }
    if (k > 0) this.inflight.splice(0, k);
  }

  private clearInflight(): void {
    this.inflight = [];
    this.inflightBytes = 0;
  }

  inflightFull(limits: FlowLimits): boolean {
    return this.inflight.length >= limits.maxInflightMsgs || this.inflightBytes >= limits.maxInflightBytes;
  }

  isPaused(limits: FlowLimits): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflightFull(limits);
      case 'snapshot':
        return true;
      default:
        return assertNever(this.state);
    }
  }
}

export function assertNever(x: never): never {
  throw new Error(`raft: unexpected ${String(x)}`);
}
