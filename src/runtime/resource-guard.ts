/**
 * A node's resource limits on disk space and memory (docs/operations.md, Resource limits). Both
 * are sampled on a timer, never on the write path: a write asks {@link ResourceGuard.writeRefusal},
 * which reads one field. While a limit is passed, the node refuses writes with an
 * {@link OverloadedError} (UNAVAILABLE to a client) naming the node, the limit and the cause, and
 * it keeps serving reads; once the next sample finds the limit clear again, writes resume by
 * themselves.
 *
 * Why a free-space reserve and not the disk's own ENOSPC: lmdb-js (3.5.6, measured on a full
 * tmpfs) fails the commit that meets ENOSPC and its `flushed` promise then never settles, so a
 * node that lets its disk fill can neither acknowledge nor recover without a restart. Keeping
 * writes from reaching a full disk is what lets a node recover by itself.
 */
import { readFile, statfs } from 'node:fs/promises';
import type { Clock, Timer } from './clock.js';
import { OverloadedError } from './errors.js';
import type { Logger } from './logger.js';

/** Free bytes kept on the data directory's filesystem by default; below them writes are refused. */
export const DEFAULT_MIN_FREE_DISK_BYTES = 256 * 2 ** 20;
/** How often disk space and memory are sampled. */
export const RESOURCE_PROBE_MS = 250;
/**
 * Writes are refused once memory reaches this fraction of `--max-memory`, so that they stop
 * before the process passes it: what one probe interval of writes adds (batches in flight, their
 * index inserts) must fit in the rest.
 */
export const MEMORY_REFUSE_FRACTION = 0.9;

export interface ResourceGuardOptions {
  nodeId: string;
  /** The node's data directory: its filesystem's free space is watched. */
  dataDir: string;
  /** Free bytes to keep (0 = only a completely full disk refuses writes); default {@link DEFAULT_MIN_FREE_DISK_BYTES}. */
  minFreeDiskBytes?: number;
  /** The process's memory limit in bytes (undefined: none). */
  maxMemoryBytes?: number | undefined;
  clock: Clock;
  log: Logger;
  /** Sampling period; default {@link RESOURCE_PROBE_MS}. */
  probeMs?: number;
  /** Ports, for tests: free bytes of the filesystem at `path`, and the process's memory in bytes. */
  freeDiskBytes?: (path: string) => Promise<{ free: number; size: number }>;
  memoryBytes?: () => Promise<number>;
}

/** The limit that refuses writes, named after its flag (`--min-free-disk`, `--max-memory`); a metric label. */
export type ResourceLimit = 'min_free_disk' | 'max_memory';

/** A write refused by a resource limit: UNAVAILABLE to the client (as any {@link OverloadedError}); `limit` says which. */
export class ResourceLimitError extends OverloadedError {
  constructor(
    message: string,
    readonly limit: ResourceLimit,
  ) {
    super(message);
  }
}

/** What the guard last measured. */
export interface ResourceSample {
  freeDiskBytes: number;
  diskBytes: number;
  memoryBytes: number;
  /** Why writes are refused now, or null. */
  refusal: string | null;
}

export class ResourceGuard {
  readonly minFreeDiskBytes: number;
  readonly maxMemoryBytes: number | undefined;
  private readonly probeMs: number;
  private readonly freeDisk: (path: string) => Promise<{ free: number; size: number }>;
  private readonly memory: () => Promise<number>;
  private refusal: string | null = null;
  private refusalLimit: ResourceLimit | null = null;
  private last: ResourceSample = { freeDiskBytes: Number.NaN, diskBytes: Number.NaN, memoryBytes: Number.NaN, refusal: null };
  private timer: Timer | undefined;
  private stopped = false;

  private constructor(private readonly o: ResourceGuardOptions) {
    this.minFreeDiskBytes = o.minFreeDiskBytes ?? DEFAULT_MIN_FREE_DISK_BYTES;
    this.maxMemoryBytes = o.maxMemoryBytes;
    this.probeMs = o.probeMs ?? RESOURCE_PROBE_MS;
    this.freeDisk = o.freeDiskBytes ?? statfsFree;
    this.memory = o.memoryBytes ?? processMemoryBytes;
  }

  /** A guard that has taken its first sample (so a node started on a full disk refuses its first write). */
  static async start(o: ResourceGuardOptions): Promise<ResourceGuard> {
    const g = new ResourceGuard(o);
    await g.probe();
    g.schedule();
    return g;
  }

  /** Why writes are refused now (the message of the error to answer), or null. One field read. */
  writeRefusal(): string | null {
    return this.refusal;
  }

  /** The error to refuse a write with, or undefined when writes are allowed. */
  writeError(): ResourceLimitError | undefined {
    return this.refusal === null ? undefined : new ResourceLimitError(this.refusal, this.refusalLimit ?? 'min_free_disk');
  }

  sample(): ResourceSample {
    return { ...this.last };
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** Takes one sample now and updates the refusal. */
  async probe(): Promise<void> {
    const { nodeId, dataDir } = this.o;
    let why: string | null = null;
    let limit: ResourceLimit | null = null;
    let disk = { free: Number.NaN, size: Number.NaN };
    try {
      disk = await this.freeDisk(dataDir);
      if (disk.free <= this.minFreeDiskBytes) {
        limit = 'min_free_disk';
        why = `node ${nodeId}: disk full (ENOSPC) at ${dataDir}: ${mib(disk.free)} free of ${mib(disk.size)}, at or below the ${mib(this.minFreeDiskBytes)} kept free (--min-free-disk); writes are refused until space is freed, reads are served`;
      }
    } catch (err) {
      // A failed statfs says nothing about space: keep what the last sample said.
      this.o.log.warn('free disk space could not be read', { path: dataDir, error: String(err) });
      why = this.refusal?.includes('disk full') ? this.refusal : null;
      limit = why === null ? null : this.refusalLimit;
    }
    const mem = await this.memory().catch(() => Number.NaN);
    const max = this.maxMemoryBytes;
    if (why === null && max !== undefined && mem >= max * MEMORY_REFUSE_FRACTION) {
      limit = 'max_memory';
      why = `node ${nodeId}: memory ${mib(mem)} is at ${Math.round(MEMORY_REFUSE_FRACTION * 100)}% or more of its limit of ${mib(max)} (--max-memory); writes are refused until it falls, reads are served`;
    }
    if (why !== this.refusal) {
      if (why) this.o.log.warn('writes refused', { reason: why });
      else this.o.log.info('writes allowed again', { previously: this.refusal ?? '' });
    }
    this.refusal = why;
    this.refusalLimit = why === null ? null : limit;
    this.last = { freeDiskBytes: disk.free, diskBytes: disk.size, memoryBytes: mem, refusal: why };
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimer(() => {
      void this.probe().finally(() => this.schedule());
    }, this.probeMs);
  }
}

/** Bytes an unprivileged process may still write on the filesystem holding `path` (`df`'s "Avail"). */
async function statfsFree(path: string): Promise<{ free: number; size: number }> {
  const s = await statfs(path);
  return { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
}

/**
 * The process's memory that the kernel cannot drop: on Linux its anonymous resident memory
 * (`RssAnon` of /proc/self/status: the V8 heaps of every thread, hnswlib's native indexes, buffers),
 * leaving out LMDB's memory map, whose resident pages are the page cache of the data file and are
 * given back under pressure. Elsewhere the whole resident set (`process.memoryUsage.rss()`).
 */
async function processMemoryBytes(): Promise<number> {
  if (process.platform === 'linux') {
    const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
    const m = /^RssAnon:\s+(\d+)\s+kB/m.exec(status);
    if (m) return Number(m[1]) * 1024;
  }
  return process.memoryUsage.rss();
}

function mib(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : 'unknown';
}
