/**
 * One LMDB environment per node (DESIGN.md, Storage). Every store of the node — the Raft log and
 * hard state of all its groups, snapshot metadata, the points, the write-dedup table — is a named
 * sub-database of this one environment, so that all groups' writes queued in one turn of the
 * event loop commit in one transaction (lmdb-js batches them) and one flush makes them durable.
 *
 * Durability rule: a write is durable only once `env.flushed` has resolved after it (lmdb-js
 * resolves a write's own promise at commit, before the flush, because of `overlappingSync`).
 * Nothing that promises durability to another node (a Raft vote, an append acknowledgement)
 * may leave before that.
 */
import { mkdirSync } from 'node:fs';
import { open, type RootDatabase } from 'lmdb';

/** The names of the node's sub-databases; each store opens its own with these names. */
export const DB_NAMES = {
  raftLog: 'raft-log',
  raftState: 'raft-state',
  raftSnapshot: 'raft-snapshot',
  points: 'points',
  dedup: 'dedup',
  shardMeta: 'shard-meta',
} as const;

/** Upper bound of the memory map; LMDB only uses what it needs. */
export const DEFAULT_MAP_SIZE_BYTES = 64 * 2 ** 30;
export const MAX_NAMED_DBS = 64;

export interface NodeEnvOptions {
  /** Directory of the environment (created if missing). */
  path: string;
  mapSizeBytes?: number;
}

export type NodeEnv = RootDatabase;

export function openNodeEnv(opts: NodeEnvOptions): NodeEnv {
  mkdirSync(opts.path, { recursive: true });
  return open({
    path: opts.path,
    maxDbs: MAX_NAMED_DBS,
    mapSize: opts.mapSizeBytes ?? DEFAULT_MAP_SIZE_BYTES,
    // overlappingSync is lmdb-js's default on Linux: commit first, flush after; `flushed` tells when.
    overlappingSync: true,
  });
}

/** The environment's data file (`<path>/data.mdb`), as messages about damaged records name it. */
export function dataFileOf(env: NodeEnv): string {
  const path = (env as unknown as { path?: unknown }).path;
  return typeof path === 'string' ? `${path}/data.mdb` : 'data.mdb';
}

/** The environment's directory. */
export function envPathOf(env: NodeEnv): string {
  const path = (env as unknown as { path?: unknown }).path;
  if (typeof path !== 'string') throw new Error('the LMDB environment does not tell its path');
  return path;
}
