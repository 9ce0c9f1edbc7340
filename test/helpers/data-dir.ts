/**
 * What a node's data directory holds, from outside the node: its LMDB environment (the file, each
 * named database's pages, the free pages inside the file) and its index checkpoints. For the churn
 * bench and test (issue 21): when the directory grows, which part grew.
 *
 * The environment is opened read-only in this process for the moment of the reading and closed at
 * once: a read transaction left open would keep the node from reusing the pages it frees.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { DB_NAMES, MAX_NAMED_DBS } from '../../src/storage/node-env.js';

/** Bytes of disk blocks allocated under `path` (files, directories; symlinks not followed): `du -s --block-size=1`. */
export function diskBytes(path: string): number {
  const st = lstatSync(path);
  let bytes = st.blocks * 512;
  if (st.isDirectory()) for (const name of readdirSync(path)) bytes += diskBytes(join(path, name));
  return bytes;
}

/** Pages and entries of one LMDB database. */
export interface DbPages {
  entries: number;
  /** Branch, leaf and overflow pages. */
  pages: number;
  overflowPages: number;
}

export interface LmdbBreakdown {
  pageSize: number;
  /** `data.mdb` on disk (allocated blocks). */
  fileBytes: number;
  /** Pages up to the highest one ever used (the file's high-water mark). */
  usedToPages: number;
  /** By named database (DB_NAMES). */
  dbs: Record<string, DbPages>;
  /** The main database (the names of the others) and the free-page database itself. */
  mainPages: number;
  freeDbPages: number;
  /** Pages below the high-water mark that no database holds: free for reuse (or waiting for an old reader to end). */
  freePages: number;
  readers: number;
}

export interface DataDirBreakdown {
  totalBytes: number;
  lmdb: LmdbBreakdown;
  /** Index checkpoints: directories and bytes, and the bytes of each file name (graph, table, sums) over all groups. */
  checkpoints: { dirs: number; bytes: number; files: Record<string, number> };
  /** Everything else under the data directory, bytes. */
  otherBytes: number;
}

function pagesOf(s: Record<string, number>): number {
  return (s['treeBranchPageCount'] ?? 0) + (s['treeLeafPageCount'] ?? 0) + (s['overflowPages'] ?? 0);
}

/** The LMDB environment at `path` (a node's `<data>/lmdb`), read in one read transaction. */
export async function lmdbBreakdown(path: string): Promise<LmdbBreakdown> {
  const env = open({ path, readOnly: true, maxDbs: MAX_NAMED_DBS });
  try {
    const dbs: Record<string, DbPages> = {};
    let held = 0;
    for (const name of Object.values(DB_NAMES)) {
      let s: Record<string, number>;
      try {
        s = env.openDB({ name, encoding: 'binary' }).getStats() as Record<string, number>;
      } catch {
        continue; // not created yet
      }
      dbs[name] = { entries: s['entryCount'] ?? 0, pages: pagesOf(s), overflowPages: s['overflowPages'] ?? 0 };
      held += pagesOf(s);
    }
    const all = env.getStats() as Record<string, unknown>;
    const mainPages = pagesOf(all as Record<string, number>);
    const freeDbPages = pagesOf(all['free'] as Record<string, number>);
    const usedToPages = (all['lastPageNumber'] as number) + 1;
    const pageSize = all['pageSize'] as number;
    return {
      pageSize,
      fileBytes: diskBytes(join(path, 'data.mdb')),
      usedToPages,
      dbs,
      mainPages,
      freeDbPages,
      // two meta pages at the start of the file
      freePages: Math.max(0, usedToPages - 2 - held - mainPages - freeDbPages),
      readers: all['numReaders'] as number,
    };
  } finally {
    await env.close();
  }
}

/** The whole data directory of a node (`shoal node --data`). */
export async function dataDirBreakdown(dataDir: string): Promise<DataDirBreakdown> {
  const totalBytes = diskBytes(dataDir);
  const lmdbDir = join(dataDir, 'lmdb');
  const lmdb = await lmdbBreakdown(lmdbDir);
  const checkpoints = { dirs: 0, bytes: 0, files: {} as Record<string, number> };
  const shards = join(dataDir, 'shards');
  try {
    for (const g of readdirSync(shards)) {
      for (const c of readdirSync(join(shards, g))) {
        if (!c.startsWith('ckpt-')) continue;
        checkpoints.dirs++;
        for (const f of readdirSync(join(shards, g, c))) {
          const b = diskBytes(join(shards, g, c, f));
          checkpoints.bytes += b;
          checkpoints.files[f] = (checkpoints.files[f] ?? 0) + b;
        }
      }
    }
  } catch {
    // no shards yet
  }
  return { totalBytes, lmdb, checkpoints, otherBytes: totalBytes - diskBytes(lmdbDir) - checkpoints.bytes };
}
