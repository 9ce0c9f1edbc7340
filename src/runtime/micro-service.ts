/**
 * Registration with the NATS micro service protocol (ADR-32, v1): a service answers
 * `$SRV.PING|INFO|STATS`, `…​.<name>` and `…​.<name>.<id>`, and reports per-endpoint statistics.
 *
 * Written here rather than taken from @nats-io/services because that library times a handler
 * only while it runs synchronously and counts an error only when it throws: Shoal's endpoints
 * answer asynchronously (a search waits for its shards), so their latency and errors are
 * recorded when the answer is sent, through {@link EndpointStats.record}.
 */
import { nuid, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { encodeJson } from './codec.js';

export interface EndpointInfo {
  name: string;
  subject: string;
  queue_group: string;
}

export interface MicroServiceOptions {
  name: string;
  version: string;
  description: string;
  metadata?: Record<string, string>;
}

/** Counters of one endpoint. */
export class EndpointStats {
  numRequests = 0;
  numErrors = 0;
  lastError = '';
  processingNs = 0;

  constructor(readonly info: EndpointInfo) {}

  /** Records one answered request that took `ms` milliseconds; `error` when it failed. */
  record(ms: number, error?: string): void {
    this.numRequests++;
    this.processingNs += Math.round(ms * 1e6);
    if (error !== undefined) {
      this.numErrors++;
      this.lastError = error;
    }
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.info.name,
      subject: this.info.subject,
      queue_group: this.info.queue_group,
      num_requests: this.numRequests,
      num_errors: this.numErrors,
      last_error: this.lastError,
      processing_time: this.processingNs,
      average_processing_time: this.numRequests === 0 ? 0 : Math.round(this.processingNs / this.numRequests),
    };
  }
}

/** One instance of a micro service (one per process); endpoints are served by the caller's own subscriptions. */
export class MicroService {
  readonly id = nuid.next();
  private readonly started = new Date().toISOString();
  private readonly endpoints = new Map<string, EndpointStats>();
  private readonly subs: Subscription[] = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: MicroServiceOptions,
  ) {
    for (const verb of ['PING', 'INFO', 'STATS'] as const) {
      for (const subject of [`$SRV.${verb}`, `$SRV.${verb}.${opts.name}`, `$SRV.${verb}.${opts.name}.${this.id}`]) {
        this.subs.push(nc.subscribe(subject, { callback: (_e, m) => this.answer(verb, m) }));
      }
    }
  }

  /** Declares an endpoint and returns its counters. */
  endpoint(name: string, subject: string, queueGroup: string): EndpointStats {
    const stats = new EndpointStats({ name, subject, queue_group: queueGroup });
    this.endpoints.set(name, stats);
    return stats;
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
  }

  private identity(type: string): Record<string, unknown> {
    return { type, name: this.opts.name, id: this.id, version: this.opts.version, metadata: this.opts.metadata ?? {} };
  }

  private answer(verb: 'PING' | 'INFO' | 'STATS', m: Msg): void {
    const eps = [...this.endpoints.values()];
    let body: Record<string, unknown>;
    switch (verb) {
      case 'PING':
        body = this.identity('io.nats.micro.v1.ping_response');
        break;
      case 'INFO':
        body = { ...this.identity('io.nats.micro.v1.info_response'), description: this.opts.description, endpoints: eps.map((e) => ({ ...e.info, metadata: {} })) };
        break;
      case 'STATS':
        body = { ...this.identity('io.nats.micro.v1.stats_response'), started: this.started, endpoints: eps.map((e) => e.toJSON()) };
        break;
    }
    m.respond(encodeJson(body));
  }
}
