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

/** Reshards `name` to each count of `steps` in turn under writers and strong searchers (each reshard waited for); checks what the file's header says. */
async function reshardUnderLoad(name: string, sharding: ShardingConfig, from: number, steps: { shards: number; boundaries?: string[] }[]): Promise<void> {
  await seed(name, sharding, from, 1_000);
  const load = startLoad(client, [name], DIM, { timeoutMs: 15_000 });
  const dupes = watchDuplicates(name);
  const took: string[] = [];
  let shards = from;
  for (const step of steps) {
    await sleep(300);
    const t0 = Date.now();
    const d = await ops.reshard(name, step.shards, step.boundaries ? { boundaries: step.boundaries } : {});
    assert.equal(d.resharding?.to, step.shards, 'the reply shows the reshard');
    await cluster.waitFor(async () => {
      const now = await client.describeCollection(name);
      return now.resharding === null && now.shards.length === step.shards;
    }, `${name} resharded ${shards} -> ${step.shards}`, 120_000).catch(async (err: unknown) => {
      // where it stopped: the phase, and each pair's bytes
      const d = await client.describeCollection(name).catch(() => undefined);
      const moves = (await ops.rebalanceStatus().catch(() => undefined))?.moves.filter((m) => m.collection === name);
      throw new Error(`${describeError(err)}; resharding ${JSON.stringify(d?.resharding)}; moves ${JSON.stringify(moves)}`);
    });
    took.push(`${shards} -> ${step.shards} in ${Date.now() - t0} ms`);
    shards = step.shards;
  }
  await sleep(300);
  const report = await load.stop();
  const problems = await dupes.stop();
  console.log(`reshard ${name} (${sharding.strategy}): ${took.join(', ')}; ${report.writes} writes, ${report.reads} searches`);
  assert.deepEqual(report.failures, [], 'no request failed');
  assert.deepEqual(problems, [], 'every search whole, no id twice');
  assert.deepEqual(await checkNothingLost(client, report, new Map([[name, 1_000]])), [], 'no acknowledged write lost; count exact');
  const last = steps[steps.length - 1] as { shards: number; boundaries?: string[] };
  const again = await ops.reshard(name, last.shards, last.boundaries ? { boundaries: last.boundaries } : {}).catch((err: unknown) => err);
  assert.match(describeError(again), /already has/, 'a reshard to the same count is refused');
}

describe('reshard', () => {
  it('reshard - bad requests are refused naming the field and the limit; a second reshard while one runs is UNAVAILABLE; an unknown collection NOT_FOUND', async () => {
    await client.createCollection({ name: 'refusals', dim: DIM, metric: 'l2', shards: 2, replicas: 3, sharding: { strategy: 'range', boundaries: ['m'] } });
    const refused = async (body: Record<string, unknown>, code: string, re: RegExp) => {
      const err = await client.request('shoal.v1.admin.collections.reshard', body).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof Error, `${JSON.stringify(body)} was refused`);
      assert.equal((err as { code?: string }).code, code, `${JSON.stringify(body)}: ${describeError(err)}`);
      assert.match(describeError(err), re);
    };
    await refused({ shards: 3 }, 'INVALID_ARGUMENT', /name is required/);
    await refused({ name: 'refusals' }, 'INVALID_ARGUMENT', /shards is required \(1 to 256\)/);
    await refused({ name: 'refusals', shards: 0 }, 'INVALID_ARGUMENT', /shards.*1.*256/);
    await refused({ name: 'refusals', shards: 257 }, 'INVALID_ARGUMENT', /shards.*1.*256/);
    await refused({ name: 'refusals', shards: 3, color: 'red' }, 'INVALID_ARGUMENT', /color/);
    await refused({ name: 'refusals', shards: 3 }, 'INVALID_ARGUMENT', /boundaries is required for the 'range' strategy/);
    await refused({ name: 'refusals', shards: 3, boundaries: ['t'] }, 'INVALID_ARGUMENT', /exactly shards - 1 = 2 strings, got 1/);
    await refused({ name: 'refusals', shards: 3, boundaries: ['t', 'c'] }, 'INVALID_ARGUMENT', /strictly increasing.*\[0\] 't' is not below \[1\] 'c'/);
    await refused({ name: 'refusals', shards: 2, boundaries: ['m'] }, 'INVALID_ARGUMENT', /already has 2 shards with these boundaries/);
    await refused({ name: 'nosuch', shards: 3 }, 'NOT_FOUND', /'nosuch' does not exist/);
    // one at a time per collection
    await ops.reshard('refusals', 3, { boundaries: ['f', 's'] });
    await refused({ name: 'refusals', shards: 4, boundaries: ['d', 'k', 's'] }, 'UNAVAILABLE', /a reshard of 'refusals' from 2 to 3 shards runs/);
    await cluster.waitFor(async () => (await client.describeCollection('refusals')).resharding === null, 'the reshard of refusals done', 60_000);
    const d = await client.describeCollection('refusals');
    assert.equal(d.shards.length, 3);
    assert.deepEqual(d.sharding, { strategy: 'range', boundaries: ['f', 's'] }, 'describe gives the new boundaries');
  });


  it('reshard - consistent-hash 2 -> 4 -> 3, and 1 -> 2, under writers and strong searchers: nothing lost, nothing failed, no id twice', async () => {
    await reshardUnderLoad('ring', { strategy: 'consistent-hash', vnodes: 64 }, 2, [{ shards: 4 }, { shards: 3 }]);
    await reshardUnderLoad('ring1', { strategy: 'consistent-hash', vnodes: 64 }, 1, [{ shards: 2 }]);
  });

  it('reshard - hash 2 -> 4 -> 3, and 1 -> 2, under load', async () => {
    await reshardUnderLoad('hashed', { strategy: 'hash' }, 2, [{ shards: 4 }, { shards: 3 }]);
    await reshardUnderLoad('hashed1', { strategy: 'hash' }, 1, [{ shards: 2 }]);
  });

  it('reshard - custom 2 -> 4 -> 3: points stay with their shard key; searches by shardKeys find exactly their points, throughout', async () => {
    const name = 'tenants';
    const tenants = 23;
    await client.createCollection({ name, dim: DIM, metric: 'l2', shards: 2, replicas: 3, sharding: { strategy: 'custom', vnodes: 64 } });
    const coll = client.collection(name);
    const byTenant = new Map<string, Set<string>>();
    const add = (id: string, t: string) => byTenant.set(t, (byTenant.get(t) ?? new Set()).add(id));
    for (let b = 0; b < 5; b++) {
      const pts = Array.from({ length: 200 }, (_, i) => ({ id: `p${b * 200 + i}`, shardKey: `t${(b * 200 + i) % tenants}`, vector: Array.from({ length: DIM }, (_, d) => Math.sin(b * 200 + i + d)), metadata: { tenant: `t${(b * 200 + i) % tenants}` } }));
      await coll.upsert(pts, { requestId: `tenants-${b}` });
      for (const p of pts) add(p.id, p.shardKey);
    }
    let going = true;
    const failures: string[] = [];
    let n = 0;
    const writer = (async () => {
      while (going) {
        const id = `w${n}`;
        const t = `t${n++ % tenants}`;
        try {
          await coll.upsert([{ id, shardKey: t, vector: Array.from({ length: DIM }, (_, d) => Math.cos(n + d)), metadata: { tenant: t } }], { timeoutMs: 15_000 });
          add(id, t);
        } catch (err) {
          failures.push(`upsert ${id}: ${describeError(err)}`);
        }
        await sleep(20);
      }
    })();
    const searcher = (async () => {
      let i = 0;
      while (going) {
        const t = `t${i++ % tenants}`;
        // what was acknowledged before the search began
        const known = new Map([[t, new Set(byTenant.get(t) ?? [])]]);
        try {
          const r = await coll.search(Array.from({ length: DIM }, () => 0), { k: 1000, shardKeys: [t], withMetadata: true, consistency: 'strong', timeoutMs: 15_000 });
          const ids = r.hits.map((h) => h.id);
          if (new Set(ids).size !== ids.length) failures.push(`search ${t}: an id twice`);
          // the shard of t's key holds all of t's points (k is more than a shard holds)
          const got = new Set(ids);
          const missing = [...(known.get(t) ?? [])].filter((id) => !got.has(id));
          if (missing.length > 0) failures.push(`search ${t}: ${missing.length} of its points missing (e.g. ${missing[0]})`);
          if (r.partial) failures.push(`search ${t}: partial`);
        } catch (err) {
          failures.push(`search ${t}: ${describeError(err)}`);
        }
        await sleep(30);
      }
    })();
    for (const shards of [4, 3]) {
      await ops.reshard(name, shards);
      await cluster.waitFor(async () => {
        const d = await client.describeCollection(name);
        return d.resharding === null && d.shards.length === shards;
      }, `${name} resharded to ${shards}`, 120_000);
    }
    going = false;
    await Promise.all([writer, searcher]);
    assert.deepEqual(failures, [], 'no request failed; a search by shard key found all of its points, each once');
    const all = [...byTenant.values()].reduce((k, ids) => k + ids.size, 0);
    assert.equal(await coll.count({ consistency: 'strong' }), all, 'count exact');
    for (const [t, ids] of byTenant) {
      const r = await coll.search(Array.from({ length: DIM }, () => 0), { k: 1000, shardKeys: [t], consistency: 'strong', withMetadata: true });
      const got = new Set(r.hits.map((h) => h.id));
      assert.deepEqual([...ids].filter((id) => !got.has(id)), [], `tenant ${t}: all its points on the shard of its key`);
      assert.ok(r.hits.length < all, 'one shard searched, not all');
    }
  });

  it('reshard - range 2 -> 4 -> 3 with new boundaries, and 1 -> 2, under load', async () => {
    await reshardUnderLoad('ranged', { strategy: 'range', boundaries: ['s5'] }, 2, [{ shards: 4, boundaries: ['l1', 's3', 's6'] }, { shards: 3, boundaries: ['l', 's4'] }]);
    await reshardUnderLoad('ranged1', { strategy: 'range', boundaries: [] }, 1, [{ shards: 2, boundaries: ['s5'] }]);
  });
});
