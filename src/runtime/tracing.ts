/**
 * OpenTelemetry context across NATS: injected into message headers on every ask and tell,
 * extracted on receipt, and one span per handled message. Only the API is used here; the SDK
 * is set up by the CLI (src/cli/telemetry.ts). Without an SDK every call below is a cheap no-op
 * and no header is added.
 */
import {
  context,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';

export const TRACER_NAME = 'shoal';

// A proxy tracer: it delegates to whatever provider is registered when a span starts, so it
// can be made once, at load; `trace.getTracer` per message built a new proxy each time.
const tracer = trace.getTracer(TRACER_NAME);

const setter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

const getter: TextMapGetter<MsgHdrs> = {
  keys(carrier) {
    return carrier.keys();
  },
  get(carrier, key) {
    const v = carrier.get(key);
    return v === '' ? undefined : v;
  },
};

/**
 * The active context as trace headers, added to `base` (created when needed). Returns `base`
 * unchanged when there is nothing to propagate, so untraced messages carry no headers.
 */
export function injectTrace(base?: MsgHdrs): MsgHdrs | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier, setter);
  const keys = Object.keys(carrier);
  if (keys.length === 0) return base;
  const h = base ?? natsHeaders();
  for (const k of keys) h.set(k, carrier[k] as string);
  return h;
}

/** The remote parent context carried by `headers`, or the root context. */
export function extractTrace(headers: MsgHdrs | undefined): Context {
  if (!headers) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers, getter);
}

const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** Whether an SDK registered a tracer provider; without one, spans would only be no-ops. */
function tracingEnabled(): boolean {
  const p = trace.getTracerProvider();
  return !(p instanceof ProxyTracerProvider) || p.getDelegate() !== NOOP_PROVIDER;
}

/**
 * Starts the span of one handled message, as a child of `parent`; undefined when no tracer
 * provider is registered (a hot-path saving: {@link runInTrace} still makes a remote parent
 * active, so the trace keeps propagating through an untraced process).
 */
export function startMessageSpan(actor: string, messageType: string, parent: Context, asked: boolean): Span | undefined {
  if (!tracingEnabled()) return undefined;
  return tracer.startSpan(
    `${actor} ${messageType}`,
    {
      kind: asked ? SpanKind.SERVER : SpanKind.CONSUMER,
      attributes: { 'shoal.actor': actor, 'shoal.message.type': messageType, 'messaging.system': 'nats' },
    },
    parent,
  );
}

export function endSpan(span: Span | undefined, err?: unknown): void {
  if (span === undefined) return;
  if (err !== undefined) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  }
  span.end();
}

/** Runs `fn` with `span` (or, without one, the remote `parent`) as the active context. */
export function runInTrace<T>(parent: Context, span: Span | undefined, fn: () => T): T {
  if (span !== undefined) return context.with(trace.setSpan(parent, span), fn);
  if (parent === ROOT_CONTEXT) return fn();
  return context.with(parent, fn);
}
