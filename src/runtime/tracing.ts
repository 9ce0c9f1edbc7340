/**
 * OpenTelemetry context across NATS: injected into message headers on every ask and tell,
 * extracted on receipt, and a span for each handled message that belongs to a trace. Only the
 * API is used here; the SDK is set up by the CLI (src/cli/telemetry.ts). Without an SDK every
 * call below is a cheap no-op and no header is added.
 *
 * Which messages make spans: one that arrives within a trace (its sender's context travelled
 * with it), and one its actor names as a root ({@link MessageTracing.root}: a client's request
 * to the router). Everything else that arrives with no trace — timer ticks, heartbeats, lease
 * renewals, health checks, scrapes, introspection — makes no span and is handled under the root
 * context, so nothing it sends starts a trace either. Span names are operations (`shoal.upsert`,
 * `shard.write`), never ids; ids go in attributes (docs/operations.md#traces).
 */
import {
  context,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
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

/**
 * Whether an SDK registered a tracer provider; without one, spans would only be no-ops. Hot
 * paths check this first and do nothing more when it is false.
 */
export function tracingEnabled(): boolean {
  const p = trace.getTracerProvider();
  return !(p instanceof ProxyTracerProvider) || p.getDelegate() !== NOOP_PROVIDER;
}

/** Whether `ctx` holds a span (local or remote) that new spans can be children of. */
export function inTrace(ctx: Context): boolean {
  const sc = trace.getSpanContext(ctx);
  return sc !== undefined && trace.isSpanContextValid(sc);
}

/** How an actor's messages appear in traces (see the file comment); every part is optional. */
export interface MessageTracing<M> {
  /** The span's name: the operation, low cardinality (never an id). Default `<actor kind>.<message type>`. */
  name?(msg: M): string;
  /** Whether `msg` may start a trace when it arrives with none (a client's request). Default false. */
  root?(msg: M): boolean;
  /** Attributes of the span (collection, shard, ...). */
  attributes?(msg: M): Attributes;
}

/** What the actor runtime knows of a handled message, for its span. */
export interface HandledMessage {
  /** The actor's full name (`replica.<uid>.<shard>`); its kind is the part before the first dot. */
  actor: string;
  /** The node (actor system) handling it. */
  node: string;
  /** The message's type (Behavior.describe). */
  type: string;
  /** The NATS subject it arrived on; undefined when delivered in-process. */
  subject: string | undefined;
  /** Asked (a reply is expected) or told. */
  asked: boolean;
}

/**
 * Starts the span of one handled message, as a child of `parent`; undefined when no tracer
 * provider is registered (a hot-path saving: {@link runInTrace} still makes a remote parent
 * active, so the trace keeps propagating through an untraced process), and when the message
 * arrived with no trace and may not start one.
 */
export function startMessageSpan<M>(m: HandledMessage, msg: M, parent: Context, how: MessageTracing<M> | undefined): Span | undefined {
  if (!tracingEnabled()) return undefined;
  if (!inTrace(parent) && how?.root?.(msg) !== true) return undefined;
  const dot = m.actor.indexOf('.');
  const kind = dot < 0 ? m.actor : m.actor.slice(0, dot);
  const attributes: Attributes = {
    'messaging.system': 'nats',
    'messaging.operation.type': 'process',
    'messaging.operation.name': m.type,
    'shoal.actor': m.actor,
    'shoal.node': m.node,
    ...how?.attributes?.(msg),
  };
  if (m.subject !== undefined) attributes['messaging.destination.name'] = m.subject;
  return tracer.startSpan(how?.name?.(msg) ?? `${kind}.${m.type}`, { kind: m.asked ? SpanKind.SERVER : SpanKind.CONSUMER, attributes }, parent);
}

/** Starts an internal span (Raft's work) as a child of `parent`, with `links` to other traces it also serves. */
export function startChildSpan(name: string, parent: Context, attributes: Attributes, links?: Link[], kind: SpanKind = SpanKind.INTERNAL): Span {
  return tracer.startSpan(name, { kind, attributes, ...(links && links.length > 0 ? { links } : {}) }, parent);
}

export function endSpan(span: Span | undefined, err?: unknown): void {
  if (span === undefined) return;
  if (err !== undefined) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  }
  span.end();
}

/**
 * Runs `fn` with `span` (or, without one, the remote `parent`) as the active context. A message
 * outside any trace runs under the root context, so that a context left active by whatever
 * woke the mailbox does not leak into it.
 */
export function runInTrace<T>(parent: Context, span: Span | undefined, fn: () => T): T {
  if (span !== undefined) return context.with(trace.setSpan(parent, span), fn);
  if (parent === ROOT_CONTEXT) return tracingEnabled() ? context.with(ROOT_CONTEXT, fn) : fn();
  return context.with(parent, fn);
}

/** `ctx` with `span` as its active span. */
export function withSpan(ctx: Context, span: Span): Context {
  return trace.setSpan(ctx, span);
}

/**
 * A context as a W3C `traceparent` value (`00-<trace id>-<span id>-<flags>`), or undefined when
 * it holds no span. Raft uses it to carry each entry's context in its append headers.
 */
export function toTraceparent(ctx: Context): string | undefined {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags.toString(16).padStart(2, '0')}`;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote context of a `traceparent` value; undefined when it is not one. */
export function fromTraceparent(value: string): Context | undefined {
  const m = TRACEPARENT.exec(value);
  if (!m) return undefined;
  const sc = { traceId: m[1] as string, spanId: m[2] as string, traceFlags: parseInt(m[3] as string, 16), isRemote: true };
  if (!trace.isSpanContextValid(sc)) return undefined;
  return trace.setSpanContext(ROOT_CONTEXT, sc);
}

/** A span link to the span of `ctx` (for work that serves several traces at once). */
export function linkTo(ctx: Context): Link | undefined {
  const sc = trace.getSpanContext(ctx);
  return sc ? { context: sc } : undefined;
}

export { SpanKind, type Attributes, type Context, type Link, type Span };

/**
 * `fn`, made to run under the root context when tracing is on (work of many requests at once,
 * such as a Raft turn, must not inherit the trace of whichever request scheduled it); `fn`
 * itself when it is off.
 */
export function outsideTraces<F extends (...args: never[]) => unknown>(fn: F): F {
  return tracingEnabled() ? context.bind(ROOT_CONTEXT, fn) : fn;
}

/** The active context, when it holds a span to be a child of; undefined otherwise (and whenever tracing is off). */
export function activeTrace(): Context | undefined {
  if (!tracingEnabled()) return undefined;
  const ctx = context.active();
  return inTrace(ctx) ? ctx : undefined;
}
