/**
 * backups.create / list / delete / restore (PROTOCOL.md, Operations, Backups; docs/backups.md).
 * The router only coordinates: each shard's leader writes its own image to the object store, and
 * on restore each replica reads it from there (backup-requests.ts, restore-image.ts).
 */
import type { CollectionSpec } from '../../api/types.js';
import * as f from '../../api/fields.js';
import { collectionName } from '../../api/validate.js';
import { BACKUP_FORMAT, checkManifest, imageObject, type BackupManifest, type BackupShard, type BackupStore } from '../../cluster/backup-store.js';
import type { CollectionRecord } from '../../cluster/metadata.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, UnavailableError, describeError } from '../../runtime/errors.js';
import { leaderSubject, replicaActorName, type ShardStatus } from '../shard-protocol.js';
import type { AdminRouter, AdminRouterDeps } from './router-admin.js';
import { callShard } from './shard-client.js';
import { changesToReplay, parseUntil, replayChanges, untilRefusal } from './point-in-time.js';
import { awaitSourceOutboxes, liveSourceShards } from './point-in-time-outboxes.js';
import { changeIdPrefix } from '../replica/change-publisher.js';
import { groupOf } from '../../cluster/shard-map.js';

/** Backups take longer than other requests: their own default and limit for `timeoutMs`. */
export const BACKUP_TIMEOUT_MS_DEFAULT = 600_000;
export const BACKUP_TIMEOUT_MS_MAX = 3_600_000;
const BACKUP_NAME_RE = /^[A-Za-z0-9_-]{1,128}$/;

export interface BackupsRouterDeps extends AdminRouterDeps {
  admin: AdminRouter;
  backups: () => Promise<BackupStore>;
  version: string;
}

function backupName(v: unknown, path = 'name'): string {
  if (typeof v !== 'string') throw new InvalidArgumentError(`${path} must be a string, got ${f.describeType(v)}`);
  if (!BACKUP_NAME_RE.test(v)) throw new InvalidArgumentError(`${path} ${f.quoted(v)} must match ${BACKUP_NAME_RE.source}`);
  return v;
}

function timeoutOf(v: unknown): number {
  return f.optionalInteger(v, 'timeoutMs', 1, BACKUP_TIMEOUT_MS_MAX, BACKUP_TIMEOUT_MS_DEFAULT);
}

/** `docs-20261201T214000Z`: the collection and the UTC time to the second. */
export function defaultBackupName(collection: string, at: Date): string {
  return `${collection}-${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

function specOf(r: CollectionRecord): CollectionSpec {
  return { name: r.name, dim: r.dim, metric: r.metric, shards: r.shards, replicas: r.replicas, sharding: r.sharding, hnsw: r.hnsw, ...(r.changeStream ? { changeStream: true } : {}), ...(r.indexes ? { indexes: r.indexes } : {}) };
}

export class BackupsRouter {
  constructor(private readonly deps: BackupsRouterDeps) {}

  async create(raw: unknown): Promise<{ backup: BackupManifest }> {
    const b = f.body(raw, 'backups.create', ['collection', 'name', 'timeoutMs']);
    if (b['collection'] === undefined) throw new InvalidArgumentError('collection is required');
    const collection = collectionName(b['collection'], 'collection');
    const createdAt = new Date();
    const name = b['name'] === undefined ? defaultBackupName(collection, createdAt) : backupName(b['name']);
    const deadline = this.deps.clock.now() + timeoutOf(b['timeoutMs']);
    const c = await this.deps.collections.refresh(collection);
    if (!c) throw new NotFoundError(`collection '${collection}' does not exist`);
    const r = c.record;
    if (r.resharding) throw new UnavailableError(`collection '${collection}' is being resharded; back it up once the reshard is done`);
    if (r.restoring) throw new UnavailableError(`collection '${collection}' is being restored from backup '${r.restoring.backup}'`);
    const store = await this.deps.backups();
    if ((await store.getManifest(name)) !== null) throw new AlreadyExistsError(`backup '${name}' already exists`);
    await store.deleteObjects(name); // what an earlier, failed create of the same name left
    const shards = r.placement.map((p) => p.shard);
    const results = await Promise.allSettled(
      shards.map((shard) =>
        callShard<BackupShard>(this.deps.requester, leaderSubject(this.deps.subjects, r.uid, shard), { type: 'backup', object: imageObject(name, shard), timeoutMs: 0 }, deadline, `shard ${collection}/${shard}`, this.deps.clock),
      ),
    );
    const failed = results.findIndex((x) => x.status === 'rejected');
    if (failed >= 0) {
      await store.deleteObjects(name).catch(() => undefined);
      const why = (results[failed] as PromiseRejectedResult).reason;
      throw new UnavailableError(`backup '${name}' failed: shard ${collection}/${shards[failed]}: ${describeError(why)}; nothing of it was kept`);
    }
    const got = results
      .map((x) => (x as PromiseFulfilledResult<BackupShard>).value)
      .map((s) => ({ shard: s.shard, index: s.index, points: s.points, bytes: s.bytes, ...(r.changeStream ? { changeIdPrefix: changeIdPrefix(groupOf(r, s.shard), s.shard) } : {}) }));
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      shoalVersion: this.deps.version,
      name,
      collection,
      uid: r.uid,
      createdAt: createdAt.toISOString(),
      completedAt: new Date().toISOString(),
      points: got.reduce((n, s) => n + s.points, 0),
      bytes: got.reduce((n, s) => n + s.bytes, 0),
      spec: specOf(r),
      shards: got,
    };
    try {
      await store.putManifest(manifest);
    } catch (err) {
      await store.deleteObjects(name).catch(() => undefined);
      throw new UnavailableError(`backup '${name}' failed writing its manifest: ${describeError(err)}; nothing of it was kept`);
    }
    return { backup: manifest };
  }

  async list(raw: unknown): Promise<{ backups: BackupManifest[] }> {
    const b = f.body(raw, 'backups.list', ['collection', 'timeoutMs']);
    const collection = b['collection'] === undefined ? undefined : collectionName(b['collection'], 'collection');
    timeoutOf(b['timeoutMs']);
    const all = await (await this.deps.backups()).list();
    return { backups: collection === undefined ? all : all.filter((m) => m.collection === collection) };
  }

  async delete(raw: unknown): Promise<{ deleted: true }> {
    const b = f.body(raw, 'backups.delete', ['name', 'timeoutMs']);
    if (b['name'] === undefined) throw new InvalidArgumentError('name is required');
    const name = backupName(b['name']);
    timeoutOf(b['timeoutMs']);
    if (!(await (await this.deps.backups()).delete(name))) throw new NotFoundError(`backup '${name}' does not exist`);
    return { deleted: true };
  }

  async restore(raw: unknown): Promise<{ collection: unknown }> {
    const b = f.body(raw, 'backups.restore', ['name', 'as', 'until', 'timeoutMs']);
    if (b['name'] === undefined) throw new InvalidArgumentError('name is required');
    const name = backupName(b['name']);
    const as = b['as'] === undefined ? undefined : collectionName(b['as'], 'as');
    const until = b['until'] === undefined ? undefined : parseUntil(b['until']);
    const deadline = this.deps.clock.now() + timeoutOf(b['timeoutMs']);
    const store = await this.deps.backups();
    const raw2 = await store.getManifest(name);
    if (raw2 === null) throw new NotFoundError(`backup '${name}' does not exist`);
    const m = checkManifest(name, raw2);
    const refused = until === undefined ? null : untilRefusal(m, until);
    if (refused) throw new InvalidArgumentError(refused);
    if (until !== undefined) await this.sourceOf(m);
    const target = as ?? m.collection;
    if (await this.deps.meta.getCollection(target)) throw new AlreadyExistsError(`collection '${target}' already exists; restore under another name with "as"`);
    const record = await this.deps.admin.createRecord({ ...m.spec, name: target }, deadline, { restoring: { backup: name, startedAt: new Date().toISOString() } });
    try {
      await Promise.all(
        m.shards.map(async (s) => {
          const what = `shard ${target}/${s.shard}`;
          const r = await callShard<{ index: number }>(this.deps.requester, leaderSubject(this.deps.subjects, record.uid, s.shard), { type: 'restore', object: imageObject(name, s.shard), timeoutMs: 0 }, deadline, what, this.deps.clock);
          await this.appliedEverywhere(record, s.shard, r.index, deadline, what);
        }),
      );
      if (until !== undefined) {
        if (!this.deps.changeStreams) throw new UnavailableError('this node reads no change streams');
        // the stream must hold every source write up to `until` before it is read
        const source = await this.sourceOf(m);
        await awaitSourceOutboxes(this.deps, source, liveSourceShards(source, m), until, deadline);
        const changes = await changesToReplay(this.deps.changeStreams, m, until);
        await replayChanges(this.deps, record.uid, m.uid as string, changes, deadline);
      }
      await this.finish(target, record.uid);
    } catch (err) {
      // nothing half restored stays: the collection this restore created goes
      await this.dropCreated(target, record.uid).catch(() => undefined);
      if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`backup '${name}' cannot be restored: ${err.message}`);
      throw err;
    }
    const fresh = await this.deps.collections.refresh(target);
    return { collection: await this.deps.admin.describeRecord(fresh?.record ?? record, deadline) };
  }

  /**
   * The live collection a point-in-time restore's backup was made of: its change stream and its
   * shards' outboxes hold the writes to replay. Dropped (or dropped and created again: another uid),
   * its stream went with it: NOT_FOUND.
   */
  private async sourceOf(m: BackupManifest): Promise<CollectionRecord> {
    const c = await this.deps.collections.refresh(m.collection);
    if (!c || c.record.uid !== m.uid) {
      throw new NotFoundError(`collection '${m.collection}' that backup '${m.name}' was made of was dropped${c ? ' (the one of that name now is another collection)' : ''}, and its change stream with it: nothing to replay up to until; restore without until`);
    }
    return c.record;
  }

  /**
   * Waits until every replica of the shard has applied its restore entry: a replica that has not
   * would answer an `eventual` read from its empty state.
   */
  private async appliedEverywhere(r: CollectionRecord, shard: number, index: number, deadline: number, what: string): Promise<void> {
    const nodes = r.placement[shard]?.replicas ?? [];
    let behind = nodes;
    while (this.deps.clock.now() < deadline) {
      const left = Math.max(1, Math.min(2_000, deadline - this.deps.clock.now()));
      const applied = await Promise.all(
        behind.map((node) => this.deps.requester.request<ShardStatus>(this.deps.subjects.actor(node, replicaActorName(r.uid, shard)), { type: 'status' }, { timeoutMs: left }).then((st) => st.appliedIndex >= index, () => false)),
      );
      behind = behind.filter((_, i) => !applied[i]);
      if (behind.length === 0) return;
      await new Promise<void>((res) => this.deps.clock.setTimer(res, 100));
    }
    throw new UnavailableError(`${what}: the replicas on ${behind.join(', ')} did not load the backup's image before the deadline`);
  }

  /** Clears the record's `restoring`: the collection serves. */
  private async finish(name: string, uid: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await this.deps.meta.getCollection(name);
      if (!cur || cur.value.uid !== uid) throw new UnavailableError(`collection '${name}' was dropped while it was being restored`);
      try {
        await this.deps.meta.updateCollection({ ...cur.value, restoring: null }, cur.revision);
        return;
      } catch {
        // changed meanwhile (a placement update): read it again
      }
    }
    throw new UnavailableError(`collection '${name}' kept changing while its restore finished; drop it and restore again`);
  }

  private async dropCreated(name: string, uid: string): Promise<void> {
    const cur = await this.deps.meta.getCollection(name);
    if (cur && cur.value.uid === uid) await this.deps.meta.deleteCollection(name, cur.revision);
    this.deps.collections.forget(name);
  }
}
