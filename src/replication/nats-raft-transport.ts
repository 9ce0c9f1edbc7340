/**
 * Raft messages between nodes as NATS request-reply (the {@link RaftTransport} that ships).
 * Every frame goes on the peer's subject `_<prefix>.raft.<node>`, CBOR-encoded. The peer steps
 * the batch and answers the request once the turn that stepped it is flushed, with whatever its
 * groups have for the sender by then (append acknowledgements, votes). A timeout or "no
 * responders" is reported as the peer being unreachable for those groups, never thrown.
 *
 * Requests go out with a reply subject under one long-lived inbox subscription of the transport's
 * own, a token per request, and no timer or promise of their own: one sweep every quarter of the
 * request timeout fails those past their deadline (so a lost reply is reported after 1 to 1.25
 * timeouts). A request is the hot path of a `strong` read (issue 21, item 5: bench:exchange).
 */
import { performance } from 'node:perf_hooks';
import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { decodeCbor, encodeCbor } from '../runtime/codec.js';
import type { InboxRequester } from '../runtime/inbox-requester.js';
import type { Logger } from '../runtime/logger.js';
import type { Subjects } from '../runtime/subjects.js';
import { describeError } from '../runtime/errors.js';
import type { Message } from '../raft/types.js';
import { RAFT_TRACE_HEADER } from './raft-trace.js';
import { BatchingTransport, type RaftBatch, type RaftWire, type SnapshotChunk, type TransportHandlers, type Waiting } from './raft-transport.js';

interface NatsWaiting extends Waiting {
  msg: Msg;
}

/** A request of ours waiting for its reply. */
interface Outstanding {
  peer: string;
  msgs: [string, Message][];
  /** clock ms (performance.now) past which it is failed. */
  deadline: number;
}

const EMPTY = new Uint8Array(0);

export class NatsRaftTransport extends BatchingTransport<NatsWaiting> {
  private sub: Subscription | undefined;
  private handlers: TransportHandlers | undefined;
  private stopped = false;
  readonly maxPayload: number;
  /** Our requests' replies: `<inbox>.<token>`. */
  private readonly inbox = `${createInbox()}.`;
  private replySub: Subscription | undefined;
  private readonly outstanding = new Map<string, Outstanding>();
  private nextToken = 0;
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly requests: InboxRequester,
    private readonly subjects: Subjects,
    private readonly node: string,
    private readonly requestTimeoutMs: number,
    private readonly log: Logger,
  ) {
    super();
    this.maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  }

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
    this.sub = this.nc.subscribe(this.subjects.internal('raft', this.node), {
      callback: (err, msg) => {
        if (!err) this.receive(msg);
      },
    });
    this.replySub = this.nc.subscribe(`${this.inbox}*`, {
      callback: (err, msg) => {
        if (!err) this.onReply(msg);
      },
    });
    this.sweeper = setInterval(() => this.sweep(performance.now()), Math.max(10, this.requestTimeoutMs / 4));
    this.sweeper.unref?.();
  }

  stop(): void {
    for (const w of this.takeWaiting()) (w as NatsWaiting).msg.respond(EMPTY);
    this.stopped = true;
    this.sub?.unsubscribe();
    this.replySub?.unsubscribe();
    if (this.sweeper) clearInterval(this.sweeper);
    this.outstanding.clear();
  }

  /** Requests still waiting for their reply. */
  get pending(): number {
    return this.outstanding.size;
  }

  async sendChunk(peer: string, chunk: SnapshotChunk, timeoutMs: number): Promise<boolean> {
    const res = await this.requests.request(this.subjects.internal('raft', peer), encodeCbor(chunk), { timeout: timeoutMs });
    return res.data.length > 0 && decodeCbor(res.data) === true;
  }

  protected request(peer: string, msgs: [string, Message][], trace?: string): void {
    const batch: RaftBatch = { k: 'batch', from: this.node, msgs };
    const token = (this.nextToken++).toString(36);
    const reply = this.inbox + token;
    this.outstanding.set(token, { peer, msgs, deadline: performance.now() + this.requestTimeoutMs });
    try {
      this.nc.publish(this.subjects.internal('raft', peer), encodeCbor(batch), trace === undefined ? { reply } : { reply, headers: traceHeaders(trace) });
    } catch {
      // The connection is closed or draining: as unreachable as a peer that does not answer.
      this.outstanding.delete(token);
      queueMicrotask(() => this.failed(peer, msgs));
    }
  }

  /** The reply to one of our requests: the peer's messages for us, or empty (delivery only), or the server's "no responders". */
  private onReply(msg: Msg): void {
    const token = msg.subject.slice(this.inbox.length);
    const o = this.outstanding.get(token);
    if (!o || this.stopped) return;
    this.outstanding.delete(token);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      this.failed(o.peer, o.msgs);
      return;
    }
    const later = msg.data.length > 0 && this.receiveReply(o.peer, msg.data, msg.headers);
    this.exchangeEnded(o.peer, later);
  }

  /** Fails the requests past their deadline. */
  private sweep(now: number): void {
    for (const [token, o] of this.outstanding) {
      if (o.deadline > now) continue;
      this.outstanding.delete(token);
      this.failed(o.peer, o.msgs);
    }
  }

  private failed(peer: string, msgs: [string, Message][]): void {
    if (this.stopped) return;
    this.stats.unreachable++;
    this.handlers?.onUnreachable(peer, [...new Set(msgs.map((x) => x[0]))]);
    this.exchangeEnded(peer, false);
  }

  /**
   * Answers only (acknowledgements, read indexes): lost like a dropped frame when the connection is
   * closed or draining (nc.publish throws then), which Raft recovers from; never a throw into the turn.
   */
  protected publish(peer: string, msgs: [string, Message][]): void {
    try {
      this.nc.publish(this.subjects.internal('raft', peer), encodeCbor({ k: 'batch', from: this.node, msgs } satisfies RaftBatch));
    } catch (err) {
      if (this.stats.unreachable++ % 1000 === 0) this.log.warn('raft answers could not be published; dropped', { peer, error: describeError(err) });
    }
  }

  protected respond(w: NatsWaiting, msgs: [string, Message][] | undefined, trace?: string): void {
    const data = msgs ? encodeCbor({ k: 'batch', from: this.node, msgs } satisfies RaftBatch) : EMPTY;
    if (trace === undefined) w.msg.respond(data);
    else w.msg.respond(data, { headers: traceHeaders(trace) });
  }

  /** A peer's answer to our request: its messages for us, produced by the turn that stepped ours. Returns whether a turn will follow. */
  private receiveReply(peer: string, data: Uint8Array, headers: MsgHdrs | undefined): boolean {
    const wire = this.decode(data, peer);
    if (wire?.k !== 'batch' || !Array.isArray(wire.msgs)) return false;
    this.arrived(peer, wire.msgs);
    return this.handlers?.onBatch(String(wire.from), wire.msgs, traceOf(headers)) ?? false;
  }

  private decode(data: Uint8Array, from: string): RaftWire | undefined {
    try {
      return decodeCbor(data) as RaftWire;
    } catch (err) {
      // Not a frame of ours (another version, or garbage on our subject): dropped, and said so once in a while.
      if (this.stats.undecodable++ % 1000 === 0) this.log.warn('raft frame could not be decoded; dropped', { from, bytes: data.length, dropped: this.stats.undecodable, error: describeError(err) });
      return undefined;
    }
  }

  private receive(msg: Msg): void {
    const handlers = this.handlers;
    const wire = this.decode(msg.data, msg.reply ?? 'unknown');
    if (!wire || !handlers) return; // the sender times out and treats us as unreachable
    if (wire.k === 'chunk') {
      handlers.onChunk(wire).then(
        (ok) => msg.respond(encodeCbor(ok)),
        () => msg.respond(encodeCbor(false)),
      );
      return;
    }
    if (wire.k === 'batch' && Array.isArray(wire.msgs)) {
      const from = String(wire.from);
      this.arrived(from, wire.msgs);
      // The reply carries this node's answers (acknowledgements, votes) once the turn that steps
      // the batch is flushed; with no turn to come it only proves delivery.
      const later = handlers.onBatch(from, wire.msgs, traceOf(msg.headers));
      if (msg.reply) {
        if (later) this.waiting.push({ peer: from, msg });
        else msg.respond(EMPTY);
      }
    } else if (msg.reply) msg.respond(EMPTY);
  }
}

function traceHeaders(trace: string): MsgHdrs {
  const h = natsHeaders();
  h.set(RAFT_TRACE_HEADER, trace);
  return h;
}

/** The frame's trace header, if it has one (only traced appends do). */
function traceOf(headers: MsgHdrs | undefined): string | undefined {
  if (headers === undefined) return undefined;
  const v = headers.get(RAFT_TRACE_HEADER);
  return v === '' ? undefined : v;
}
