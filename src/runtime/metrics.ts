/**
 * Prometheus metrics on prom-client (docs/metrics.md): a registry that holds Shoal's naming
 * conventions — base units in the name (`_seconds`, `_bytes`), `_total` on counters and only on
 * counters — and {@link serveMetrics}, the HTTP server of the metrics port: `/metrics`, `/healthz`
 * (alive) and `/readyz` (ready to serve, as the node defines it).
 *
 * prom-client, not the OpenTelemetry SDK with its Prometheus exporter: it writes the text format
 * under exactly the names given (the exporter derives names from units and may add suffixes), and
 * it is the cheaper of the two on the request path (bench/metrics-bench.ts: ~0.2 µs a labelled
 * counter increment, ~0.4 µs a histogram observation, against the SDK's ~0.8 and ~0.6 µs).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Labels = Record<string, string>;
/** One series' value, read when scraped: its labels and the value. */
export type Sample = [Labels, number];

/** Request latency buckets, in seconds: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const NAME = /^[a-z_][a-z0-9_]*$/;
/** Units that are not Prometheus base units: a name says seconds and bytes, not these. */
const NON_BASE_UNIT = /_(ms|msec|milliseconds|us|usec|microseconds|ns|nanoseconds|minutes|hours|days|kb|mb|gb|kib|mib|gib)(_|$)/;

export type MetricKind = 'counter' | 'gauge' | 'histogram';

/** Why `name` breaks Shoal's metric naming conventions for a metric of `kind`, or null when it keeps them. */
export function namingProblem(kind: MetricKind, name: string, labelNames: readonly string[] = []): string | null {
  if (!NAME.test(name)) return `metric name '${name}' must be lower snake_case ([a-z_][a-z0-9_]*)`;
  const unit = NON_BASE_UNIT.exec(name);
  if (unit) return `metric name '${name}' has the unit '${unit[1]}'; use base units (seconds, bytes)`;
  if (kind === 'counter' && !name.endsWith('_total')) return `counter '${name}' must end in _total`;
  if (kind !== 'counter' && name.endsWith('_total')) return `${kind} '${name}' must not end in _total (only counters do)`;
  for (const l of labelNames) {
    if (!NAME.test(l) || l.startsWith('__')) return `label '${l}' of '${name}' must be lower snake_case, not starting with __`;
    if (kind === 'histogram' && l === 'le') return `histogram '${name}' may not use the label 'le'`;
  }
  return null;
}

function checked(kind: MetricKind, name: string, labelNames: readonly string[]): void {
  const problem = namingProblem(kind, name, labelNames);
  if (problem) throw new Error(problem);
}

/** A node's metrics: one prom-client registry, whose families are made only through these checked methods. */
export class MetricsRegistry {
  readonly registry = new Registry();

  /** A counter the caller increments. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    checked('counter', name, labelNames);
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  /**
   * A counter whose values are read when scraped, from counts kept elsewhere; `read` must only
   * ever grow per series (a series may start again from 0 when the process restarts).
   */
  counterFrom<L extends string>(name: string, help: string, labelNames: readonly L[], read: () => Sample[]): Counter<L> {
    checked('counter', name, labelNames);
    return new Counter<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [l, v] of read()) this.inc(l as Partial<Record<L, string>>, v);
      },
    });
  }

  /** A gauge: set by the caller, or, with `read`, read when scraped (the series `read` returns replace all others). */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = [], read?: () => Sample[] | Promise<Sample[]>): Gauge<L> {
    checked('gauge', name, labelNames);
    return new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      ...(read
        ? {
            async collect() {
              const samples = await read();
              this.reset();
              for (const [l, v] of samples) this.set(l as Partial<Record<L, string>>, v);
            },
          }
        : {}),
    });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): Histogram<L> {
    checked('histogram', name, labelNames);
    return new Histogram<L>({ name, help, labelNames, buckets: [...buckets], registers: [this.registry] });
  }

  /** The process's own metrics (prom-client's defaults: `process_*` CPU, memory and file descriptors, `nodejs_*` event loop lag, heap, GC). */
  withProcessMetrics(): this {
    collectDefaultMetrics({ register: this.registry });
    return this;
  }

  /** The Prometheus text exposition of every family. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The names of the families registered. */
  names(): string[] {
    return this.registry.getMetricsAsArray().map((m) => m.name);
  }
}

/** What `/readyz` answers: `ready` picks 200 or 503; the whole object is the JSON body. */
export interface ReadinessReport {
  ready: boolean;
  [detail: string]: unknown;
}

export interface MetricsServerOptions {
  /** Default 0.0.0.0. */
  host?: string;
  /** Decides `/readyz`; without it, ready whenever the process serves. */
  ready?: () => Promise<ReadinessReport>;
}

/**
 * Serves the metrics port on `host:port` (port 0 picks a free one):
 * - `GET /metrics`: the registry in the Prometheus text format;
 * - `GET /healthz`: 200 `ok` while the process runs and its event loop turns (liveness);
 * - `GET /readyz`: 200 when `ready` says so, else 503; a JSON body either way (readiness).
 * HEAD works on each; anything else is 404.
 */
export function serveMetrics(registry: MetricsRegistry, port: number, o: MetricsServerOptions = {}): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    void answer(registry, o, req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, o.host ?? '0.0.0.0', () => {
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

async function answer(registry: MetricsRegistry, o: MetricsServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const send = (status: number, type: string, body: string): void => {
    res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain; charset=utf-8', 'only GET and HEAD\n');
  switch (path) {
    case '/metrics':
      return send(200, registry.contentType, await registry.render());
    case '/healthz':
      return send(200, 'text/plain; charset=utf-8', 'ok\n');
    case '/readyz': {
      let report: ReadinessReport;
      try {
        report = o.ready ? await o.ready() : { ready: true };
      } catch (err) {
        report = { ready: false, error: `readiness could not be decided: ${err instanceof Error ? err.message : String(err)}` };
      }
      return send(report.ready ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`);
    }
    default:
      return send(404, 'text/plain; charset=utf-8', 'not found: try /metrics, /healthz or /readyz\n');
  }
}
