/**
 * The JetStream streams of collections' change streams (PROTOCOL.md, Change streams;
 * docs/changes.md): `SHOAL_CHANGES_<collection>` on the subject `<prefix>.changes.v1.<collection>`,
 * file storage, a duplicate window of {@link CHANGE_DUPLICATE_WINDOW_MS} (the `Nats-Msg-Id` dedup
 * that makes a new leader's republishing of its outbox harmless). Created with the collection,
 * deleted with it.
 */
import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { NotFoundError, UnavailableError, describeError } from '../runtime/errors.js';
import { assertToken, type Subjects } from '../runtime/subjects.js';

/**
 * How long JetStream remembers a message id. A leader prunes its outbox about every half second
 * once records are acknowledged, so a new leader republishes only what was published in the last
 * moments before the change; the window must outlast that gap (election, and any time the new
 * leader cannot reach JetStream). Ten minutes, like the write dedup window.
 */
export const CHANGE_DUPLICATE_WINDOW_MS = 10 * 60_000;

/** `SHOAL_CHANGES_<collection>` (a collection name is one subject token: no `.`, space, `*` or `>`). */
export function changeStreamName(collection: string): string {
  return `SHOAL_CHANGES_${assertToken(collection, 'collection')}`;
}

export class ChangeStreams {
  private jsm: Promise<JetStreamManager> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    /** Replicas of each stream: 1 on a single nats-server, 3 on a cluster (as the metadata bucket). */
    private readonly replicas = 1,
    /** The streams' duplicate window (tests make it short to see a republished message that the dedup would hide). */
    private readonly duplicateWindowMs = CHANGE_DUPLICATE_WINDOW_MS,
  ) {}

  /**
   * Creates the stream of a collection about to be created. A stream of that name left by a
   * collection dropped before its stream could be deleted is deleted first: a new collection's
   * stream starts empty.
   */
  async createFresh(collection: string): Promise<void> {
    await this.remove(collection);
    await this.ensure(collection);
  }

  /** Creates the stream unless it exists (create is idempotent; a create retried after a crash finishes the job). */
  async ensure(collection: string): Promise<void> {
    const jsm = await this.manager();
    const name = changeStreamName(collection);
    try {
      await jsm.streams.info(name);
      return;
    } catch (err) {
      if (!isNotFound(err)) throw new UnavailableError(`cannot read the change stream ${name}: ${describeError(err)}`, { cause: err });
    }
    try {
      await jsm.streams.add({
        name,
        subjects: [this.subjects.changes(collection)],
        storage: 'file',
        num_replicas: this.replicas,
        duplicate_window: this.duplicateWindowMs * 1_000_000,
      } as never);
    } catch (err) {
      throw new UnavailableError(`cannot create the change stream ${name}: ${describeError(err)}`, { cause: err });
    }
  }

  /** Deletes the stream of a dropped collection (nothing if there is none). */
  async remove(collection: string): Promise<void> {
    const jsm = await this.manager();
    const name = changeStreamName(collection);
    try {
      await jsm.streams.delete(name);
    } catch (err) {
      if (!isNotFound(err)) throw new UnavailableError(`cannot delete the change stream ${name}: ${describeError(err)}`, { cause: err });
    }
  }

  /**
   * The messages of a collection's stream stored from `from` on, in stream order, up to the last
   * one the stream held when the read began: each with its `Nats-Msg-Id` and its JSON body.
   * NOT_FOUND when the collection has no stream.
   */
  async *read(collection: string, from: Date): AsyncGenerator<{ seq: number; msgId: string; body: unknown }> {
    const jsm = await this.manager();
    const name = changeStreamName(collection);
    let last: number;
    try {
      last = (await jsm.streams.info(name)).state.last_seq;
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(`collection '${collection}' has no change stream (${name})`);
      throw new UnavailableError(`cannot read the change stream ${name}: ${describeError(err)}`, { cause: err });
    }
    if (last === 0) return;
    const consumer = await jetstream(this.nc).consumers.get(name, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: from.toISOString() });
    let empties = 0;
    try {
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 1000, expires: 2_000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          yield { seq: m.seq, msgId: m.headers?.get('Nats-Msg-Id') ?? '', body: m.json() };
          if (m.seq >= last) return;
        }
        // an empty fetch ends the read only when nothing is left for the consumer (all messages
        // stored before `from`, or the stream's end); else it was only slow
        if (got > 0) empties = 0;
        else if ((await consumer.info(false)).num_pending === 0) return;
        else if (++empties >= 15) throw new UnavailableError(`reading the change stream ${name} made no progress for 15 fetches with messages pending`);
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  private manager(): Promise<JetStreamManager> {
    this.jsm ??= jetstreamManager(this.nc).catch((err: unknown) => {
      this.jsm = undefined;
      throw new UnavailableError(`JetStream does not answer: ${describeError(err)}`, { cause: err });
    });
    return this.jsm;
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}
