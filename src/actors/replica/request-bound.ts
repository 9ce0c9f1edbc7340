/**
 * The bound on the client requests a node's replicas work on at once (docs/operations.md,
 * Resource limits). Past it, a request is refused at once with OVERLOADED (UNAVAILABLE to the
 * client, not retried by the router) instead of joining the queues below — Raft proposals waiting
 * to commit, searches and applies waiting for the index worker — where it would wait until its
 * deadline. One bound for all the replicas of a node: they share its index workers and its disk.
 */
import { OverloadedError } from '../../runtime/errors.js';

/** Client requests (writes, searches, gets, counts) a node's replicas work on at once by default. */
export const DEFAULT_MAX_PENDING_REQUESTS = 2_048;

export class RequestBound {
  private inFlight = 0;
  /** Requests refused since the node started. */
  refused = 0;

  constructor(
    readonly node: string,
    readonly limit: number = DEFAULT_MAX_PENDING_REQUESTS,
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`maxPendingRequests must be an integer >= 1, got ${limit}`);
  }

  get pending(): number {
    return this.inFlight;
  }

  /** Counts one request in, or returns the error to refuse it with; a request counted in must {@link leave}. */
  enter(): OverloadedError | undefined {
    if (this.inFlight >= this.limit) {
      this.refused++;
      return new OverloadedError(`node ${this.node} is overloaded: ${this.inFlight} requests in flight, its limit (--max-pending-requests ${this.limit}); retry later`);
    }
    this.inFlight++;
    return undefined;
  }

  leave(): void {
    this.inFlight--;
  }
}
