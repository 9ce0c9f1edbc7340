/**
 * Online resharding on real node processes (docs/resharding.md): a collection's shard count
 * changed by `collections.reshard` while writers (every write with a requestId) and strong
 * searchers run. Afterwards: no request failed, no acknowledged write is lost, `count` is exact,
 * and no search reply held an id twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ShardingConfig } from '../../src/api/types.js';
import type { ShoalClient } from '../../src/client/client.js';
import { OpsClient } from '../../src/client/ops.js';
import { describeError } from '../../src/runtime/errors.js';
import { TestCluster } from '../helpers/cluster.js';
import { checkNothingLost, startLoad, stopLoads } from '../helpers/ops-load.js';

let cluster: TestCluster;
let client: ShoalClient;
let ops: OpsClient;
const DIM = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  client = await cluster.client({ timeoutMs: 15_000 });
  ops = new OpsClient(client);
});

/** Search watchers still running (a failed test leaves them, and they would keep the process alive). */
const watchers = new Set<() => Promise<string[]>>();

after(async () => {
  await stopLoads();
  await Promise.all([...watchers].map((w) => w()));
  await cluster?.stop();
});

async function seed(name: string, sharding: ShardingConfig, shards: number, n: number): Promise<void> {
  await client.createCollection({ name, dim: DIM, metric: 'l2', shards, replicas: 3, sharding });
  for (let b = 0; b < n / 200; b++) {
    await client.collection(name).upsert(Array.from({ length: 200 }, (_, i) => ({ id: `s${b * 200 + i}`, vector: Array.from({ length: DIM }, (_, d) => Math.sin(b * 200 + i + d)) })), { requestId: `seed-${name}-${b}` });
  }
}

/** Searches that record any reply with an id twice. */
function watchDuplicates(name: string): { stop(): Promise<string[]> } {
  let running = true;
  const problems: string[] = [];
  const task = (async () => {
    let i = 0;
    while (running) {
      try {
        const r = await client.collection(name).search(Array.from({ length: DIM }, (_, d) => Math.cos(i + d)), { k: 50, consistency: 'strong', timeoutMs: 15_000 });
        const ids = r.hits.map((h) => h.id);
        if (new Set(ids).size !== ids.length) problems.push(`a search returned an id twice: ${ids.join(',')}`);
        if (r.partial) problems.push(`a search was partial: ${JSON.stringify(r.coverage)}`);
      } catch (err) {
        problems.push(`search failed: ${describeError(err)}`);
      }
      i++;
      await sleep(30);
    }
  })();
  const stop = async (): Promise<string[]> => {
    running = false;
    watchers.delete(stop);
    await task;
    return problems;
  };
  watchers.add(stop);
  return { stop };
}

async function reshardUnderLoad(name: string, sharding: ShardingConfig, from: number, to: number, boundaries?: string[]): Promise<void> {
  await seed(name, sharding, from, 2_000);
  const load = startLoad(client, [name], DIM, { timeoutMs: 15_000 });
  const dupes = watchDuplicates(name);
  await sleep(500);
  const t0 = Date.now();
  const d = await ops.reshard(name, to, boundaries ? { boundaries } : {});
  assert.ok(d.resharding, 'the reply shows the reshard');
  assert.equal(d.resharding?.to, to);
  await cluster.waitFor(async () => {
    const now = await client.describeCollection(name);
    return now.resharding === null && now.shards.length === to;
  }, `${name} resharded ${from} -> ${to}`, 120_000);
  const took = Date.now() - t0;
  await sleep(500);
  const report = await load.stop();
  const problems = await dupes.stop();
  console.log(`reshard ${name} ${sharding.strategy} ${from} -> ${to}: ${took} ms; ${report.writes} writes, ${report.reads} searches during it`);
  assert.deepEqual(report.failures, [], 'no request failed');
  assert.deepEqual(problems, [], 'every search whole, no id twice');
  assert.deepEqual(await checkNothingLost(client, report, new Map([[name, 2_000]])), [], 'no acknowledged write lost; count exact');
  const again = await ops.reshard(name, to, boundaries ? { boundaries } : {}).catch((err: unknown) => err);
  assert.match(describeError(again), /already has/, 'a reshard to the same count is refused');
}

describe('reshard', () => {
  it('reshard - consistent-hash 2 -> 4 under writers and strong searchers: nothing lost, nothing failed, no id twice', async () => {
    await reshardUnderLoad('ring', { strategy: 'consistent-hash', vnodes: 64 }, 2, 4);
  });

  it('reshard - hash 4 -> 3 and range 1 -> 2 under load', async () => {
    await reshardUnderLoad('hashed', { strategy: 'hash' }, 4, 3);
    await reshardUnderLoad('ranged', { strategy: 'range', boundaries: [] }, 1, 2, ['s5']);
  });
});
