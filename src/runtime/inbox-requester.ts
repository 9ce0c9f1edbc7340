/**
 * Request-reply over one wildcard inbox subscription per connection, as nats.js's own requests
 * do, without their cost per request: nats.js 3.4 cancels every request that succeeded by
 * rejecting its already-resolved promise with a new RequestError, a stack trace built and
 * dropped for each reply (the largest JavaScript cost in a client's profile under load).
 *
 * Failures are nats.js's own classes, so callers tell them apart as before: a TimeoutError when
 * no reply came in time; a RequestError whose cause is a NoRespondersError when the server
 * answered that nobody listens on the subject.
 */
import { createInbox, NoRespondersError, RequestError, TimeoutError, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

interface Pending {
  resolve: (msg: Msg) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  subject: string;
}

export interface InboxRequestOptions {
  /** Milliseconds to wait for the reply. */
  timeout: number;
  headers?: MsgHdrs | undefined;
}

/** True when `err`, from {@link InboxRequester.request}, says no reply came in time. */
export function isRequestTimeout(err: unknown): boolean {
  return err instanceof TimeoutError;
}

/** True when `err`, from {@link InboxRequester.request}, says the server found nobody listening on the subject. */
export function isNoResponders(err: unknown): boolean {
  return err instanceof RequestError && err.isNoResponders();
}

/** True when `err` is the NATS client refusing a message over the server's max payload. */
export function isMaxPayload(err: unknown): boolean {
  return err instanceof Error && /max_payload/.test(err.message);
}

export class InboxRequester {
  private readonly prefix: string;
  private readonly pending = new Map<string, Pending>();
  private next = 0;
  private readonly sub: Subscription;

  constructor(private readonly nc: NatsConnection) {
    this.prefix = `${createInbox()}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (_err, msg) => this.onReply(msg) });
  }

  /** Publishes `data` to `subject` and resolves with the first reply. */
  request(subject: string, data: Uint8Array, opts: InboxRequestOptions): Promise<Msg> {
    const token = (this.next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new TimeoutError());
      }, opts.timeout);
      this.pending.set(token, { resolve, reject, timer, subject });
      try {
        const reply = this.prefix + token;
        this.nc.publish(subject, data, opts.headers ? { reply, headers: opts.headers } : { reply });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(token);
        reject(err instanceof Error ? err : new RequestError(String(err)));
      }
    });
  }

  /** Requests still waiting for their reply. */
  get outstanding(): number {
    return this.pending.size;
  }

  /** Stops listening; requests still waiting fail at once. */
  close(): void {
    this.sub.unsubscribe();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new RequestError('connection closed'));
    }
    this.pending.clear();
  }

  private onReply(msg: Msg | undefined): void {
    if (!msg) return;
    const token = msg.subject.slice(this.prefix.length);
    const p = this.pending.get(token);
    if (!p) return;
    this.pending.delete(token);
    clearTimeout(p.timer);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      const cause = new NoRespondersError(p.subject);
      p.reject(new RequestError(cause.message, { cause }));
    } else p.resolve(msg);
  }
}
