/**
 * A hand-written SVG of bench:scale's figures: one small panel per figure, x = points on a log
 * scale, y linear from 0; one line per series (Shoal, and the raw hnswlib anchor where there is one).
 */

export interface Series {
  label: string;
  /** One value per size; NaN leaves a gap. */
  values: number[];
  colour: string;
  dashed?: boolean;
}

export interface Panel {
  title: string;
  unit: string;
  series: Series[];
}

const W = 300;
const H = 210;
const PAD = { left: 58, right: 12, top: 34, bottom: 40 };
const COLUMNS = 3;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Round maxima (times a power of ten) and how many grid steps divide each into round numbers. */
const NICE: [number, number][] = [[1, 4], [1.5, 3], [2, 4], [2.5, 5], [3, 3], [4, 4], [5, 5], [6, 3], [8, 4], [10, 4]];

/** The smallest round maximum at least `x`, and its grid steps. */
function niceCeil(x: number): { max: number; steps: number } {
  if (!(x > 0)) return { max: 1, steps: 4 };
  const p = 10 ** Math.floor(Math.log10(x));
  for (const [m, steps] of NICE) if (m * p >= x) return { max: m * p, steps };
  return { max: 10 * p, steps: 4 };
}

function short(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return `${+n.toFixed(2)}`;
}

function panel(p: Panel, sizes: number[], ox: number, oy: number): string {
  const x0 = ox + PAD.left;
  const x1 = ox + W - PAD.right;
  const y0 = oy + H - PAD.bottom;
  const y1 = oy + PAD.top;
  const lo = Math.log(Math.min(...sizes));
  const hi = Math.log(Math.max(...sizes));
  const span = hi > lo ? hi - lo : 1;
  const xOf = (n: number): number => x0 + ((Math.log(n) - lo) / span) * (x1 - x0) * 0.9 + (x1 - x0) * 0.05;
  const { max, steps } = niceCeil(Math.max(0, ...p.series.flatMap((s) => s.values.filter(Number.isFinite))) * 1.05);
  const yOf = (v: number): number => y0 - (v / max) * (y0 - y1);
  const out: string[] = [];
  out.push(`<rect x="${ox + 0.5}" y="${oy + 0.5}" width="${W - 1}" height="${H - 1}" fill="white" stroke="#ccc"/>`);
  out.push(`<text x="${ox + W / 2}" y="${oy + 16}" text-anchor="middle" font-size="12" font-weight="bold">${esc(p.title)}</text>`);
  for (let k = 0; k <= steps; k++) {
    const v = (max * k) / steps;
    const y = yOf(v);
    out.push(`<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${x0 - 4}" y="${y + 3}" text-anchor="end" font-size="9">${short(v)}</text>`);
  }
  out.push(`<text x="${ox + 10}" y="${(y0 + y1) / 2}" font-size="9" transform="rotate(-90 ${ox + 10} ${(y0 + y1) / 2})" text-anchor="middle">${esc(p.unit)}</text>`);
  out.push(`<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="#333"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="#333"/>`);
  for (const n of sizes) {
    out.push(`<line x1="${xOf(n)}" y1="${y0}" x2="${xOf(n)}" y2="${y0 + 3}" stroke="#333"/>`);
    out.push(`<text x="${xOf(n)}" y="${y0 + 13}" text-anchor="middle" font-size="9">${short(n)}</text>`);
  }
  out.push(`<text x="${(x0 + x1) / 2}" y="${y0 + 26}" text-anchor="middle" font-size="9">points (log scale)</text>`);
  p.series.forEach((s, i) => {
    const pts = sizes.map((n, j) => [n, s.values[j] as number] as const).filter(([, v]) => Number.isFinite(v));
    const dash = s.dashed ? ' stroke-dasharray="4 3"' : '';
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="1.8"${dash} points="${pts.map(([n, v]) => `${xOf(n).toFixed(1)},${yOf(v).toFixed(1)}`).join(' ')}"/>`);
    for (const [n, v] of pts) out.push(`<circle cx="${xOf(n).toFixed(1)}" cy="${yOf(v).toFixed(1)}" r="2.5" fill="${s.colour}"/>`);
    const ly = oy + 27;
    const lx = x0 + 4 + i * 110;
    out.push(`<line x1="${lx}" y1="${ly - 3}" x2="${lx + 14}" y2="${ly - 3}" stroke="${s.colour}" stroke-width="1.8"${dash}/><text x="${lx + 17}" y="${ly}" font-size="9">${esc(s.label)}</text>`);
  });
  return out.join('\n');
}

/** The whole figure: panels in rows of {@link COLUMNS}, a caption line under them. */
export function scaleSvg(sizes: number[], panels: Panel[], caption: string): string {
  const rows = Math.ceil(panels.length / COLUMNS);
  const width = COLUMNS * W;
  const height = rows * H + 24;
  const body = panels.map((p, i) => panel(p, sizes, (i % COLUMNS) * W, Math.floor(i / COLUMNS) * H)).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    body,
    `<text x="8" y="${rows * H + 16}" font-size="10">${esc(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
