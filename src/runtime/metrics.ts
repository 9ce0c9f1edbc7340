/**
 * Prometheus metrics: counters, gauges (set, or read when scraped) and histograms, rendered in
 * the text exposition format and served over HTTP by {@link serveMetrics}.
 */
import { createServer, type Server } from 'node:http';

type Labels = Record<string, string>;

function key(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

function line(name: string, labelKey: string, value: number): string {
  return `${name}${labelKey ? `{${labelKey}}` : ''} ${Number.isFinite(value) ? value : value > 0 ? '+Inf' : value < 0 ? '-Inf' : 'NaN'}`;
}

interface Family {
  render(): string[];
}

export class Counter implements Family {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, ...[...this.values].map(([k, v]) => line(this.name, k, v))];
  }
}

export class Gauge implements Family {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    /** Read at scrape time, replacing set values: `[labels, value]` pairs. */
    private readonly collect?: () => [Labels, number][],
  ) {}
  set(labels: Labels, value: number): void {
    this.values.set(key(labels), value);
  }
  render(): string[] {
    const pairs = this.collect ? this.collect().map(([l, v]) => [key(l), v] as const) : [...this.values];
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, ...pairs.map(([k, v]) => line(this.name, k, v))];
  }
}

export const DEFAULT_LATENCY_BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export class Histogram implements Family {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: number[] = DEFAULT_LATENCY_BUCKETS_MS,
  ) {}
  observe(labels: Labels, value: number): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const sep = k ? `${k},` : '';
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket{${sep}le="${b}"} ${s.counts[i]}`));
      out.push(`${this.name}_bucket{${sep}le="+Inf"} ${s.count}`);
      out.push(line(`${this.name}_sum`, k, s.sum));
      out.push(line(`${this.name}_count`, k, s.count));
    }
    return out;
  }
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();

  counter(name: string, help: string): Counter {
    return this.add(name, new Counter(name, help));
  }

  gauge(name: string, help: string, collect?: () => [Labels, number][]): Gauge {
    return this.add(name, new Gauge(name, help, collect));
  }

  histogram(name: string, help: string, buckets?: number[]): Histogram {
    return this.add(name, new Histogram(name, help, buckets));
  }

  render(): string {
    return `${[...this.families.values()].flatMap((f) => f.render()).join('\n')}\n`;
  }

  private add<T extends Family>(name: string, f: T): T {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`bad metric name ${name}`);
    if (this.families.has(name)) throw new Error(`metric ${name} registered twice`);
    this.families.set(name, f);
    return f;
  }
}

/** Serves `GET /metrics` on `host:port` (port 0 picks a free one). */
export function serveMetrics(registry: MetricsRegistry, port: number, host = '0.0.0.0'): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
      res.end(registry.render());
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found: try /metrics\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
