/**
 * A follower's side of linearizable reads (raft-reads.ts): it asks the shard's leader for a
 * confirmed read index. Reads that arrive in the same turn of the event loop share one request:
 * each of them began before the request left, so the index the leader confirms on receiving it
 * covers every write acknowledged before any of them. A read arriving after a request left waits
 * for the next one (it may have begun after the leader chose that request's index).
 */
import type { ReadMode } from '../../replication/raft-reads.js';

export type AskReadIndex = (mode: ReadMode, timeoutMs: number) => Promise<number>;

export class LeaderReadIndex {
  private readonly open = new Map<ReadMode, Promise<number>>();
  /** Requests sent to the leader, and reads they served; `leased` reads served by the replica's own read lease (no request). */
  readonly stats = { requests: 0, reads: 0, leased: 0 };

  constructor(private readonly ask: AskReadIndex) {}

  /** The leader's confirmed read index, from a request sent after this call. */
  get(mode: ReadMode, timeoutMs: number): Promise<number> {
    this.stats.reads++;
    let p = this.open.get(mode);
    if (!p) {
      p = new Promise<number>((resolve, reject) => {
        setImmediate(() => {
          this.open.delete(mode);
          this.stats.requests++;
          this.ask(mode, timeoutMs).then(resolve, reject);
        });
      });
      this.open.set(mode, p);
    }
    return p;
  }
}
