/** A process's resident memory from /proc/<pid>/status, and a directory's disk usage as `du` counts it. */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ProcMemory {
  /** Anonymous resident memory (heaps, malloc, stacks), bytes: what the process costs in RAM. */
  rssAnon: number;
  /** Resident file-backed pages (code, memory-mapped files such as LMDB's map), bytes: page cache the kernel can drop. */
  rssFile: number;
}

export function procMemory(pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kB = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]) * 1024;
  };
  return { rssAnon: kB('RssAnon'), rssFile: kB('RssFile') };
}

/** Bytes of disk blocks allocated under `path` (files, directories; symlinks not followed): `du -s --block-size=1`. */
export function diskUsage(path: string): number {
  const st = lstatSync(path);
  let bytes = st.blocks * 512;
  if (st.isDirectory()) for (const name of readdirSync(path)) bytes += diskUsage(join(path, name));
  return bytes;
}
