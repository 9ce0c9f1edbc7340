/**
 * Load for operations tests: writers upsert fresh points (majority) and remember every one that
 * was acknowledged; readers run `strong` searches and counts and record every failure and every
 * partial answer. `stop()` ends the load and returns what happened.
 */
import type { ShoalClient } from '../../src/client/client.js';
import { describeError } from '../../src/runtime/errors.js';

export interface LoadReport {
  acked: Map<string, string[]>;
  writes: number;
  reads: number;
  failures: string[];
  partial: number;
  /** Why searches were partial (the shards that failed and how). */
  partialWhy: string[];
}

let loads = 0;
/** Loads not stopped yet: a test that fails midway leaves its load running, which keeps its process alive. */
const running = new Set<() => Promise<LoadReport>>();

/** Stops every load still running (for a test file's `after`). */
export async function stopLoads(): Promise<void> {
  await Promise.all([...running].map((stop) => stop()));
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function startLoad(client: ShoalClient, collections: string[], dim: number, opts: { writers?: number; readers?: number; timeoutMs?: number } = {}): { stop(): Promise<LoadReport> } {
  let going = true;
  const report: LoadReport = { acked: new Map(collections.map((c) => [c, []])), writes: 0, reads: 0, failures: [], partial: 0, partialWhy: [] };
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const t0 = Date.now();
  // when a request failed (began), in ms since the load started, to set beside the test's own events
  const at = (began: number) => `(began at +${began - t0} ms, failed at +${Date.now() - t0} ms)`;
  let seq = 0;
  // ids unique across loads, so that a second load adds points rather than overwriting the first one's
  const tag = `l${++loads}`;
  const vec = (i: number) => Array.from({ length: dim }, (_, d) => Math.sin(i * 0.37 + d));
  const writer = async (w: number) => {
    while (going) {
      for (const c of collections) {
        const ids = Array.from({ length: 5 }, () => `${tag}-w${w}-${seq++}`);
        const began = Date.now();
        try {
          await client.collection(c).upsert(ids.map((id, k) => ({ id, vector: vec(seq + k) })), { timeoutMs });
          report.acked.get(c)?.push(...ids);
          report.writes++;
        } catch (err) {
          report.failures.push(`upsert ${c}: ${describeError(err)} ${at(began)}`);
        }
      }
      await sleep(20);
    }
  };
  const reader = async () => {
    while (going) {
      for (const c of collections) {
        const began = Date.now();
        try {
          const r = await client.collection(c).search(vec(seq), { k: 5, consistency: 'strong', timeoutMs });
          if (r.partial) {
            report.partial++;
            report.partialWhy.push(`${c}: ${JSON.stringify(r.coverage.failed)}`);
          }
          report.reads++;
        } catch (err) {
          report.failures.push(`search ${c}: ${describeError(err)} ${at(began)}`);
        }
      }
      await sleep(20);
    }
  };
  const tasks = [...Array.from({ length: opts.writers ?? 2 }, (_, w) => writer(w)), ...Array.from({ length: opts.readers ?? 1 }, () => reader())];
  const stop = async (): Promise<LoadReport> => {
    going = false;
    running.delete(stop);
    await Promise.all(tasks);
    return report;
  };
  running.add(stop);
  return { stop };
}

/** Every acknowledged point is there (strong get), and `count` is exact. */
export async function checkNothingLost(client: ShoalClient, report: LoadReport, before: Map<string, number> = new Map()): Promise<string[]> {
  const problems: string[] = [];
  for (const [c, ids] of report.acked) {
    for (let i = 0; i < ids.length; i += 1_000) {
      const chunk = ids.slice(i, i + 1_000);
      const got = await client.collection(c).get(chunk, { consistency: 'strong', timeoutMs: 20_000, withVector: false, withMetadata: false });
      if (got.length !== chunk.length) {
        const have = new Set(got.map((p) => p.id));
        problems.push(`${c}: ${chunk.length - got.length} acknowledged points missing (e.g. ${chunk.filter((id) => !have.has(id)).slice(0, 3).join(', ')})`);
      }
    }
    const count = await client.collection(c).count({ consistency: 'strong', timeoutMs: 20_000 });
    const want = ids.length + (before.get(c) ?? 0);
    if (count !== want) problems.push(`${c}: count ${count}, expected ${want}`);
  }
  return problems;
}

/** A collection `name` of one shard (3 replicas) with 6,000 points of 128 dimensions: about 3 MB, so a copy at a few hundred KB/s takes seconds. */
export async function bigShard(client: ShoalClient, name: string): Promise<number> {
  const dim = 128;
  await client.createCollection({ name, dim, metric: 'l2', shards: 1, replicas: 3 });
  for (let b = 0; b < 24; b++) {
    await client.collection(name).upsert(Array.from({ length: 250 }, (_, i) => ({ id: `p${b}-${i}`, vector: Array.from({ length: dim }, (_, d) => Math.sin(b * 250 + i + d * 0.1)) })));
  }
  return 24 * 250;
}

/** A voter of shard 0 of `name` that is not in `but`. */
export async function voterOf(client: ShoalClient, name: string, but: string[]): Promise<string> {
  const d = await client.describeCollection(name);
  return d.shards[0]!.replicas.map((r) => r.node).find((n) => !but.includes(n))!;
}

/** Whether `node` has left cluster.status (a removed node, once drained). */
export async function drained(client: ShoalClient, node: string): Promise<boolean> {
  return !(await client.clusterStatus()).nodes.some((n) => n.id === node);
}
