/**
 * The Raft host's count of ticks, kept from its clock rather than from its timer: a timer that
 * fires late, or once after a pause (SIGSTOP) or a long stall of the event loop, is owed every
 * tick the time since asks for, so no lease outlives its length in real time. The count is the
 * clock's whole ticks, never ahead of it; a clock stepped back restarts it from the new time (no
 * tick is taken back or counted twice).
 */

/**
 * When the clock is this many ticks past what has been counted (a late timer, a stalled event
 * loop, a pause), the host runs the ticks owed before it steps a message or a read uses a lease:
 * a count is never a tick behind the clock when it matters (the lease margin in
 * src/raft/read-tracker.ts rests on it).
 */
const CATCH_UP_AFTER_TICKS = 1;

export class TickCount {
  /** The time the ticks counted so far stand for. */
  private countedTo: number;

  /**
   * `cap`: the most ticks taken at once; after a long pause every Raft timer has run out once
   * that many are counted.
   */
  constructor(
    private readonly tickMs: number,
    private readonly cap: number,
    now: number,
  ) {
    this.countedTo = now;
  }

  /** The ticks owed at `now` (0 when a catch-up took them since), counted as taken. */
  take(now: number): number {
    if (now < this.countedTo) this.countedTo = now;
    const owed = Math.floor((now - this.countedTo) / this.tickMs);
    const n = Math.min(owed, this.cap);
    this.countedTo = owed > this.cap ? now : this.countedTo + n * this.tickMs;
    return n;
  }

  /** Whether the count is far enough behind the clock at `now` that ticks must be taken before a lease is used. */
  behind(now: number): boolean {
    return now - this.countedTo >= CATCH_UP_AFTER_TICKS * this.tickMs;
  }
}
