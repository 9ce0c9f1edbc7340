/**
 * A router's calls to shards: each retried inside the request's deadline while the shard has no
 * leader (no responders), a stale leader answers NOT_LEADER, or a replica is overloaded. Retrying
 * a write is safe because every write carries a requestId that the shard's state machine
 * deduplicates (DESIGN.md, A write).
 */
import type { Clock } from '../runtime/clock.js';
import {
  ShoalError,
  TimeoutError,
  UnavailableError,
  describeError,
} from '../runtime/errors.js';
import type { ShardRequest } from './shard-protocol.js';

export interface Requester {
  request<R>(subject: string, msg: unknown, opts: { timeoutMs: number }): Promise<R>;
}

export const RETRY_BACKOFF_MIN_MS = 5;
export const RETRY_BACKOFF_MAX_MS = 200;

const TRANSIENT = new Set(['NO_RESPONDERS', 'NOT_LEADER', 'MAILBOX_FULL', 'ACTOR_STOPPED', 'UNAVAILABLE']);

/**
 * Sends `req` to `subject` (or to `subject(attempt)`, attempts counted from 0) until it succeeds,
 * fails for good, or `deadline` (ms on `clock`) passes; the waits between attempts are timers of
 * `clock`. Past the deadline: UNAVAILABLE when no attempt can have reached a leader
 * (nothing was applied), TIMEOUT when one may have (the outcome of a write is unknown).
 */
export async function callShard<R>(
  requester: Requester,
  subject: string | ((attempt: number) => string),
  req: ShardRequest,
  deadline: number,
  what: string,
  clock: Clock,
): Promise<R> {
  let backoff = RETRY_BACKOFF_MIN_MS;
  let uncertain = false;
  let last: unknown;
  for (let attempt = 0; ; attempt++) {
    const remaining = Math.floor(deadline - clock.now());
    if (remaining < 1) break;
    const withTimeout = 'timeoutMs' in req ? { ...req, timeoutMs: remaining } : req;
    try {
      return await requester.request<R>(typeof subject === 'string' ? subject : subject(attempt), withTimeout, { timeoutMs: remaining });
    } catch (err) {
      last = err;
      if (!(err instanceof ShoalError)) throw err;
      if (err.code === 'TIMEOUT') {
        uncertain = true;
        continue;
      }
      if (!TRANSIENT.has(err.code)) throw err;
      await new Promise<void>((r) => clock.setTimer(r, Math.min(backoff, Math.max(0, deadline - clock.now()))));
      backoff = Math.min(backoff * 2, RETRY_BACKOFF_MAX_MS);
    }
  }
  if (last === undefined) return Promise.reject(new TimeoutError(`${what}: the deadline left no time to ask it`));
  const why = describeError(last);
  if (uncertain) return Promise.reject(new TimeoutError(`${what}: no answer before the deadline (last: ${why})`));
  return Promise.reject(new UnavailableError(`${what}: not available before the deadline (last: ${why})`));
}
