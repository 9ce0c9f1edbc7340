/**
 * Synthetic clustered vectors from a fixed seed, for bench:scale: `clusters` gaussian clusters
 * with random centres. Point i is a function of (seed, i) alone (its own PRNG stream), so a
 * process can generate any range of points without the ones before it, and two processes (the
 * bench and its raw hnswlib anchor child) generate the same vectors bit for bit. Queries come
 * from the same distribution, on streams of their own.
 *
 * The spread within a cluster falls off over the dimensions (scale of dimension d:
 * `spread / sqrt(1 + d / 8)`), as the principal components of real embeddings do; an isotropic
 * 128-dimensional gaussian would be a worst case for any graph index, not a typical one.
 */

/** SplitMix32 finaliser: a well-mixed 32-bit hash of a 32-bit value. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws (Box-Muller, both outputs used) from a uniform source. */
function normals(uniform: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = 1 - uniform(); // (0, 1]: log is finite
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

export interface ClusteredSpec {
  seed: number;
  dim: number;
  clusters: number;
  /** Standard deviation of the centres' coordinates. */
  centreScale: number;
  /** Standard deviation within a cluster along its widest dimension. */
  spread: number;
}

export const DEFAULT_SPEC: ClusteredSpec = { seed: 20261202, dim: 128, clusters: 300, centreScale: 1, spread: 0.5 };

/** Stream ids: points and queries never share a PRNG stream. */
const POINTS = 1;
const QUERIES = 2;

export class ClusteredVectors {
  private readonly centres: Float32Array;
  private readonly scales: Float32Array;

  constructor(readonly spec: ClusteredSpec = DEFAULT_SPEC) {
    const { dim, clusters, centreScale, spread } = spec;
    const n = normals(prng(mix32(spec.seed)));
    this.centres = new Float32Array(clusters * dim);
    for (let i = 0; i < this.centres.length; i++) this.centres[i] = centreScale * n();
    this.scales = Float32Array.from({ length: dim }, (_, d) => spread / Math.sqrt(1 + d / 32));
  }

  private fill(stream: number, i: number, out: Float32Array, at: number): void {
    const { dim, clusters, seed } = this.spec;
    const u = prng(mix32(mix32(mix32(seed) ^ stream) ^ i));
    const c = Math.floor(u() * clusters);
    const n = normals(u);
    for (let d = 0; d < dim; d++) out[at + d] = (this.centres[c * dim + d] as number) + (this.scales[d] as number) * n();
  }

  /** Points [from, to) as one row-major Float32Array. */
  points(from: number, to: number): Float32Array {
    const dim = this.spec.dim;
    const out = new Float32Array((to - from) * dim);
    for (let i = from; i < to; i++) this.fill(POINTS, i, out, (i - from) * dim);
    return out;
  }

  /** Queries [0, count), from the same distribution as the points, on a stream of their own. */
  queries(count: number): Float32Array {
    const dim = this.spec.dim;
    const out = new Float32Array(count * dim);
    for (let i = 0; i < count; i++) this.fill(QUERIES, i, out, i * dim);
    return out;
  }
}
