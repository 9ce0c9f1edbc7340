/**
 * `npm run bench:metrics`: what recording one request's metrics costs on the request path — a
 * labelled counter increment and a labelled histogram observation — in prom-client (through
 * src/runtime/metrics.ts, as the router records them), in the hand-written registry it replaced
 * (bench/lib/handwritten-metrics.ts), and in the OpenTelemetry metrics SDK (the alternative
 * considered; measured when @opentelemetry/sdk-metrics is installed, as sdk-node brings it).
 * A loopback request costs ~47 µs of CPU: a few hundred ns per record is fine, microseconds not.
 *
 * Rounds alternate the libraries; the figures are medians over ROUNDS (default 7) of N (default
 * 1,000,000) records each, with four `op` values in turn as the router's requests have.
 */
import { performance } from 'node:perf_hooks';
import { LATENCY_BUCKETS_SECONDS, MetricsRegistry } from '../src/runtime/metrics.js';
import { HandCounter, HandHistogram } from './lib/handwritten-metrics.js';
import { fmt, median } from './lib/stats.js';
import { machine, today, writeSection } from './lib/report.js';

const ROUNDS = Number(process.env['ROUNDS'] ?? 7);
const N = Number(process.env['N'] ?? 1_000_000);
const OPS = ['search', 'upsert', 'get', 'delete'] as const;

type Record_ = (i: number) => void;

interface Lib {
  name: string;
  counter: Record_;
  histogram: Record_;
}

function timeNs(fn: Record_): number {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) fn(i);
  return ((performance.now() - t0) * 1e6) / N;
}

async function otel(): Promise<Lib | undefined> {
  try {
    const sdk = (await import('@opentelemetry/sdk-metrics' as string)) as {
      MeterProvider: new (o: { readers: unknown[] }) => { getMeter(n: string): { createCounter(n: string): { add(v: number, a: object): void }; createHistogram(n: string, o: object): { record(v: number, a: object): void } } };
      MetricReader: unknown;
    };
    const { PrometheusExporter } = (await import('@opentelemetry/exporter-prometheus' as string)) as { PrometheusExporter: new (o: object) => unknown };
    const meter = new sdk.MeterProvider({ readers: [new PrometheusExporter({ preventServerStart: true })] }).getMeter('bench');
    const c = meter.createCounter('shoal_requests');
    const h = meter.createHistogram('shoal_request_duration', { unit: 's', advice: { explicitBucketBoundaries: LATENCY_BUCKETS_SECONDS } });
    return {
      name: 'OpenTelemetry SDK (not used)',
      counter: (i) => c.add(1, { op: OPS[i & 3], code: 'OK' }),
      histogram: (i) => h.record((i % 100) * 0.0007, { op: OPS[i & 3] }),
    };
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const m = new MetricsRegistry();
  const pc = m.counter('shoal_requests_total', 'bench', ['op', 'code']);
  const ph = m.histogram('shoal_request_duration_seconds', 'bench', ['op'], LATENCY_BUCKETS_SECONDS);
  const hc = new HandCounter();
  const hh = new HandHistogram(LATENCY_BUCKETS_SECONDS);
  const libs: Lib[] = [
    { name: 'prom-client (used)', counter: (i) => pc.inc({ op: OPS[i & 3] as string, code: 'OK' }), histogram: (i) => ph.observe({ op: OPS[i & 3] as string }, (i % 100) * 0.0007) },
    { name: 'hand-written (before)', counter: (i) => hc.inc({ op: OPS[i & 3] as string, code: 'OK' }), histogram: (i) => hh.observe({ op: OPS[i & 3] as string }, (i % 100) * 0.0007) },
  ];
  const o = await otel();
  if (o) libs.push(o);
  const results = libs.map(() => ({ counter: [] as number[], histogram: [] as number[] }));
  for (let r = 0; r < ROUNDS; r++) {
    libs.forEach((lib, j) => {
      results[j]!.counter.push(timeNs(lib.counter));
      results[j]!.histogram.push(timeNs(lib.histogram));
    });
  }
  const rows = libs.map((lib, j) => `| ${lib.name} | ${fmt(median(results[j]!.counter))} | ${fmt(median(results[j]!.histogram))} |`);
  const body = `## Metrics: recording one request (\`npm run bench:metrics\`)

Run ${today()} on ${machine()}. Medians of ${ROUNDS} alternating rounds of ${N.toLocaleString('en-US')} records; four \`op\` values in turn.

| library | counter inc, ns | histogram observe, ns |
|---|---:|---:|
${rows.join('\n')}

A router records one of each per request; a loopback request costs ~47 µs of CPU, so prom-client's
cost is under 2% of it.${o ? '' : ' (@opentelemetry/sdk-metrics was not installed: its row is missing.)'}`;
  process.stdout.write(`${body}\n`);
  writeSection('metrics', body);
}

await main();
