/** What a process and a directory hold: for memory and disk bounds in tests and benches (issue 21). */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Bytes the files under `dir` take on disk (allocated blocks). */
export function diskBytes(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    n += st.isDirectory() ? diskBytes(p) : st.blocks * 512;
  }
  return n;
}

/** A process's anonymous resident memory (`RssAnon`: heaps and malloc, not file-backed pages such as LMDB's map). */
export function rssAnonOf(pid: number | 'self'): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no RssAnon in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
