/**
 * Read pipelining between two nodes (issue 21, item 5): at most one exchange that asks a peer
 * node to confirm reads is in flight at a time; whatever asks come up meanwhile, for any of the
 * groups the two nodes share, wait and leave together in the next frame. Under load the frames
 * grow with the load instead of multiplying, and a read waits at most one round trip more.
 *
 * What asks: a follower's `readReq` (a read index from its leader) and a leader's `heartbeat`
 * (a read round, or a tick's heartbeat, which confirms reads as well). A frame made of nothing
 * else may wait for the peer's answer to the frame in flight; a frame with anything else in it
 * (appends, votes, answers) leaves at once and takes the waiting asks along. The peer's answers
 * (`heartbeatResp`, `readResp`) release the next frame, whether they come on the reply to our
 * request or in a frame of the peer's own (asks that rode on our reply to it are answered so).
 *
 * Why it is safe: delaying a message is something any network does, and Raft's reads do not
 * depend on timing for it. A read index is confirmed only by an acknowledgement of a round sent
 * after the read arrived (the round is sent later still when it waits here), and a follower's
 * request is answered with the commit index the leader has when it receives the request, after
 * all of its reads began. The leader counts a lease from when a round was started, not sent: a
 * round that waits here shortens its lease, never lengthens it. Of two waiting heartbeats of one
 * group only the later is sent: its round is newer, and confirms every read of the earlier one
 * (ReadTracker.confirm); its commit index is at least the earlier's.
 *
 * Answers alone need no reply: a frame that carries only answers is published (one message, not a
 * request and its reply; RaftHostOptions.publishAnswers, on by default).
 *
 * Pipelining is off by default (RaftHostOptions.readPipeline): at 32 clients on the bench machine
 * it cut a `strong` search's messages between nodes by 12-25% but not its CPU, and the wait cost
 * QPS (bench/RESULTS.md, "Strong reads, read pipelining").
 */
import type { Message } from '../raft/types.js';

/** A message that asks the peer to confirm reads (and may wait for the exchange in flight). */
export function asksForReads(m: Message): boolean {
  return m.type === 'readReq' || m.type === 'heartbeat';
}

/** A message that answers a peer's ask; one from a peer releases our next frame to it. */
export function answersReads(m: Message): boolean {
  return m.type === 'heartbeatResp' || m.type === 'readResp';
}

/** A message that needs no reply from the peer, nor proof that it arrived: an answer of any kind. */
export function isAnswer(m: Message): boolean {
  switch (m.type) {
    case 'appResp':
    case 'heartbeatResp':
    case 'voteResp':
    case 'preVoteResp':
    case 'leaseResp':
    case 'readResp':
      return true;
    case 'app':
    case 'heartbeat':
    case 'vote':
    case 'preVote':
    case 'snap':
    case 'timeoutNow':
    case 'leaseReq':
    case 'readReq':
      return false;
    default: {
      const never: never = m;
      return never;
    }
  }
}

/** Of the heartbeats of one group in a frame, only the last (the newest round) is kept; the rest stays in order. */
export function latestHeartbeats<G>(list: [G, Message][]): [G, Message][] {
  let beats = 0;
  for (const [, m] of list) if (m.type === 'heartbeat') beats++;
  if (beats < 2) return list;
  const seen = new Set<G>();
  const out: [G, Message][] = [];
  for (let i = list.length - 1; i >= 0; i--) {
    const item = list[i] as [G, Message];
    if (item[1].type === 'heartbeat') {
      if (seen.has(item[0])) continue;
      seen.add(item[0]);
    }
    out.push(item);
  }
  return out.reverse();
}

/**
 * Which peers have a read-asking exchange in flight. A peer counts as busy from the frame that
 * asked until its answers arrive, its request fails, or `maxWaitMs` passes (a lost answer must
 * not hold the next frame for long; the reads themselves expire in the core).
 */
export class ReadPipeline {
  private readonly busySince = new Map<string, number>();

  constructor(
    /** Off: every frame leaves at once (the behaviour before pipelining). */
    readonly enabled: boolean,
    private readonly maxWaitMs: number,
  ) {}

  /** Whether a frame of `list` to `peer` waits now (it only asks, and an ask is in flight). */
  holds(peer: string, list: readonly [unknown, Message][], now: number): boolean {
    if (!this.enabled) return false;
    const since = this.busySince.get(peer);
    if (since === undefined) return false;
    if (now - since >= this.maxWaitMs) {
      this.busySince.delete(peer);
      return false;
    }
    return list.every(([, m]) => asksForReads(m));
  }

  /** A frame of `list` left for `peer` at `now`. */
  sent(peer: string, list: readonly [unknown, Message][], now: number): void {
    if (this.enabled && list.some(([, m]) => asksForReads(m))) this.busySince.set(peer, now);
  }

  /** A frame of `list` arrived from `peer` (a request, a reply or a published frame): answers release it. */
  received(peer: string, list: readonly [unknown, Message][]): void {
    if (this.busySince.has(peer) && list.some(([, m]) => answersReads(m))) this.busySince.delete(peer);
  }

  /** The exchange with `peer` ended without answers (an empty reply, a timeout, no responders). */
  ended(peer: string): void {
    this.busySince.delete(peer);
  }

  /** Whether anything is in flight (then held frames may be due at a later flush). */
  busy(): boolean {
    return this.busySince.size > 0;
  }
}
