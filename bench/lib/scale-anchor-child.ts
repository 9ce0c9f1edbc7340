/**
 * bench:scale's anchor, in a process of its own so that its memory is its own: raw hnswlib-node
 * on one thread, grown step by step over the same vectors as the cluster (it generates them from
 * the same seed: nothing but the index is kept). Driven over IPC by {@link RawAnchor}; started
 * with `--expose-gc`, so that a memory reading follows a full collection of the JS heap.
 *
 * Its memory per point is RssAnon now less RssAnon before the index was made (the modules
 * loaded, nothing else held). The index is made with room for the largest size at once:
 * hnswlib's arrays are allocated then but only the pages written become resident.
 */
import hnswlib from 'hnswlib-node';
import { performance } from 'node:perf_hooks';
import { ClusteredVectors, type ClusteredSpec } from './clustered-vectors.js';
import { procMemory } from './proc-memory.js';

export type AnchorRequest =
  | { type: 'grow'; to: number }
  | { type: 'search'; ef: number; k: number }
  | { type: 'qps'; ef: number; k: number; seconds: number }
  | { type: 'exit' };

export type AnchorReply =
  | { type: 'started'; baselineAnon: number }
  | { type: 'grown'; points: number; insertRate: number; rssAnon: number; rssFile: number }
  | { type: 'found'; neighbors: number[][] }
  | { type: 'qps'; qps: number }
  | { type: 'error'; message: string };

interface Args {
  spec: ClusteredSpec;
  maxPoints: number;
  queries: number;
  m: number;
  efConstruction: number;
}

const GROW_CHUNK = 2_000;

function main(): void {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const gen = new ClusteredVectors(args.spec);
  const dim = args.spec.dim;
  const qs = gen.queries(args.queries);
  const queries = Array.from({ length: args.queries }, (_, q) => Array.from(qs.subarray(q * dim, (q + 1) * dim)));
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  const send = (r: AnchorReply): void => void process.send?.(r);
  gc();
  const baselineAnon = procMemory(process.pid).rssAnon;
  const index = new hnswlib.HierarchicalNSW('l2', dim);
  index.initIndex({ maxElements: args.maxPoints, m: args.m, efConstruction: args.efConstruction, randomSeed: 100 });
  let points = 0;
  send({ type: 'started', baselineAnon });

  process.on('message', (msg: AnchorRequest) => {
    try {
      switch (msg.type) {
        case 'grow': {
          // generated outside the timed part: the rate is hnswlib's insert alone
          let ms = 0;
          for (let from = points; from < msg.to; from += GROW_CHUNK) {
            const to = Math.min(msg.to, from + GROW_CHUNK);
            const chunk = gen.points(from, to);
            const rows = Array.from({ length: to - from }, (_, i) => Array.from(chunk.subarray(i * dim, (i + 1) * dim)));
            const t = performance.now();
            for (let i = 0; i < rows.length; i++) index.addPoint(rows[i] as number[], from + i);
            ms += performance.now() - t;
          }
          const added = msg.to - points;
          points = msg.to;
          gc();
          const mem = procMemory(process.pid);
          send({ type: 'grown', points, insertRate: added / (ms / 1000), rssAnon: mem.rssAnon - baselineAnon, rssFile: mem.rssFile });
          return;
        }
        case 'search': {
          index.setEf(msg.ef);
          send({ type: 'found', neighbors: queries.map((q) => index.searchKnn(q, msg.k).neighbors) });
          return;
        }
        case 'qps': {
          index.setEf(msg.ef);
          let n = 0;
          const t = performance.now();
          const end = t + msg.seconds * 1000;
          while (performance.now() < end) for (let i = 0; i < 50; i++, n++) index.searchKnn(queries[n % queries.length] as number[], msg.k);
          send({ type: 'qps', qps: n / ((performance.now() - t) / 1000) });
          return;
        }
        case 'exit':
          process.exit(0);
          return;
        default: {
          const never: never = msg;
          throw new Error(`unknown request ${JSON.stringify(never)}`);
        }
      }
    } catch (err) {
      send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  });
}

main();
