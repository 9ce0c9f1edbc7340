/**
 * Before a point-in-time restore reads the change stream (point-in-time.ts; docs/backups.md): the
 * stream holds a shard's writes only once its leader has published them from its outbox
 * (docs/changes.md). The leader publishes milliseconds behind the apply, but while JetStream does
 * not accept its messages the writes wait in the outbox, and a restore that read the stream then
 * would silently leave out acknowledged writes made before `until`. So each source shard's leader
 * is asked what its outbox still holds (the internal `outbox` request, shard-protocol.ts); while a
 * shard's oldest waiting record is at or before `until`, the router waits for the publisher to
 * catch up, and if it does not within {@link OUTBOX_WAIT_MS}, the restore fails UNAVAILABLE naming
 * the shard. A leader that cannot be asked fails it too: nothing is replayed with an unknown gap.
 */
import type { BackupManifest } from '../../cluster/backup-store.js';
import type { CollectionRecord } from '../../cluster/metadata.js';
import { groupOf } from '../../cluster/shard-map.js';
import type { Clock } from '../../runtime/clock.js';
import { UnavailableError, describeError } from '../../runtime/errors.js';
import type { Subjects } from '../../runtime/subjects.js';
import { changeIdPrefix } from '../replica/change-publisher.js';
import { leaderSubject, type OutboxHead } from '../shard-protocol.js';
import { callShard, type Requester } from './shard-client.js';

/** How long, at most (and never past the restore's deadline), the restore waits for the source's outboxes to be published up to `until`. */
export const OUTBOX_WAIT_MS = 30_000;
/** How often the leaders are asked again meanwhile. */
const OUTBOX_POLL_MS = 200;
/** Kept from the restore's deadline: the restore drops the collection it created and answers before its client gives up. */
const ANSWER_MARGIN_MS = 2_000;

/**
 * The backup's shards that are still groups of the live source collection `source` (the same
 * message id prefix): those whose outboxes can hold writes the stream does not have yet. A group a
 * reshard has since dropped has no outbox left to ask (docs/changes.md, Limits).
 */
export function liveSourceShards(source: CollectionRecord, m: BackupManifest): number[] {
  return m.shards
    .filter((s) => source.placement.some((p) => p.shard === s.shard) && changeIdPrefix(groupOf(source, s.shard), s.shard) === (s.changeIdPrefix ?? `${m.uid}/${s.shard}`))
    .map((s) => s.shard);
}

/**
 * Resolves once no shard of `shards` (of the live source collection `source`) holds an outbox
 * record with `time <= until`: from then on the stream holds every write of theirs up to `until`.
 * Rejects UNAVAILABLE when a leader cannot be asked, or its outbox is not published that far
 * within {@link OUTBOX_WAIT_MS} (or before `deadline`).
 */
export async function awaitSourceOutboxes(
  deps: { requester: Requester; subjects: Subjects; clock: Clock },
  source: CollectionRecord,
  shards: number[],
  until: number,
  deadline: number,
  waitMs = OUTBOX_WAIT_MS,
): Promise<void> {
  const { clock } = deps;
  const started = clock.now();
  const stop = Math.min(deadline - ANSWER_MARGIN_MS, started + waitMs);
  // A `until` in the future counts as now: writes made while the restore runs are a race it cannot close.
  // The wall clock, not the injected one: it is compared with the leaders' wall-clock `time`.
  const horizon = Math.min(until, Date.now());
  let pending = shards;
  let heads = new Map<number, OutboxHead>();
  for (;;) {
    const asked = await Promise.all(
      pending.map(async (shard) => {
        const what = `shard ${source.name}/${shard}`;
        try {
          return [shard, await callShard<OutboxHead>(deps.requester, leaderSubject(deps.subjects, source.uid, shard), { type: 'outbox', timeoutMs: 0 }, Math.max(stop, clock.now() + 1), what, clock)] as const;
        } catch (err) {
          throw new UnavailableError(
            `point-in-time restore: could not ask the leader of ${what} which of its writes still wait to be published to the change stream (${describeError(err)}); ` +
              'a restore that read the stream now could miss some of them, so nothing was replayed: retry once the shard has a leader',
            { cause: err },
          );
        }
      }),
    );
    heads = new Map(asked);
    pending = pending.filter((shard) => {
      const oldest = heads.get(shard)?.oldest;
      return oldest != null && Date.parse(oldest.time) <= horizon;
    });
    if (pending.length === 0) return;
    if (clock.now() + OUTBOX_POLL_MS >= stop) break;
    await new Promise<void>((r) => clock.setTimer(r, OUTBOX_POLL_MS));
  }
  const stuck = pending.map((shard) => {
    const h = heads.get(shard) as OutboxHead;
    return `shard ${source.name}/${shard} (leader ${h.node}) has ${h.waiting} write${h.waiting === 1 ? '' : 's'} waiting in its change-stream outbox, the oldest (log index ${h.oldest?.index}) from ${h.oldest?.time}`;
  });
  throw new UnavailableError(
    `point-in-time restore to ${new Date(until).toISOString()}: ${stuck.join('; ')}, at or before until, not published to the change stream after waiting ${((clock.now() - started) / 1000).toFixed(1)} s: ` +
      `the stream does not hold all of the writes up to until, so nothing was replayed. Check that JetStream accepts the stream's messages (the leader's log says why it retries; shoal_changes_outbox_entries counts what waits), then retry the restore`,
  );
}
