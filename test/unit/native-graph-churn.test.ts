/**
 * The addon's update path (native/hnsw-move.h) under churn: rounds that each replace half of the
 * points (a quarter moved under the same label, a quarter deleted and their labels reused, newest
 * freed first, as point-table.ts does) keep recall where a graph built afresh from the same points
 * has it; the same operations give the same bytes; the file stays hnswlib-node's.
 *
 * The data are clustered (uniform centres, uniform noise: the vectors of the churn runs on a real
 * node, issue 21), where hnswlib's own updatePoint loses the links between clusters: with it this
 * test's recall falls 0.017-0.026 below the fresh build's (measured: see DRIFT_TOLERANCE).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import hnswlib from 'hnswlib-node';
import { newHnswGraph, type HnswGraph } from '../../src/index/native-graph.js';
import { rng } from '../helpers/shard-workload.js';

const DIM = 128;
const N = 3000;
const CENTRES = 32;
const ROUNDS = 4;
const M = 16;
const EF_CONSTRUCTION = 100;
const EF = 16;
const K = 10;
const QUERIES = 400;
/**
 * How far below the fresh build's recall the churned graph may be, in any round. Measured on this
 * data (seeds 3 and 4, ef 16, where a lost link shows): the addon's path 0.001-0.008 below,
 * hnswlib's updatePoint (the addon before hnsw-move.h) 0.017-0.026 below.
 */
const DRIFT_TOLERANCE = 0.012;

const tmp = mkdtempSync(join(tmpdir(), 'shoal-churn-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function blobs(seed: number): () => Float32Array {
  const rand = rng(seed);
  const centres = Array.from({ length: CENTRES }, () => Float32Array.from({ length: DIM }, () => rand()));
  return () => {
    const c = centres[Math.floor(rand() * CENTRES)] as Float32Array;
    return c.map((x) => x + (rand() - 0.5) * 0.3);
  };
}

type Op = { type: 'add'; label: number; vector: Float32Array } | { type: 'delete'; label: number };

/** The load and the rounds, as addPoint/markDelete calls; `live` maps each label to its vector at the end of each round. */
function churn(seed: number): { load: Op[]; rounds: Op[][]; live: Map<number, Float32Array>[]; queries: Float32Array[] } {
  const vector = blobs(seed);
  const rand = rng(seed + 1);
  const queries = Array.from({ length: QUERIES }, vector);
  const live = new Map<number, Float32Array>();
  const load: Op[] = [];
  for (let label = 0; label < N; label++) {
    const v = vector();
    live.set(label, v);
    load.push({ type: 'add', label, vector: v });
  }
  const rounds: Op[][] = [];
  const lives = [new Map(live)];
  const free: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const labels = [...live.keys()];
    for (let i = labels.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [labels[i], labels[j]] = [labels[j] as number, labels[i] as number];
    }
    const q = N / 4;
    const ops: Op[] = [];
    for (const label of labels.slice(0, q)) {
      const v = vector();
      live.set(label, v);
      ops.push({ type: 'add', label, vector: v });
    }
    for (const label of labels.slice(q, 2 * q)) {
      live.delete(label);
      free.push(label);
      ops.push({ type: 'delete', label });
    }
    for (let i = 0; i < q; i++) {
      const label = free.pop() as number;
      const v = vector();
      live.set(label, v);
      ops.push({ type: 'add', label, vector: v });
    }
    rounds.push(ops);
    lives.push(new Map(live));
  }
  return { load, rounds, live: lives, queries };
}

function newGraph(): HnswGraph {
  const g = newHnswGraph('l2', DIM);
  g.initIndex(N, M, EF_CONSTRUCTION, 100);
  return g;
}

function apply(g: HnswGraph, ops: Op[]): void {
  for (const op of ops) {
    if (op.type === 'add') g.addPoint(op.vector, op.label);
    else g.markDelete(op.label);
  }
}

function recall(g: HnswGraph, truthOf: HnswGraph, live: Map<number, Float32Array>, queries: Float32Array[]): number {
  const labels = Uint32Array.from([...live.keys()].sort((a, b) => a - b));
  g.setEf(EF);
  let hit = 0;
  for (const q of queries) {
    const truth = new Set(truthOf.exactKnn(q, K, labels).labels);
    for (const l of g.searchKnn(q, K).labels) if (truth.has(l)) hit++;
  }
  return hit / (K * queries.length);
}

function fresh(live: Map<number, Float32Array>): HnswGraph {
  const g = newGraph();
  for (const label of [...live.keys()].sort((a, b) => a - b)) g.addPoint(live.get(label) as Float32Array, label);
  return g;
}

describe('native graph churn', () => {
  for (const seed of [3, 4]) {
    it(`native graph - churn (seed ${seed}): after every round recall stays within ${DRIFT_TOLERANCE} of a graph built afresh from the same points`, () => {
      const plan = churn(seed);
      const g = newGraph();
      apply(g, plan.load);
      const rows: string[] = [];
      plan.rounds.forEach((ops, r) => {
        apply(g, ops);
        const live = plan.live[r + 1] as Map<number, Float32Array>;
        const anchor = fresh(live);
        const ours = recall(g, anchor, live, plan.queries);
        const theirs = recall(anchor, anchor, live, plan.queries);
        rows.push(`round ${r + 1}: churned ${ours.toFixed(4)}, fresh ${theirs.toFixed(4)}`);
        assert.ok(ours >= theirs - DRIFT_TOLERANCE, rows.join('\n'));
      });
    });
  }

  it('native graph - churn: the same operations in the same order give byte-identical graph files, which hnswlib-node reads and answers from identically', () => {
    const plan = churn(5);
    const files = [0, 1].map((i) => {
      const g = newGraph();
      apply(g, plan.load);
      for (const ops of plan.rounds) apply(g, ops);
      const file = join(tmp, `churned-${i}.hnsw`);
      g.writeIndex(file);
      return { g, file };
    });
    const [a, b] = files as [{ g: HnswGraph; file: string }, { g: HnswGraph; file: string }];
    assert.ok(readFileSync(a.file).equals(readFileSync(b.file)), 'byte-identical files');

    const theirs = new hnswlib.HierarchicalNSW('l2', DIM);
    theirs.readIndexSync(a.file);
    theirs.setEf(EF);
    a.g.setEf(EF);
    for (const q of plan.queries.slice(0, 50)) {
      const ours = a.g.searchKnn(q, K);
      const got = theirs.searchKnn(Array.from(q), K);
      assert.deepEqual(got.neighbors, Array.from(ours.labels));
      assert.deepEqual(got.distances.map(Math.fround), Array.from(ours.distances));
    }
  });

  it('native graph - moving every point, the entry point among them, and a graph of one point, keeps each point found by its own vector', () => {
    const one = newGraph();
    const v = Float32Array.from({ length: DIM }, (_, i) => i);
    one.addPoint(v, 7);
    one.addPoint(v.map((x) => x + 1), 7);
    assert.deepEqual(Array.from(one.searchKnn(v, 1).labels), [7]);
    assert.deepEqual(Array.from(one.getPoint(7)), Array.from(v.map((x) => x + 1)));

    const vector = blobs(9);
    const g = newGraph();
    const n = 400;
    for (let label = 0; label < n; label++) g.addPoint(vector(), label);
    const moved = Array.from({ length: n }, vector);
    for (let label = n - 1; label >= 0; label--) g.addPoint(moved[label] as Float32Array, label);
    g.setEf(64);
    let found = 0;
    moved.forEach((p, label) => {
      if (g.searchKnn(p, 1).labels[0] === label) found++;
    });
    assert.ok(found >= n - 2, `${found} of ${n} points found by their own vector`);
  });
});
