/**
 * A router's calls to shards: each retried inside the request's deadline while the shard has no
 * leader (no responders), a stale leader answers NOT_LEADER, or a replica is overloaded; an
 * attempt still waiting when a new leader announces itself, or a write's attempt that waited
 * {@link writeAttemptMs}, is sent again. Retrying a write is safe because every write carries a
 * requestId that the shard's state machine deduplicates (DESIGN.md, A write).
 */
import type { Clock } from '../../runtime/clock.js';
import {
  ShoalError,
  TimeoutError,
  UnavailableError,
  describeError,
} from '../../runtime/errors.js';
import type { LeaderWait } from './leader-watch.js';
import type { ShardRequest } from '../shard-protocol.js';

export interface Requester {
  request<R>(subject: string, msg: unknown, opts: { timeoutMs: number }): Promise<R>;
}

export const RETRY_BACKOFF_MIN_MS = 5;
export const RETRY_BACKOFF_MAX_MS = 200;

// MOVING: a key a reshard is moving, between its fence and its switch (docs/resharding.md).
const TRANSIENT = new Set(['NO_RESPONDERS', 'NOT_LEADER', 'MAILBOX_FULL', 'ACTOR_STOPPED', 'UNAVAILABLE', 'MOVING']);

/** How a call's attempts are bounded and cut short. */
export interface CallOptions {
  /** The longest one attempt may wait, given what is left of the deadline and the attempt's number from 0 (default: all of it). */
  attemptMs?: (remaining: number, attempt: number) => number;
  /** A wait that, when it resolves, abandons the attempt in flight and sends the request again at once (a new leader was announced). */
  interrupt?: () => LeaderWait;
  /** Asked before each retry: an error to give up with instead (the collection's map changed while the request waited: see router-data.ts). */
  abandon?: () => ShoalError | undefined;
}

/**
 * A write's attempt waits at most this long, or a third of what is left of the deadline if that
 * is more, before it is sent again (with the same requestId, so it is applied at most once): a
 * request lost on its way, or swallowed by a leader that died, does not hold the write until its
 * deadline. A new leader's announcement cuts an attempt shorter still.
 */
export const WRITE_ATTEMPT_MIN_MS = 1_000;

export function writeAttemptMs(remaining: number): number {
  return Math.max(WRITE_ATTEMPT_MIN_MS, Math.floor(remaining / 3));
}

/**
 * A strong or leased read tried first on this node's replica waits at most this long, or a third
 * of what is left of the deadline if that is more, before it is sent to the leader: a follower
 * that cannot serve it soon (restarted far behind, restoring a snapshot, its index worker busy)
 * does not hold the read until its deadline.
 */
export const LOCAL_READ_ATTEMPT_MIN_MS = 1_000;

export function localReadAttemptMs(remaining: number, attempt: number): number {
  return attempt === 0 ? Math.max(LOCAL_READ_ATTEMPT_MIN_MS, Math.floor(remaining / 3)) : remaining;
}

const INTERRUPTED = Symbol('interrupted');

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
  o: CallOptions = {},
): Promise<R> {
  let backoff = RETRY_BACKOFF_MIN_MS;
  let uncertain = false;
  let last: unknown;
  for (let attempt = 0; ; attempt++) {
    const remaining = Math.floor(deadline - clock.now());
    if (remaining < 1) break;
    const timeoutMs = o.attemptMs ? Math.max(1, Math.min(remaining, o.attemptMs(remaining, attempt))) : remaining;
    const withTimeout = 'timeoutMs' in req ? { ...req, timeoutMs } : req;
    const wait = o.interrupt?.();
    try {
      const call = requester.request<R>(typeof subject === 'string' ? subject : subject(attempt), withTimeout, { timeoutMs });
      if (!wait) return await call;
      const res = await Promise.race([call, wait.promise.then(() => INTERRUPTED)]);
      if (res !== INTERRUPTED) return res as R;
      // A new leader: the attempt in flight may still be answered (or applied); nobody waits for it.
      call.catch(() => undefined);
      uncertain = true;
      last = new UnavailableError(`${what}: a new leader took over while the request waited`);
      continue;
    } catch (err) {
      last = err;
      if (!(err instanceof ShoalError)) throw err;
      if (err.code === 'TIMEOUT') {
        uncertain = true;
        continue;
      }
      if (!TRANSIENT.has(err.code)) throw err;
      const instead = o.abandon?.();
      if (instead) throw instead;
      await new Promise<void>((r) => clock.setTimer(r, Math.min(backoff, Math.max(0, deadline - clock.now()))));
      backoff = Math.min(backoff * 2, RETRY_BACKOFF_MAX_MS);
    } finally {
      wait?.cancel();
    }
  }
  if (last === undefined) return Promise.reject(new TimeoutError(`${what}: the deadline left no time to ask it`));
  const why = describeError(last);
  if (uncertain) return Promise.reject(new TimeoutError(`${what}: no answer before the deadline (last: ${why})`));
  return Promise.reject(new UnavailableError(`${what}: not available before the deadline (last: ${why})`));
}
