/**
 * A router's ear for shards' new leaders. A replica that starts to lead announces itself
 * (shard-protocol.ts, leaderAnnounceSubject); a router call still waiting on a shard's leader
 * subject — on a leader that died, froze or was cut off, which would hold it for its whole
 * deadline — is woken by the next announcement for that shard and sends its request again, to
 * the new leader. A write resent this way is applied at most once: it carries the same
 * requestId, which the shard deduplicates.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { decodeCbor } from '../../runtime/codec.js';
import type { Logger } from '../../runtime/logger.js';
import type { Subjects } from '../../runtime/subjects.js';
import { allLeaderAnnouncements, type LeaderAnnouncement } from '../shard-protocol.js';

/** A wait for a shard's next leader: `promise` resolves at the announcement; `cancel` stops waiting. */
export interface LeaderWait {
  promise: Promise<void>;
  cancel(): void;
}

export class LeaderWatch {
  private readonly waiting = new Map<string, Set<() => void>>();
  private sub: Subscription | undefined;

  /** Listens on `nc` for every shard's announcements. */
  start(nc: NatsConnection, subjects: Subjects, log: Logger): void {
    this.sub = nc.subscribe(allLeaderAnnouncements(subjects), {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.announced(decodeCbor(msg.data) as LeaderAnnouncement);
        } catch (e) {
          log.warn('leader announcement could not be read', { subject: msg.subject, error: String(e) });
        }
      },
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  /** A shard has a new leader: every call waiting on it goes again. */
  announced(a: LeaderAnnouncement): void {
    const key = keyOf(a.uid, a.shard);
    const set = this.waiting.get(key);
    if (!set) return;
    this.waiting.delete(key);
    for (const wake of set) wake();
  }

  /** Waits for the next announcement of shard `shard` of collection incarnation `uid`. */
  next(uid: string, shard: number): LeaderWait {
    const key = keyOf(uid, shard);
    let wake: () => void = () => undefined;
    const promise = new Promise<void>((r) => (wake = r));
    let set = this.waiting.get(key);
    if (!set) this.waiting.set(key, (set = new Set()));
    set.add(wake);
    return {
      promise,
      cancel: () => {
        const s = this.waiting.get(key);
        if (!s) return;
        s.delete(wake);
        if (s.size === 0) this.waiting.delete(key);
      },
    };
  }
}

function keyOf(uid: string, shard: number): string {
  return `${uid}/${shard}`;
}
