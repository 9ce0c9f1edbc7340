/**
 * Time, injected. Actors schedule through a {@link Clock}, never through `setTimeout`
 * directly, so a test can jump ten seconds in a microsecond with {@link ManualClock}.
 */

export interface Timer {
  /** Cancels the timer; harmless after it fired or was cancelled. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since some fixed origin (epoch for the real clock). */
  now(): number;
  /** Calls `fn` once, `delayMs` from now. */
  setTimer(fn: () => void, delayMs: number): Timer;
}

/** Wall-clock time and Node's timers. Timers do not keep the process alive. */
export class RealClock implements Clock {
  now(): number {
    return Date.now();
  }

  setTimer(fn: () => void, delayMs: number): Timer {
    const handle = setTimeout(fn, Math.max(0, delayMs));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  }
}

interface ManualEntry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told. Timers fire in order of due time (then of creation)
 * during {@link ManualClock.advance}, which yields to the event loop between timers so that
 * asynchronous work a timer starts (an actor handling the message it delivered) can finish
 * before the next timer fires.
 */
export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private entries: ManualEntry[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, delayMs: number): Timer {
    const entry: ManualEntry = { at: this.time + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.entries.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /** Timers still waiting to fire. */
  pending(): number {
    return this.entries.filter((e) => !e.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    for (;;) {
      this.entries = this.entries.filter((e) => !e.cancelled);
      let next: ManualEntry | undefined;
      for (const e of this.entries) {
        if (e.at <= target && (!next || e.at < next.at || (e.at === next.at && e.seq < next.seq))) next = e;
      }
      if (!next) break;
      this.time = Math.max(this.time, next.at);
      next.cancelled = true;
      next.fn();
      await settle();
    }
    this.time = target;
    await settle();
  }
}

/** Lets pending promise callbacks and I/O callbacks of this turn run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
