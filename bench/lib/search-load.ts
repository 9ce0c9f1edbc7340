/**
 * A fixed set of search clients that run until stopped, each search recorded with the time it
 * was sent: a window of the run (before a fault, during its repair) is then cut out afterwards,
 * so that the same clients are measured across the fault.
 */
import { performance } from 'node:perf_hooks';
import type { ShoalClient } from '../../src/client/client.js';
import { percentile, sortedCopy } from './stats.js';

export interface WindowFigures {
  searches: number;
  qps: number;
  p50: number;
  p99: number;
  errors: number;
}

export class SearchLoad {
  /** Start times (performance.now()) and latencies (ms) of the searches that were answered. */
  private readonly starts: number[] = [];
  private readonly lats: number[] = [];
  private readonly errorTimes: number[] = [];
  private readonly lastErrors: string[] = [];
  private stopping = false;
  private readonly running: Promise<void>;

  constructor(client: ShoalClient, collection: string, queries: Float32Array[], clients: number, k: number, timeoutMs: number) {
    const coll = client.collection(collection);
    let next = 0;
    this.running = Promise.all(
      Array.from({ length: clients }, async () => {
        while (!this.stopping) {
          const q = queries[next++ % queries.length] as Float32Array;
          const t = performance.now();
          try {
            // the collection's defaults: consistency `leased`, ef 64
            await coll.search(q, { k, withMetadata: false, timeoutMs });
            this.starts.push(t);
            this.lats.push(performance.now() - t);
          } catch (err) {
            this.errorTimes.push(t);
            if (this.lastErrors.length < 5) this.lastErrors.push(err instanceof Error ? err.message : String(err));
          }
        }
      }),
    ).then(() => undefined);
  }

  /** Figures of the searches sent in [from, to) (performance.now() times). */
  window(from: number, to: number): WindowFigures {
    return this.during([[from, to]]);
  }

  /** Figures of the searches sent in any of `intervals` (disjoint [from, to) pairs), QPS over their total length. */
  during(intervals: [number, number][]): WindowFigures {
    const inside = (t: number): boolean => intervals.some(([a, b]) => t >= a && t < b);
    const lat: number[] = [];
    for (let i = 0; i < this.starts.length; i++) if (inside(this.starts[i] as number)) lat.push(this.lats[i] as number);
    const s = sortedCopy(lat);
    const ms = intervals.reduce((sum, [a, b]) => sum + Math.max(0, b - a), 0);
    const errors = this.errorTimes.filter(inside).length;
    return { searches: lat.length, qps: lat.length / (ms / 1000), p50: percentile(s, 50), p99: percentile(s, 99), errors };
  }

  get errorSamples(): readonly string[] {
    return this.lastErrors;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }
}
