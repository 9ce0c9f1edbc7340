/**
 * The backups requests of PROTOCOL.md ("Operations", Backups; docs/backups.md). None is hedged:
 * a second copy of a create or restore would do the work twice.
 */
import type { CollectionDescription, CollectionSpec } from '../api/types.js';
import type { ShoalClient } from './client.js';

/** Backups wait longer than other requests by default (the server's default is 10 minutes). */
export const BACKUP_TIMEOUT_MS = 600_000;

export interface BackupShardInfo {
  shard: number;
  /** The Raft index of its shard the image is consistent at. */
  index: number;
  points: number;
  bytes: number;
}

export interface BackupInfo {
  name: string;
  collection: string;
  /** RFC 3339. */
  createdAt: string;
  points: number;
  bytes: number;
  spec: CollectionSpec;
  shards: BackupShardInfo[];
  format: number;
  shoalVersion: string;
}

export class BackupsClient {
  constructor(private readonly client: ShoalClient) {}

  async create(collection: string, opts: { name?: string; timeoutMs?: number } = {}): Promise<BackupInfo> {
    const body = { collection, ...(opts.name !== undefined ? { name: opts.name } : {}) };
    return (await this.call<{ backup: BackupInfo }>('create', body, opts.timeoutMs)).backup;
  }

  async list(opts: { collection?: string; timeoutMs?: number } = {}): Promise<BackupInfo[]> {
    return (await this.call<{ backups: BackupInfo[] }>('list', opts.collection !== undefined ? { collection: opts.collection } : {}, opts.timeoutMs ?? 10_000)).backups;
  }

  async delete(name: string, timeoutMs?: number): Promise<boolean> {
    return (await this.call<{ deleted: boolean }>('delete', { name }, timeoutMs ?? 30_000)).deleted;
  }

  /** Creates collection `as` (default: the backup's collection's name) from backup `name`; its describe. */
  async restore(name: string, opts: { as?: string; until?: string; timeoutMs?: number } = {}): Promise<CollectionDescription> {
    const body = { name, ...(opts.as !== undefined ? { as: opts.as } : {}), ...(opts.until !== undefined ? { until: opts.until } : {}) };
    return (await this.call<{ collection: CollectionDescription }>('restore', body, opts.timeoutMs)).collection;
  }

  private call<T>(op: string, body: Record<string, unknown>, timeoutMs = BACKUP_TIMEOUT_MS): Promise<T> {
    return this.client.request<T>(this.client.adminSubject('backups', op), body, timeoutMs, { hedge: false });
  }
}
