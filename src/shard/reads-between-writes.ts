/**
 * Reads that must see a shard's index and its LMDB records at the same applied log index, run
 * between the state machine's writes: a read/write gate over async functions.
 *
 * Ordering rules:
 * - A write starts only when no read runs; reads that arrive while a write waits or runs wait
 *   until it has finished (a steady stream of reads does not hold a write back).
 * - Writes come one at a time: the state machine's queue (`serial`) already orders them, and
 *   this gate assumes it.
 */
export class ReadsBetweenWrites {
  private readers = 0;
  private writing = false;
  private writerWaiting = false;
  private wakeWriter: (() => void) | undefined;
  private waitingReaders: (() => void)[] = [];

  /** Runs `fn` while no write runs. */
  async read<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writing || this.writerWaiting) await new Promise<void>((r) => this.waitingReaders.push(r));
    this.readers++;
    try {
      return await fn();
    } finally {
      if (--this.readers === 0) this.wakeWriter?.();
    }
  }

  /** Runs `fn` once no read runs; reads wait for it. */
  async write<T>(fn: () => Promise<T>): Promise<T> {
    this.writerWaiting = true;
    while (this.readers > 0) await new Promise<void>((r) => (this.wakeWriter = r));
    this.wakeWriter = undefined;
    this.writerWaiting = false;
    this.writing = true;
    try {
      return await fn();
    } finally {
      this.writing = false;
      const waiting = this.waitingReaders;
      this.waitingReaders = [];
      for (const wake of waiting) wake();
    }
  }
}
