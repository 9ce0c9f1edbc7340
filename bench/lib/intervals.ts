/** Sets of time intervals [from, to), as sorted disjoint lists: for cutting a run into phases. */
export type Interval = [number, number];

/** The union of `xs`, sorted and disjoint (empty intervals dropped). */
export function union(xs: Interval[]): Interval[] {
  const sorted = xs.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: Interval[] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** What of `xs` is not in `ys`. */
export function minus(xs: Interval[], ys: Interval[]): Interval[] {
  let out = union(xs);
  for (const [c, d] of union(ys)) out = out.flatMap(([a, b]): Interval[] => (d <= a || c >= b ? [[a, b]] : ([[a, c], [d, b]] as Interval[]).filter(([p, q]) => q > p)));
  return out;
}

export function totalMs(xs: Interval[]): number {
  return union(xs).reduce((sum, [a, b]) => sum + (b - a), 0);
}
