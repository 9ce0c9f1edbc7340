/**
 * The churn of issue 21 (item 2) as a deterministic plan over a pool of vectors: a first load of
 * `n` points, then rounds that each replace half of the live points — a quarter upserted again
 * under the same id with a new vector, a quarter deleted and as many new ids inserted. Labels are
 * handed out the way Shoal's PointTable does (a deleted point's label is reused, newest freed
 * first), so a graph driven by the plan sees the same addPoint/markDelete calls a node's index does.
 */
import { prng } from './clustered-vectors.js';

export type ChurnOp =
  /** addPoint(pool[vector], label): a new label, a reused (deleted) one, or a live one updated. */
  | { type: 'add'; label: number; vector: number; kind: 'insert' | 'update' | 'reuse' }
  | { type: 'delete'; label: number };

export class ChurnPlan {
  /** Pool index of the vector at each live label; -1 when the label is free. */
  readonly vectorAt: Int32Array;
  private readonly free: number[] = [];
  private next = 0;
  private readonly unused: number[];
  private readonly rand: () => number;

  constructor(readonly poolSize: number, readonly n: number, seed: number) {
    if (poolSize < 2 * n) throw new Error(`ChurnPlan: a pool of ${poolSize} vectors is too small for ${n} live points (at least ${2 * n})`);
    this.rand = prng(seed);
    this.vectorAt = new Int32Array(poolSize).fill(-1);
    this.unused = Array.from({ length: poolSize }, (_, i) => poolSize - 1 - i);
    this.shuffle(this.unused);
  }

  private shuffle<T>(a: T[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.rand() * (i + 1));
      [a[i], a[j]] = [a[j] as T, a[i] as T];
    }
  }

  private take(): number {
    const v = this.unused.pop();
    if (v === undefined) throw new Error('ChurnPlan: the pool ran out of vectors');
    return v;
  }

  /** One past the highest label used. */
  get labelSpan(): number {
    return this.next;
  }

  /** Live labels, ascending. */
  liveLabels(): Uint32Array {
    const out: number[] = [];
    for (let l = 0; l < this.next; l++) if ((this.vectorAt[l] as number) >= 0) out.push(l);
    return Uint32Array.from(out);
  }

  private add(kind: 'insert' | 'update' | 'reuse', label: number): ChurnOp {
    const old = this.vectorAt[label] as number;
    const vector = this.take();
    this.vectorAt[label] = vector;
    // The replaced vector goes back at a random place of the pool, to be drawn again later.
    if (old >= 0) this.unused.splice(Math.floor(this.rand() * (this.unused.length + 1)), 0, old);
    return { type: 'add', label, vector, kind };
  }

  /** The first load: n inserts. */
  load(): ChurnOp[] {
    const ops: ChurnOp[] = [];
    for (let i = 0; i < this.n; i++) ops.push(this.add('insert', this.next++));
    return ops;
  }

  /** One round: the updates, then the deletes, then the inserts of new ids (on the freed labels). */
  round(): ChurnOp[] {
    const live = Array.from(this.liveLabels());
    this.shuffle(live);
    const q = Math.floor(live.length / 4);
    const ops: ChurnOp[] = [];
    for (const label of live.slice(0, q)) ops.push(this.add('update', label));
    for (const label of live.slice(q, 2 * q)) {
      const old = this.vectorAt[label] as number;
      this.vectorAt[label] = -1;
      this.unused.splice(Math.floor(this.rand() * (this.unused.length + 1)), 0, old);
      this.free.push(label);
      ops.push({ type: 'delete', label });
    }
    for (let i = 0; i < q; i++) {
      const reused = this.free.pop();
      ops.push(reused === undefined ? this.add('insert', this.next++) : this.add('reuse', reused));
    }
    return ops;
  }
}
