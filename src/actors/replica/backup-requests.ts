/**
 * A shard leader's part in backups (docs/backups.md). `backup`: it streams its state machine's
 * image, consistent at its applied index, into the backups object store itself (the bytes never
 * pass through the router); its applies and reads go on meanwhile (the image reads one pinned
 * LMDB read transaction). `restore`: it proposes a `restore` entry, answered once every voter
 * applied it (each replica downloads and installs the image: restore-image.ts); the router then
 * waits for every replica to have applied it (router-backups.ts).
 */
import type { BackupStore } from '../../cluster/backup-store.js';
import { InternalError, InvalidArgumentError, NotLeaderError, UnavailableError } from '../../runtime/errors.js';
import { encodeCommand } from '../../shard/mod.js';
import type { ReplicatedGroup, ShardStore } from './replica-actor.js';

export interface ShardBackup {
  shard: number;
  index: number;
  points: number;
  bytes: number;
}

export interface BackupTarget {
  collection: string;
  shard: number;
  node: string;
  /** The backups object store (opened on first use). */
  backups?: (() => Promise<BackupStore>) | undefined;
}

export async function backupShard(t: BackupTarget, store: ShardStore, leading: boolean, object: string): Promise<ShardBackup> {
  const what = `shard ${t.collection}/${t.shard}`;
  if (!leading) throw new NotLeaderError(`${what}: node ${t.node} does not lead`);
  if (!t.backups || !store.snapshot) throw new UnavailableError(`${what}: node ${t.node} has no access to the backups object store`);
  const bucket = await t.backups();
  // the index saved as it is now, so that a restore loads it whole (no journal to replay)
  const image = await store.snapshot({ ownCheckpoint: true });
  const bytes = await bucket.putImage(object, image.chunks);
  return { shard: t.shard, index: image.appliedIndex, points: image.points, bytes };
}

export async function restoreShard(t: BackupTarget, group: ReplicatedGroup, object: string, timeoutMs: number): Promise<{ shard: number; index: number; points: number; from: number }> {
  const what = `shard ${t.collection}/${t.shard}`;
  const { index, result } = await group.propose(encodeCommand({ type: 'restore', object, at: Date.now() }), { concern: 'majority', timeoutMs });
  const r = result as { restored?: { points: number; from: number }; rejected?: { message: string } } | undefined;
  if (r?.restored) return { shard: t.shard, index, points: r.restored.points, from: r.restored.from };
  if (r?.rejected) throw new InvalidArgumentError(`${what}: ${r.rejected.message}`);
  throw new InternalError(`${what}: unexpected result of a restore entry: ${JSON.stringify(r)}`);
}
