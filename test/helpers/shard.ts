/** Opening shard state machines on a real LMDB env in a temporary directory. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Metric } from '../../src/index/mod.js';
import { ShardStateMachine, type LogEntry, type ShardStateMachineOptions } from '../../src/shard/mod.js';
import { openNodeEnv, type NodeEnv } from '../../src/storage/node-env.js';

export const TEST_HNSW = { m: 12, efConstruction: 48, ef: 24 };

export interface TestNode {
  root: string;
  env: NodeEnv;
  open(group: string, extra?: Partial<ShardStateMachineOptions>): Promise<ShardStateMachine>;
  close(): Promise<void>;
}

export function testNode(opts: { dim: number; metric?: Metric; checkpointEvery?: number; root?: string }): TestNode {
  const root = opts.root ?? mkdtempSync(join(tmpdir(), 'shoal-shard-'));
  const env = openNodeEnv({ path: join(root, 'env'), mapSizeBytes: 2 ** 30 });
  return {
    root,
    env,
    open: (group, extra = {}) =>
      ShardStateMachine.open({
        env,
        group,
        dir: join(root, 'index', group),
        dim: opts.dim,
        metric: opts.metric ?? 'l2',
        hnsw: TEST_HNSW,
        checkpointEvery: opts.checkpointEvery ?? 25,
        exactBudget: 0,
        filteredGraphCost: 0,
        ...extra,
      }),
    close: async () => {
      await env.close();
      if (!opts.root) rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Applies `entries` in batches of `size`. */
export async function applyInBatches(sm: ShardStateMachine, entries: readonly LogEntry[], size: number): Promise<void> {
  for (let i = 0; i < entries.length; i += size) await sm.apply(entries.slice(i, i + size));
}
