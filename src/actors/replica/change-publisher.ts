/**
 * A shard leader's change-stream publisher (docs/changes.md). While its replica leads (from the
 * first commit of its term), it publishes the shard's outbox records — writes applied here, so
 * committed — to the collection's JetStream stream, one message per record, in log index order,
 * each with the header `Nats-Msg-Id: <collection uid>/<shard>/<index>`, awaiting each
 * acknowledgement before the next message (so a message lost around a reconnect can never land
 * after a later one). Every {@link PRUNE_EVERY_MS} with new acknowledgements it proposes
 * `changes-published {upTo}`, which drops the acknowledged records on every replica.
 *
 * A new leader first looks for its shard's last message in the stream (scanning back from the
 * stream's end, at most {@link RESUME_SCAN} messages): the stream holds the shard's messages in
 * index order, so every record up to that index is in it, and the leader resumes after it (and
 * prunes up to it). Records it could not rule out that way are published again, with the same id
 * and content, and JetStream's duplicate window drops those its predecessor had published. A
 * leader that cannot reach JetStream retries the same record with backoff and
 * never skips one; the outbox grows meanwhile (the `shoal_changes_outbox_entries` gauge).
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { ChangeRecord } from '../../storage/change-outbox.js';
import { describeError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';

/** How often, at most, the leader proposes to prune what JetStream acknowledged. */
export const PRUNE_EVERY_MS = 500;
/** Outbox records read at once. */
const READ_BATCH = 256;
/** Retry backoff of a publish JetStream did not acknowledge. */
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
/** A publish not acknowledged within this long is retried (same id: a late duplicate is dropped). */
const PUBLISH_TIMEOUT_MS = 5_000;
/** A new leader looks this many messages back from the stream's end for its shard's last one. */
export const RESUME_SCAN = 1_000;
/** Warn about a JetStream that does not acknowledge at most this often. */
const WARN_EVERY_MS = 10_000;

export interface ChangePublisherDeps {
  js: JetStreamClient;
  /** `<prefix>.changes.v1.<collection>`. */
  subject: string;
  /** `SHOAL_CHANGES_<collection>`. */
  stream: string;
  /** `<collection uid>/<shard>`: the message id is this, `/`, the log index. */
  idPrefix: string;
  shard: number;
  /** Outbox records after a log index, in index order (applied ones only). */
  read(after: number, limit: number): [number, ChangeRecord][];
  /** Proposes `changes-published {upTo}` to the shard's Raft group; resolves once applied. */
  propose(upTo: number): Promise<void>;
  log: Logger;
  /** Called for each message JetStream stored as new (not a duplicate). */
  published?(): void;
}

/**
 * `<collection uid>/<shard>` for a collection's first groups (`<uid>-<shard>`); a group a reshard
 * made (`<uid>-e<epoch>-<shard>`, whose log starts again at 1 under a shard number that may have
 * been another group's) is `<uid>-e<epoch>/<shard>`, so no two groups share message ids.
 */
export function changeIdPrefix(group: string, shard: number): string {
  if (!group.endsWith(`-${shard}`)) return `${group}/${shard}`;
  return `${group.slice(0, group.length - String(shard).length - 1)}/${shard}`;
}

/** A message id `<prefix>/<index>` parted (index NaN when it is not a number). */
export function splitChangeId(id: string): { prefix: string; index: number } {
  const cut = id.lastIndexOf('/');
  return { prefix: id.slice(0, cut), index: Number(id.slice(cut + 1)) };
}

/** The message of one record, as PROTOCOL.md shows it. */
export function changeMessage(shard: number, index: number, r: ChangeRecord): Record<string, unknown> {
  const time = new Date(r.time).toISOString();
  if (r.op === 'delete') return { shard, index, time, op: 'delete', ids: r.ids };
  return {
    shard,
    index,
    time,
    op: 'upsert',
    points: r.points.map((p) => ({ id: p.id, vector: Array.from(p.vector), ...(p.metadata ? { metadata: p.metadata } : {}), ...(p.shardKey !== undefined ? { shardKey: p.shardKey } : {}) })),
  };
}

/**
 * The highest log index of shard `idPrefix` (`<uid>/<shard>`) among the last `maxScan` messages of
 * `stream` (0: none there). Each shard's messages are in the stream in index order, so every
 * index below it is there too.
 */
export async function lastPublishedIndex(jsm: JetStreamManager, stream: string, idPrefix: string, maxScan = RESUME_SCAN): Promise<number> {
  const { state } = await jsm.streams.info(stream);
  if (state.messages === 0) return 0;
  for (let seq = state.last_seq, n = 0; seq >= state.first_seq && n < maxScan; seq--, n++) {
    let m;
    try {
      m = await jsm.streams.getMessage(stream, { seq });
    } catch {
      continue; // a message removed (by an operator's limits): look further back
    }
    const { prefix, index } = splitChangeId(m?.header?.get('Nats-Msg-Id') ?? '');
    if (prefix === idPrefix && Number.isSafeInteger(index) && index > 0) return index;
  }
  return 0;
}

export class ChangePublisher {
  /** Bumped at each start and stop: a loop of an earlier generation ends. */
  private gen = 0;
  private leading = false;
  private wake: (() => void) | undefined;
  private lastWarn = -Infinity;

  constructor(private readonly deps: ChangePublisherDeps) {}

  /** Follows the replica's role: publishing while it leads and is ready. */
  setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    const gen = ++this.gen;
    this.poke();
    if (leading) void this.run(gen);
  }

  /** New records may have been applied. */
  poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  stop(): void {
    this.setLeading(false);
  }

  private live(gen: number): boolean {
    return this.gen === gen;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private warn(what: string, err: unknown, fields: Record<string, unknown> = {}): void {
    if (Date.now() - this.lastWarn < WARN_EVERY_MS) return;
    this.lastWarn = Date.now();
    this.deps.log.warn(what, { subject: this.deps.subject, shard: this.deps.shard, ...fields, error: describeError(err) });
  }

  private async run(gen: number): Promise<void> {
    const d = this.deps;
    let cursor = 0;
    let acked = 0;
    let pruned = 0;
    let proposedAt = -Infinity;
    let proposing = false;
    let backoff = BACKOFF_MIN_MS;
    // Resume after what the stream already holds of this shard (else from the oldest record).
    try {
      const jsm = await d.js.jetstreamManager(false);
      cursor = acked = await lastPublishedIndex(jsm, d.stream, d.idPrefix);
    } catch (err) {
      this.warn('could not find the shard\'s last message in its change stream; publishing the whole outbox (duplicates are dropped)', err);
    }
    const maybePrune = (): void => {
      if (proposing || acked <= pruned || Date.now() - proposedAt < PRUNE_EVERY_MS || !this.live(gen)) return;
      proposing = true;
      proposedAt = Date.now();
      const upTo = acked;
      d.propose(upTo).then(
        () => {
          pruned = Math.max(pruned, upTo);
        },
        (err: unknown) => this.warn('could not prune the change-stream outbox (retried)', err),
      ).finally(() => {
        proposing = false;
      });
    };
    while (this.live(gen)) {
      let batch: [number, ChangeRecord][];
      try {
        batch = d.read(cursor, READ_BATCH);
      } catch (err) {
        this.warn('cannot read the change-stream outbox', err);
        await this.sleep(BACKOFF_MAX_MS);
        continue;
      }
      if (batch.length === 0) {
        maybePrune();
        await this.sleep(acked > pruned ? PRUNE_EVERY_MS : 1_000);
        continue;
      }
      for (const [index, record] of batch) {
        const data = JSON.stringify(changeMessage(d.shard, index, record));
        for (;;) {
          if (!this.live(gen)) return;
          try {
            const ack = await d.js.publish(d.subject, data, { msgID: `${d.idPrefix}/${index}`, timeout: PUBLISH_TIMEOUT_MS });
            if (!ack.duplicate) d.published?.();
            backoff = BACKOFF_MIN_MS;
            break;
          } catch (err) {
            this.warn('JetStream did not acknowledge a change-stream message; retrying it', err, { index });
            await this.sleep(backoff);
            backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
          }
        }
        cursor = index;
        acked = index;
        maybePrune();
      }
    }
  }
}
