/**
 * Point-in-time restore (PROTOCOL.md, Backups, `until`; docs/backups.md): after a backup's shard
 * images are loaded into the new collection, the writes its collection's change stream holds
 * after each shard's backup index, up to `until`, are applied again, in each shard's commit order.
 *
 * Each message is identified by its `Nats-Msg-Id`, `<collection uid>/<shard>/<index>`: only the
 * backed-up collection's own messages count (a collection of the same name dropped and created
 * again has another uid; a reshard after the backup gives new groups new prefixes). Replayed writes
 * carry the request id `pitr/<source uid>/<shard>/<index>`, so a write the restore retries is
 * applied once. Before the stream is read, the source's outboxes are checked to hold no write up to
 * `until` that the stream does not have yet (point-in-time-outboxes.ts).
 */
import * as f from '../../api/fields.js';
import type { BackupManifest } from '../../cluster/backup-store.js';
import type { ChangeStreams } from '../../cluster/change-streams.js';
import type { Clock } from '../../runtime/clock.js';
import { InvalidArgumentError } from '../../runtime/errors.js';
import { leaderSubject, type ShardPoint, type ShardWrite } from '../shard-protocol.js';
import type { Subjects } from '../../runtime/subjects.js';
import { callShard, type Requester } from './shard-client.js';
import { splitChangeId } from '../replica/change-publisher.js';

/** `2026-12-01T21:40:00Z`, `2026-12-01T21:40:00.123+01:00`: a full date, time and zone. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** How long before the backup was made the stream is read from (clocks of nodes and NATS servers differ). */
const READ_MARGIN_MS = 10 * 60_000;

/** `until` as milliseconds since the epoch; INVALID_ARGUMENT unless it is an RFC 3339 time. */
export function parseUntil(v: unknown): number {
  if (typeof v !== 'string') throw new InvalidArgumentError(`until must be an RFC 3339 time such as "2026-12-01T21:40:00Z", got ${f.describeType(v)}`);
  const t = Date.parse(v);
  if (!RFC3339.test(v) || !Number.isFinite(t)) throw new InvalidArgumentError(`until ${f.quoted(v)} is not an RFC 3339 time such as "2026-12-01T21:40:00Z"`);
  return t;
}

/** Why `until` cannot be used with this backup, or null. */
export function untilRefusal(m: BackupManifest, until: number): string | null {
  if (!m.spec.changeStream) return `backup '${m.name}': collection '${m.collection}' had no change stream, so there is nothing to replay up to until`;
  if (typeof m.uid !== 'string') return `backup '${m.name}' was made by a version that did not record its collection's uid; restore it without until`;
  // each shard's image was taken somewhere between createdAt and completedAt: it may hold writes of
  // any time before completedAt, so only a later `until` can be honoured exactly
  const complete = m.completedAt ?? m.createdAt;
  if (until < Date.parse(complete)) return `until (${new Date(until).toISOString()}) is before backup '${m.name}' was complete (${complete}); use an earlier backup`;
  return null;
}

interface ChangeBody {
  shard: number;
  index: number;
  time: string;
  op: 'upsert' | 'delete';
  points?: { id: string; vector: number[]; metadata?: Record<string, unknown>; shardKey?: string }[];
  ids?: string[];
}

/** Each shard's writes to replay, in commit order: after its backup index, at or before `until`. */
export async function changesToReplay(streams: ChangeStreams, m: BackupManifest, until: number): Promise<Map<number, ChangeBody[]>> {
  // each backed-up shard by its message id prefix (older backups: the first groups' `<uid>/<shard>`)
  const byPrefix = new Map(m.shards.map((s) => [s.changeIdPrefix ?? `${m.uid}/${s.shard}`, s]));
  const out = new Map<number, ChangeBody[]>(m.shards.map((s) => [s.shard, []]));
  const from = new Date(Date.parse(m.createdAt) - READ_MARGIN_MS);
  for await (const msg of streams.read(m.collection, from)) {
    const { prefix, index } = splitChangeId(msg.msgId);
    const b = msg.body as ChangeBody;
    const shard = byPrefix.get(prefix);
    if (!shard) {
      // another group of this collection (a reshard after the backup made it) holding a write the
      // restore would need: it cannot be placed on the backup's shards
      if ((prefix.startsWith(`${m.uid}/`) || prefix.startsWith(`${m.uid}-e`)) && Date.parse(b.time) <= until) {
        throw new InvalidArgumentError(`collection '${m.collection}' was resharded after backup '${m.name}' and before until: a point-in-time restore cannot replay writes across a reshard; restore a backup made after it`);
      }
      continue;
    }
    if (!Number.isInteger(index) || index <= shard.index) continue;
    if (Date.parse(b.time) > until) continue;
    const list = out.get(shard.shard) as ChangeBody[];
    if (list.length > 0 && (list[list.length - 1] as ChangeBody).index >= index) continue; // a republished one
    list.push({ ...b, index });
  }
  return out;
}

/** Applies each shard's writes to the restored collection `uid`, shard by shard in order; returns how many. */
export async function replayChanges(
  deps: { requester: Requester; subjects: Subjects; clock: Clock },
  uid: string,
  /** The backed-up collection's uid: in the request ids, so that they cannot meet ids an image's dedup table inherited. */
  sourceUid: string,
  changes: Map<number, ChangeBody[]>,
  deadline: number,
): Promise<number> {
  const counts = await Promise.all(
    [...changes].map(async ([shard, list]) => {
      for (const c of list) {
        const write: ShardWrite =
          c.op === 'upsert'
            ? { op: 'upsert', points: (c.points ?? []).map((p) => ({ id: p.id, vector: Float32Array.from(p.vector), ...(p.metadata ? { metadata: p.metadata as ShardPoint['metadata'] } : {}), ...(p.shardKey !== undefined ? { shardKey: p.shardKey } : {}) })) }
            : { op: 'delete', ids: c.ids ?? [] };
        await callShard(
          deps.requester,
          leaderSubject(deps.subjects, uid, shard),
          { type: 'write', write, requestId: `pitr/${sourceUid}/${shard}/${c.index}`, concern: 'majority', timeoutMs: 0, mapEpoch: 0 },
          deadline,
          `shard ${shard} (replaying the change stream)`,
          deps.clock,
        );
      }
      return list.length;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}
