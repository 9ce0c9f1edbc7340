import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { murmur3 } from '../../src/cluster/hash.js';
import { compareUtf8 } from '../../src/index/utf8.js';
import { placeReplicas } from '../../src/cluster/placement.js';
import { createSharder } from '../../src/cluster/sharding.js';

const ids = Array.from({ length: 20_000 }, (_, i) => `doc-${i}`);

describe('sharding', () => {
  it('hash - murmur3 matches an independent implementation, over UTF-8 bytes', () => {
    // reference values computed with a separate Python implementation of MurmurHash3_x86_32
    const expected: [string, number][] = [
      ['', 0], ['a', 1009084850], ['ab', 2613040991], ['abc', 3017643002], ['abcd', 1139631978],
      ['doc-1', 4274171406], ['héllo wörld', 2549609076], ['日本語', 2779017879], ['🐟shoal', 1443054252],
    ];
    for (const [s, h] of expected) assert.equal(murmur3(s), h, JSON.stringify(s));
  });

  it('hash - strings compare by UTF-8 bytes, surrogate pairs included', () => {
    const words = ['a', 'b', 'ab', '', 'é', 'z', '\uffff', '🐟', '\ue000', 'Z', '日本', 'a\u0000'];
    const byBytes = [...words].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    assert.deepEqual([...words].sort(compareUtf8), byBytes);
  });

  it('sharding - consistent-hash spreads ids evenly and moves few when a shard is added', () => {
    const four = createSharder({ strategy: 'consistent-hash', vnodes: 128 }, 4);
    const counts = [0, 0, 0, 0];
    for (const id of ids) counts[four.shardOf(id)]!++;
    for (const c of counts) assert.ok(c > ids.length / 4 * 0.8 && c < ids.length / 4 * 1.2, `uneven: ${counts.join(',')}`);
    const five = createSharder({ strategy: 'consistent-hash', vnodes: 128 }, 5);
    let moved = 0;
    for (const id of ids) {
      const a = four.shardOf(id);
      const b = five.shardOf(id);
      if (a !== b) {
        moved++;
        assert.equal(b, 4, 'a key only ever moves to the new shard');
      }
    }
    assert.ok(moved / ids.length > 0.12 && moved / ids.length < 0.28, `moved ${moved} of ${ids.length}, want about 1/5`);
  });

  it('sharding - hash is the id hash modulo the shard count', () => {
    const s = createSharder({ strategy: 'hash' }, 3);
    for (const id of ids.slice(0, 100)) assert.equal(s.shardOf(id), murmur3(id) % 3);
  });

  it('sharding - range puts a boundary in the shard it starts, by UTF-8 bytes', () => {
    const s = createSharder({ strategy: 'range', boundaries: ['g', 'n', 't'] }, 4);
    const cases: [string, number][] = [['', 0], ['a', 0], ['fzzz', 0], ['g', 1], ['m', 1], ['n', 2], ['sz', 2], ['t', 3], ['zz', 3], ['é', 3]];
    for (const [id, shard] of cases) assert.equal(s.shardOf(id), shard, id);
  });

  it('sharding - the same inputs give the same shard in every process (no hidden state)', () => {
    const a = createSharder({ strategy: 'custom', vnodes: 16 }, 7);
    const b = createSharder({ strategy: 'custom', vnodes: 16 }, 7);
    for (const id of ids.slice(0, 500)) assert.equal(a.shardOf(id), b.shardOf(id));
  });
});

describe('placement', () => {
  it('placement - replicas of a shard are on distinct nodes and nodes are evenly loaded', () => {
    const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const p = placeReplicas(10, 3, nodes);
    const load = new Map<string, number>();
    const leads = new Map<string, number>();
    for (const { replicas } of p) {
      assert.equal(new Set(replicas).size, 3);
      for (const n of replicas) load.set(n, (load.get(n) ?? 0) + 1);
      leads.set(replicas[0] as string, (leads.get(replicas[0] as string) ?? 0) + 1);
    }
    assert.deepEqual([...load.values()].sort(), [6, 6, 6, 6, 6]);
    assert.deepEqual([...leads.values()].sort(), [2, 2, 2, 2, 2]);
  });

  it('placement - existing load steers new replicas to emptier nodes; too few nodes is refused', () => {
    const p = placeReplicas(1, 2, ['n1', 'n2', 'n3'], new Map([['n1', { replicas: 5, leaders: 5 }]]));
    assert.deepEqual([...(p[0]?.replicas ?? [])].sort(), ['n2', 'n3']);
    assert.throws(() => placeReplicas(1, 4, ['n1', 'n2', 'n3']), /cannot place 4 replicas on 3 nodes/);
  });

  it('placement - with zones, each shard spans three zones when it has three replicas, however the nodes are spread', () => {
    // zone a has three nodes, b two, c one: filling by load alone would put shards twice in a
    const zones: Record<string, string> = { a1: 'a', a2: 'a', a3: 'a', b1: 'b', b2: 'b', c1: 'c' };
    const p = placeReplicas(8, 3, Object.keys(zones), new Map(), (n) => zones[n] ?? null);
    for (const { replicas } of p) assert.deepEqual(replicas.map((n) => zones[n]).sort(), ['a', 'b', 'c']);
    // the bootstrap voters are the placement
    assert.ok(p.every((x) => JSON.stringify(x.bootstrap) === JSON.stringify(x.replicas)));
  });
});
