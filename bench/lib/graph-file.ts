/**
 * Reads a graph file in hnswlib's format (what HnswGraph.writeIndex and hnswlib-node write) for
 * bench diagnostics: level-0 links, deleted marks, levels, and the entry point. Only what
 * bench:drift needs to explain a graph's recall: in-degrees, nodes a search cannot reach, and the
 * lengths of links.
 */
import { readFileSync } from 'node:fs';

export interface GraphFile {
  count: number;
  maxM0: number;
  entry: number;
  maxLevel: number;
  /** Level-0 neighbours of internal id i. */
  links0(i: number): Uint32Array;
  deleted(i: number): boolean;
  label(i: number): number;
  vector(i: number): Float32Array;
  level(i: number): number;
}

export function readGraphFile(path: string, dim: number): GraphFile {
  const buf = readFileSync(path);
  const u64 = (at: number): number => Number(buf.readBigUInt64LE(at));
  const offsetLevel0 = u64(0);
  const count = u64(16);
  const sizePerElement = u64(24);
  const labelOffset = u64(32);
  const offsetData = u64(40);
  const maxLevel = buf.readInt32LE(48);
  const entry = buf.readUInt32LE(52);
  const maxM = u64(56);
  const maxM0 = u64(64);
  const header = 96;
  const levels = new Int32Array(count);
  let at = header + count * sizePerElement;
  const sizeLinks = maxM * 4 + 4;
  for (let i = 0; i < count; i++) {
    const size = buf.readUInt32LE(at);
    levels[i] = size / sizeLinks;
    at += 4 + size;
  }
  const base = (i: number): number => header + i * sizePerElement;
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  return {
    count,
    maxM0,
    entry,
    maxLevel,
    links0: (i) => {
      const b = base(i) + offsetLevel0;
      const n = buf.readUInt16LE(b);
      const out = new Uint32Array(n);
      for (let j = 0; j < n; j++) out[j] = buf.readUInt32LE(b + 4 + 4 * j);
      return out;
    },
    deleted: (i) => ((buf[base(i) + offsetLevel0 + 2] as number) & 1) !== 0,
    label: (i) => Number(buf.readBigUInt64LE(base(i) + labelOffset)),
    vector: (i) => new Float32Array(ab, base(i) + offsetData, dim),
    level: (i) => levels[i] as number,
  };
}

function l2(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    s += d * d;
  }
  return Math.sqrt(s);
}

export interface GraphShape {
  /** Live nodes (not marked deleted). */
  live: number;
  deleted: number;
  /** Live nodes no level-0 search from the entry point can reach (deleted nodes are walked through). */
  unreachable: number;
  /** Live nodes that no node links to at level 0. */
  noInLinks: number;
  /** Mean level-0 out-degree of live nodes. */
  outDegree: number;
  /** Mean length (L2) of level-0 links from live nodes. */
  linkLength: number;
  /** Level-0 links from live nodes that point to a deleted node, per live node. */
  linksToDeleted: number;
  /** Level-0 links from live nodes longer than `longAt`, per live node (on clustered data: the links between clusters). */
  longLinks: number;
}

export function graphShape(g: GraphFile, longAt = Infinity): GraphShape {
  const inDeg = new Uint32Array(g.count);
  let live = 0;
  let out = 0;
  let len = 0;
  let toDeleted = 0;
  let long = 0;
  for (let i = 0; i < g.count; i++) {
    const links = g.links0(i);
    for (const j of links) inDeg[j] = (inDeg[j] as number) + 1;
    if (g.deleted(i)) continue;
    live++;
    out += links.length;
    const v = g.vector(i);
    for (const j of links) {
      const d = l2(v, g.vector(j));
      len += d;
      if (d > longAt) long++;
      if (g.deleted(j)) toDeleted++;
    }
  }
  const seen = new Uint8Array(g.count);
  const stack = [g.entry];
  seen[g.entry] = 1;
  while (stack.length > 0) {
    const i = stack.pop() as number;
    for (const j of g.links0(i)) {
      if (seen[j] === 0) {
        seen[j] = 1;
        stack.push(j);
      }
    }
  }
  let unreachable = 0;
  let noIn = 0;
  for (let i = 0; i < g.count; i++) {
    if (g.deleted(i)) continue;
    if (seen[i] === 0) unreachable++;
    if (inDeg[i] === 0) noIn++;
  }
  return { live, deleted: g.count - live, unreachable, noInLinks: noIn, outDegree: out / live, linkLength: len / out, linksToDeleted: toDeleted / live, longLinks: long / live };
}
