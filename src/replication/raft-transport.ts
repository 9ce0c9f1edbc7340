/**
 * Raft messages between nodes as NATS request-reply. Every message a node's groups send to one
 * peer node during a turn goes in one request (split only to stay under the server's max
 * payload) on the peer's subject `_<prefix>.raft.<node>`, CBOR-encoded. The peer steps the
 * batch and answers the request once the turn that stepped it is flushed, with whatever its
 * groups have for the sender by then (append acknowledgements, votes): an RPC's response rides
 * on its reply instead of costing a request and an empty reply of its own. Messages with no
 * request to ride on go as requests. A timeout or "no responders" is reported as the peer
 * being unreachable for those groups, never thrown. */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { decodeCbor, encodeCbor } from '../runtime/codec.js';
import type { InboxRequester } from '../runtime/inbox-requester.js';
import type { Subjects } from '../runtime/subjects.js';
import type { Message } from '../raft/types.js';

/** One request: the sender node and its groups' messages. */
export interface RaftBatch {
  k: 'batch';
  from: string;
  msgs: [string, Message][];
}

/** One piece of a streamed snapshot (see raft-snapshots.ts). */
export interface SnapshotChunk {
  k: 'chunk';
  from: string;
  group: string;
  /** The `snap` message the chunks belong to (its meta says what the image is). */
  msg: Extract<Message, { type: 'snap' }>;
  seq: number;
  data: Uint8Array;
  /** The state machine's chunk goes on in the next piece (pieces stay under the max payload). */
  cont: boolean;
  last: boolean;
}

export type RaftWire = RaftBatch | SnapshotChunk;

/** A peer's request whose reply waits for the turn that steps its batch (see {@link NatsRaftTransport.takeWaiting}). */
export interface Waiting {
  peer: string;
  msg: Msg;
}

export interface TransportHandlers {
  /** Steps a peer's messages; returns true when a turn will follow (then the request waits for it). */
  onBatch(from: string, msgs: [string, Message][]): boolean;
  /** Answers a chunk; the promise's value is the reply (`true` to go on, `false` to stop). */
  onChunk(chunk: SnapshotChunk): Promise<boolean>;
  onUnreachable(peer: string, groups: readonly string[]): void;
}

const EMPTY = new Uint8Array(0);
/** Bytes reserved in a request for CBOR framing. */
const FRAMING = 4 * 1024;

export class NatsRaftTransport {
  private readonly out = new Map<string, [string, Message][]>();
  private readonly outBytes = new Map<string, number>();
  private readonly lastSent = new Map<string, number>();
  private waiting: Waiting[] = [];
  private sub: Subscription | undefined;
  private stopped = false;
  readonly maxPayload: number;
  /** Counters for status and benchmarks. */
  readonly stats = { requests: 0, replies: 0, messages: 0, unreachable: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly requests: InboxRequester,
    private readonly subjects: Subjects,
    private readonly node: string,
    private readonly requestTimeoutMs: number,
    private readonly handlers: TransportHandlers,
  ) {
    this.maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  }

  start(): void {
    this.sub = this.nc.subscribe(this.subjects.internal('raft', this.node), {
      callback: (err, msg) => {
        if (!err) this.receive(msg);
      },
    });
  }

  stop(): void {
    for (const w of this.takeWaiting()) w.msg.respond(EMPTY);
    this.stopped = true;
    this.sub?.unsubscribe();
  }

  /** Queues `m` (of `group`) for its peer; sent at the next {@link flush}. */
  enqueue(group: string, m: Message): void {
    let list = this.out.get(m.to);
    if (!list) this.out.set(m.to, (list = []));
    list.push([group, m]);
    let bytes = 64;
    if (m.type === 'app') for (const e of m.entries) bytes += e.data.length + 48;
    this.outBytes.set(m.to, (this.outBytes.get(m.to) ?? 0) + bytes);
  }

  /**
   * Requests received since the last call whose batches the host stepped and whose turn is
   * still to come: the host answers them with {@link flush} once that turn's writes are flushed.
   */
  takeWaiting(): Waiting[] {
    const w = this.waiting;
    this.waiting = [];
    return w;
  }

  /**
   * Sends everything queued, one message per peer (more only to stay under max payload): as the
   * reply to that peer's request among `answer` when there is one, else as a request of its own.
   * Every request in `answer` gets its reply (empty when nothing is queued for its peer).
   */
  flush(now: number, answer: readonly Waiting[] = []): void {
    const carrier = new Map<string, Msg>();
    for (const w of answer) {
      const prev = carrier.get(w.peer);
      if (prev) prev.respond(EMPTY);
      carrier.set(w.peer, w.msg);
    }
    for (const [peer, list] of this.out) {
      const total = this.outBytes.get(peer) ?? 0;
      const limit = this.maxPayload - FRAMING;
      const parts: [string, Message][][] = [];
      if (total <= limit) parts.push(list);
      else {
        let part: [string, Message][] = [];
        let bytes = 0;
        for (const item of list) {
          const m = item[1];
          let b = 64;
          if (m.type === 'app') for (const e of m.entries) b += e.data.length + 48;
          if (part.length > 0 && bytes + b > limit) {
            parts.push(part);
            part = [];
            bytes = 0;
          }
          part.push(item);
          bytes += b;
        }
        if (part.length > 0) parts.push(part);
      }
      for (const part of parts) {
        const reply = carrier.get(peer);
        if (reply) {
          carrier.delete(peer);
          this.respond(reply, part);
        } else this.request(peer, part);
      }
      this.lastSent.set(peer, now);
    }
    for (const msg of carrier.values()) msg.respond(EMPTY);
    this.out.clear();
    this.outBytes.clear();
  }

  /** Node-level liveness: an empty batch to each peer that got nothing for `idleMs`. */
  ping(peers: Iterable<string>, now: number, idleMs: number): void {
    for (const p of peers) {
      if (now - (this.lastSent.get(p) ?? 0) >= idleMs) {
        this.request(p, []);
        this.lastSent.set(p, now);
      }
    }
  }

  /** One snapshot chunk to `peer`; resolves with its answer, rejects when unreachable. */
  async sendChunk(peer: string, chunk: SnapshotChunk, timeoutMs: number): Promise<boolean> {
    const res = await this.requests.request(this.subjects.internal('raft', peer), encodeCbor(chunk), { timeout: timeoutMs });
    return res.data.length > 0 && decodeCbor(res.data) === true;
  }

  private request(peer: string, msgs: [string, Message][]): void {
    const batch: RaftBatch = { k: 'batch', from: this.node, msgs };
    const bytes = encodeCbor(batch);
    this.stats.requests++;
    this.stats.messages += msgs.length;
    this.requests.request(this.subjects.internal('raft', peer), bytes, { timeout: this.requestTimeoutMs }).then(
      (res) => {
        if (res.data.length > 0 && !this.stopped) this.receiveReply(res.data);
      },
      () => {
        if (this.stopped) return;
        this.stats.unreachable++;
        this.handlers.onUnreachable(peer, [...new Set(msgs.map((x) => x[0]))]);
      },
    );
  }

  /** A peer's answer to our request: its messages for us, produced by the turn that stepped ours. */
  private receiveReply(data: Uint8Array): void {
    let wire: RaftWire;
    try {
      wire = decodeCbor(data) as RaftWire;
    } catch {
      return;
    }
    if (wire.k === 'batch' && Array.isArray(wire.msgs)) this.handlers.onBatch(String(wire.from), wire.msgs);
  }

  private respond(msg: Msg, msgs: [string, Message][]): void {
    const batch: RaftBatch = { k: 'batch', from: this.node, msgs };
    this.stats.replies++;
    this.stats.messages += msgs.length;
    msg.respond(encodeCbor(batch));
  }

  private receive(msg: Msg): void {
    let wire: RaftWire;
    try {
      wire = decodeCbor(msg.data) as RaftWire;
    } catch {
      return; // not ours: the sender will time out and treat us as unreachable
    }
    if (wire.k === 'chunk') {
      this.handlers.onChunk(wire).then(
        (ok) => msg.respond(encodeCbor(ok)),
        () => msg.respond(encodeCbor(false)),
      );
      return;
    }
    if (wire.k === 'batch' && Array.isArray(wire.msgs)) {
      const from = String(wire.from);
      // The reply carries this node's answers (acknowledgements, votes) once the turn that steps
      // the batch is flushed; with no turn to come it only proves delivery.
      const later = this.handlers.onBatch(from, wire.msgs);
      if (msg.reply) {
        if (later) this.waiting.push({ peer: from, msg });
        else msg.respond(EMPTY);
      }
    } else if (msg.reply) msg.respond(EMPTY);
  }
}
