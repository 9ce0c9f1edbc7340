/**
 * Backups in a JetStream object store (`<prefix>-backups`, docs/backups.md): one object per shard
 * image (`<backup>/shard-<n>`: the shard state machine's snapshot stream, byte for byte) and one
 * manifest (`<backup>/manifest`, JSON). The manifest is written last and deleted first: a backup
 * without one is incomplete, and is neither listed nor restorable.
 */
import { createHash } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CollectionSpec } from '../api/types.js';
import { InvalidArgumentError, UnavailableError, describeError } from '../runtime/errors.js';

/** The manifest format this version writes and reads (a newer one is refused, INVALID_ARGUMENT). */
export const BACKUP_FORMAT = 1;
/** Object store chunk size: well under NATS's default 1 MiB max payload. */
export const BACKUP_CHUNK_BYTES = 512 * 1024;
/** Bytes a reader of an image asks JetStream for ahead of what it has used. */
const READ_AHEAD_BYTES = 32 * 1024 * 1024;

export interface BackupShard {
  shard: number;
  /** The Raft index of its shard the image is consistent at. */
  index: number;
  points: number;
  bytes: number;
  /** Its change stream's message ids start with `<this>/` (`<uid>/<shard>`, or `<uid>-e<epoch>/<shard>` after a reshard); absent in older backups. */
  changeIdPrefix?: string;
}

export interface BackupManifest {
  format: number;
  shoalVersion: string;
  name: string;
  collection: string;
  /** The backed-up collection's uid (its change stream's message ids start with it); absent in backups of older versions. */
  uid?: string;
  createdAt: string;
  /** When every shard's image was written: a point-in-time restore must be to this or later. Absent in older backups. */
  completedAt?: string;
  points: number;
  bytes: number;
  spec: CollectionSpec;
  shards: BackupShard[];
}

export function imageObject(backup: string, shard: number): string {
  return `${backup}/shard-${shard}`;
}

function manifestObject(backup: string): string {
  return `${backup}/manifest`;
}

/** Turns an async iterable of chunks into the web stream the object store reads. */
function toReadable(chunks: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = chunks[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const r = await it.next();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}

export class BackupStore {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly os: ObjectStore,
    readonly bucket: string,
  ) {}

  static bucketName(prefix: string): string {
    return `${prefix}-backups`;
  }

  /** Opens the bucket, creating it when missing (file storage, `replicas` copies). */
  static async open(nc: NatsConnection, prefix: string, replicas = 1): Promise<BackupStore> {
    const bucket = BackupStore.bucketName(prefix);
    try {
      const os = await new Objm(nc).create(bucket, { storage: 'file', replicas } as never);
      return new BackupStore(nc, os, bucket);
    } catch (err) {
      throw new UnavailableError(`cannot open the backups object store ${bucket} (is JetStream enabled, and may this user use it?): ${describeError(err)}`, { cause: err });
    }
  }

  /** Writes an object from `chunks`; its size in bytes. */
  async putImage(object: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
    // The object store client does not cancel its reader when a put fails: the image's source (an
    // LMDB read transaction, open checkpoint files) is released here whatever happens.
    const it = chunks[Symbol.asyncIterator]();
    try {
      const info = await this.os.put({ name: object, options: { max_chunk_size: BACKUP_CHUNK_BYTES } }, toReadable({ [Symbol.asyncIterator]: () => it }));
      return info.size;
    } finally {
      await it.return?.();
    }
  }

  /**
   * An object's bytes as they arrive, its SHA-256 digest checked at the end. Read with an ordered
   * pull consumer on the object's chunk subject, not the object store client's `get` (an ordered
   * push consumer with flow control, and a SHA-256 in JavaScript): measured on nats-server 2.9,
   * 100 MB at 172 MB/s this way, 23 MB/s through `get`.
   */
  async *readImage(object: string): AsyncIterable<Uint8Array> {
    const info = await this.os.info(object);
    // Not INVALID_ARGUMENT: whether it is there depends on when a replica looks (a backup deleted
    // after its restore, replayed later by a replica rebuilt from its log), so replicas could
    // decide differently. A replica that cannot read it fails, and is rebuilt from its peers.
    if (!info || info.deleted) throw new UnavailableError(`backup object ${object} is missing from bucket ${this.bucket}`);
    if (info.chunks === 0) return;
    const consumer = await jetstream(this.nc).consumers.get(`OBJ_${this.bucket}`, { filter_subjects: `$O.${this.bucket}.C.${info.nuid}` });
    const messages = await consumer.consume({ max_bytes: READ_AHEAD_BYTES });
    const sha = createHash('sha256');
    let chunks = 0;
    let bytes = 0;
    try {
      for await (const m of messages) {
        sha.update(m.data);
        chunks++;
        bytes += m.data.length;
        yield m.data;
        if (chunks === info.chunks) break;
      }
    } finally {
      await messages.close().catch(() => undefined);
    }
    const digest = `SHA-256=${sha.digest('base64url')}`;
    if (chunks !== info.chunks || bytes !== info.size || digest.replace(/=+$/, '') !== info.digest.replace(/=+$/, '')) {
      throw new UnavailableError(`backup object ${object} read back damaged or short: ${chunks}/${info.chunks} chunks, ${bytes}/${info.size} bytes, digest ${digest} (stored ${info.digest})`);
    }
  }

  async putManifest(m: BackupManifest): Promise<void> {
    await this.os.putBlob({ name: manifestObject(m.name) }, new TextEncoder().encode(JSON.stringify(m)));
  }

  /** The manifest of `backup` as stored (checked by {@link checkManifest}), or null. */
  async getManifest(backup: string): Promise<unknown> {
    const data = await this.os.getBlob(manifestObject(backup));
    if (data === null) return null;
    try {
      return JSON.parse(new TextDecoder().decode(data)) as unknown;
    } catch (err) {
      throw new InvalidArgumentError(`backup '${backup}': its manifest is not JSON (${(err as Error).message})`);
    }
  }

  /** Every complete backup's manifest (those this version cannot read are left out). */
  async list(): Promise<BackupManifest[]> {
    const names = (await this.os.list()).filter((o) => !o.deleted && o.name.endsWith('/manifest')).map((o) => o.name.slice(0, -'/manifest'.length));
    const out: BackupManifest[] = [];
    for (const name of names) {
      try {
        out.push(checkManifest(name, await this.getManifest(name)));
      } catch {
        // unreadable by this version: not listed (restore names it)
      }
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
  }

  /** Deletes the manifest first, then every other object of `backup`; whether a manifest was there. */
  async delete(backup: string): Promise<boolean> {
    const info = await this.os.info(manifestObject(backup));
    const had = info !== null && !info.deleted;
    if (had) await this.os.delete(manifestObject(backup));
    await this.deleteObjects(backup);
    return had;
  }

  /** Deletes the objects of `backup` (the parts of an incomplete one, too). */
  async deleteObjects(backup: string): Promise<void> {
    for (const o of await this.os.list()) {
      if (!o.deleted && o.name.startsWith(`${backup}/`)) await this.os.delete(o.name);
    }
  }
}

/** A manifest this version can restore, or INVALID_ARGUMENT saying what is wrong with it. */
export function checkManifest(name: string, raw: unknown): BackupManifest {
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`backup '${name}' cannot be read by this version: ${why}`);
  };
  if (typeof raw !== 'object' || raw === null) return bad('its manifest is not an object');
  const m = raw as Partial<BackupManifest>;
  if (typeof m.format !== 'number') return bad('its manifest has no format');
  if (m.format !== BACKUP_FORMAT) return bad(`its format is ${m.format} (written by Shoal ${String(m.shoalVersion)}); this version reads format ${BACKUP_FORMAT}`);
  if (typeof m.collection !== 'string' || typeof m.spec !== 'object' || m.spec === null || !Array.isArray(m.shards)) return bad('its manifest lacks collection, spec or shards');
  if (m.shards.length !== m.spec.shards) return bad(`its manifest has ${m.shards.length} shard images for ${String(m.spec.shards)} shards`);
  return m as BackupManifest;
}

/** Opens the bucket on first use, once (again after a failure). */
export function lazyBackupStore(nc: NatsConnection, prefix: string, replicas = 1): () => Promise<BackupStore> {
  let opening: Promise<BackupStore> | undefined;
  return () => {
    opening ??= BackupStore.open(nc, prefix, replicas).catch((err: unknown) => {
      opening = undefined;
      throw err;
    });
    return opening;
  };
}

/** An image's bytes through a lazily opened bucket (what shard state machines restore from). */
export function imagesOf(open: () => Promise<BackupStore>): (object: string) => AsyncIterable<Uint8Array> {
  return async function* images(object: string) {
    yield* (await open()).readImage(object);
  };
}
