/**
 * The OpenTelemetry SDK, set up here and only here (libraries use the API alone). Nothing is
 * sent over the network unless the user configured an OTLP endpoint through the standard
 * `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables. `--trace-file`
 * (or `SHOAL_TRACE_FILE`) writes finished spans as JSON lines instead, for debugging.
 * Context propagation (W3C `traceparent`) is on in every case.
 */
import { appendFileSync } from 'node:fs';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';

export interface TelemetryOptions {
  serviceName: string;
  /** Write finished spans, one JSON object per line, to this file. */
  traceFile?: string | undefined;
}

export interface Telemetry {
  shutdown(): Promise<void>;
}

/** One finished span as written to a trace file. */
export interface SpanRecord {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  kind: number;
  startMs: number;
  durationMs: number;
  status: number;
  attributes: Record<string, unknown>;
  pid: number;
}

class FileSpanExporter implements SpanExporter {
  constructor(
    private readonly path: string,
    private readonly service: string,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    try {
      const lines = spans.map((s) => JSON.stringify(toRecord(s, this.service))).join('\n');
      appendFileSync(this.path, `${lines}\n`);
      done({ code: ExportResultCode.SUCCESS });
    } catch (err) {
      done({ code: ExportResultCode.FAILED, error: err as Error });
    }
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

function toRecord(s: ReadableSpan, service: string): SpanRecord {
  const ctx = s.spanContext();
  const [sec, ns] = s.startTime;
  const [dsec, dns] = s.duration;
  return {
    service,
    name: s.name,
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: s.parentSpanContext?.spanId ?? null,
    kind: s.kind,
    startMs: sec * 1e3 + ns / 1e6,
    durationMs: dsec * 1e3 + dns / 1e6,
    status: s.status.code,
    attributes: { ...s.attributes },
    pid: process.pid,
  };
}

export function otlpConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
}

export function setupTelemetry(opts: TelemetryOptions): Telemetry {
  const traceFile = opts.traceFile ?? process.env['SHOAL_TRACE_FILE'];
  const spanProcessors = traceFile ? [new SimpleSpanProcessor(new FileSpanExporter(traceFile, opts.serviceName))] : [];
  const sdk = otlpConfigured()
    ? // The standard OTEL_* variables choose the OTLP exporter and its endpoint.
      new NodeSDK({ serviceName: opts.serviceName, instrumentations: [], metricReaders: [], logRecordProcessors: [] })
    : new NodeSDK({ serviceName: opts.serviceName, instrumentations: [], metricReaders: [], logRecordProcessors: [], spanProcessors });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
