/**
 * A leader's writes in flight, by request id: a copy of a write that arrives while the first is
 * still being proposed (the client's hedged copy after 1 s, a router's resend) waits for the
 * first's answer instead of proposing a second entry. The apply-time dedup (shard/dedup-rule.ts)
 * would drop the second entry anyway, but only after it was replicated, flushed on every replica
 * and kept in the log like the first: bench:scale saw two log entries per upsert sent under load.
 *
 * A copy that finds the first failed (a timeout, a lost leadership) proposes its own: the first
 * may never have reached the log, and the apply-time dedup still makes the pair count once.
 * A copy that arrives after the first answered proposes its own too (that dedup answers it).
 */
export class WritesInFlight<T> {
  private readonly running = new Map<string, Promise<T>>();

  /** Runs `propose` unless a write with this key is in flight; then the first's answer, or `propose` if the first fails. */
  async run(key: string, propose: () => Promise<T>): Promise<T> {
    const first = this.running.get(key);
    if (first) {
      try {
        return await first;
      } catch {
        // the first copy failed: this one tries on its own
      }
    }
    const mine = propose();
    this.running.set(key, mine);
    const forget = (): void => {
      if (this.running.get(key) === mine) this.running.delete(key);
    };
    mine.then(forget, forget);
    return mine;
  }

  get size(): number {
    return this.running.size;
  }
}

/** The key of a shard write: copies of one request agree on all of it. */
export function writeKey(requestId: string, concern: string, op: string, mapEpoch: number): string {
  return `${op}\u0000${concern}\u0000${mapEpoch}\u0000${requestId}`;
}
