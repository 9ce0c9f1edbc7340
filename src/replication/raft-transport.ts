/**
 * How a node's Raft host reaches its peers: the port ({@link RaftTransport}) and what crosses it.
 * Two implementations: NATS request-reply (nats-raft-transport.ts), and an in-memory twin for the
 * simulation (memory-raft-transport.ts) whose network drops, delays, duplicates and cuts.
 *
 * The contract both keep: every message a node's groups send to one peer node during a turn goes
 * out together at {@link RaftTransport.flush}; a peer's request that a turn will step waits
 * ({@link RaftTransport.takeWaiting}) and is answered at that turn's flush with whatever the
 * node has for that peer by then, so an RPC's response rides on its reply. A peer that does not
 * answer is reported through {@link TransportHandlers.onUnreachable}, never thrown.
 */
import type { Message } from '../raft/types.js';
import { isAnswer, latestHeartbeats, ReadPipeline } from './read-pipeline.js';

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
  /** Chunk 0 only: the sender's estimate of the image's size in bytes (StateMachine.snapshot's `bytes`), when it gave one. */
  total?: number;
}

export type RaftWire = RaftBatch | SnapshotChunk;

/** A peer's request whose reply waits for the turn that steps its batch (opaque to the host). */
export interface Waiting {
  readonly peer: string;
}

export interface TransportHandlers {
  /**
   * Steps a peer's messages; returns true when a turn will follow (then the request waits for
   * it). `traces`: the frame's `Shoal-Raft-Trace` header, when it carried traced entries (raft-trace.ts).
   */
  onBatch(from: string, msgs: [string, Message][], traces?: string): boolean;
  /** Answers a chunk; the promise's value is the reply (`true` to go on, `false` to stop). */
  onChunk(chunk: SnapshotChunk): Promise<boolean>;
  onUnreachable(peer: string, groups: readonly string[]): void;
}

/** Requests sent, replies that carried messages, frames published with no reply wanted, messages carried, peers reported unreachable, frames that could not be decoded. */
export interface TransportStats {
  requests: number;
  replies: number;
  publishes: number;
  messages: number;
  unreachable: number;
  undecodable: number;
}

export interface RaftTransport {
  /** The largest frame the transport carries, in bytes (entries and chunks are sized by it). */
  readonly maxPayload: number;
  readonly stats: TransportStats;
  /** Starts receiving; batches and chunks go to `handlers`. */
  start(handlers: TransportHandlers): void;
  /** Stops receiving; requests still waiting are answered empty. */
  stop(): void;
  /** Queues `m` (of `group`) for its peer; sent at the next {@link flush}. `trace`: its traced entries, for the frame's trace header (raft-trace.ts). */
  enqueue(group: string, m: Message, trace?: string): void;
  /** Requests received since the last call whose batches were stepped and whose turn is still to come. */
  takeWaiting(): Waiting[];
  /**
   * Sends everything queued, one frame per peer (more only to stay under the max payload): as the
   * reply to that peer's request among `answer` when there is one, else as a request of its own
   * (published, with no reply wanted, when it carries only answers and {@link publishAnswers} is
   * on). With read pipelining (read-pipeline.ts) a frame that only asks a peer to confirm reads
   * stays queued while such an exchange with that peer is in flight. Every request in `answer`
   * gets its reply (empty when nothing is queued for its peer).
   */
  flush(now: number, answer?: readonly Waiting[]): void;
  /** Turns read pipelining on (read-pipeline.ts); `released` is called when a peer's answers free waiting frames that no turn will flush. */
  pipelineReads(maxWaitMs: number, released: () => void): void;
  /** Frames of answers only are published, with no reply wanted (one NATS message instead of a request and its empty reply). */
  publishAnswers(): void;
  /** Whether frames wait for an exchange in flight: the host then flushes once in a while (its ticks) so that none waits past the pipeline's bound. */
  holding(): boolean;
  /** Node-level liveness: an empty batch to each peer that got nothing for `idleMs`. */
  ping(peers: Iterable<string>, now: number, idleMs: number): void;
  /** One snapshot chunk to `peer`; resolves with its answer, rejects when unreachable. */
  sendChunk(peer: string, chunk: SnapshotChunk, timeoutMs: number): Promise<boolean>;
}

/** Bytes reserved in a frame for CBOR framing. */
const FRAMING = 4 * 1024;

/**
 * What both transports share: the outbox of a turn, frames per peer sized under the max
 * payload, replies riding on waiting requests, and liveness pings. A transport supplies how a
 * frame goes out as a request and as a reply.
 */
export abstract class BatchingTransport<W extends Waiting> implements RaftTransport {
  abstract readonly maxPayload: number;
  readonly stats: TransportStats = { requests: 0, replies: 0, publishes: 0, messages: 0, unreachable: 0, undecodable: 0 };
  private readonly out = new Map<string, [string, Message][]>();
  private readonly outBytes = new Map<string, number>();
  private readonly lastSent = new Map<string, number>();
  /** The trace header parts of queued messages that carry traced entries (empty unless tracing is on). */
  private readonly traced = new Map<Message, string>();
  protected waiting: W[] = [];
  /** At most one read-asking exchange in flight per peer (read-pipeline.ts); off until {@link pipelineReads}. */
  private pipeline = new ReadPipeline(false, 0);
  /** Whether frames of answers only are published rather than sent as requests. */
  private publishing = false;
  /** Called when a peer's answers released frames that no turn will flush (the host flushes them). */
  private released: (() => void) | undefined;

  abstract start(handlers: TransportHandlers): void;
  abstract stop(): void;
  abstract sendChunk(peer: string, chunk: SnapshotChunk, timeoutMs: number): Promise<boolean>;
  /** Sends `msgs` to `peer` as a request (its reply, if any, is stepped as the peer's batch); `trace`: the frame's trace header. */
  protected abstract request(peer: string, msgs: [string, Message][], trace?: string): void;
  /** Answers a waiting request: with `msgs`, or empty (delivery only) when undefined. */
  protected abstract respond(w: W, msgs: [string, Message][] | undefined, trace?: string): void;
  /** Sends `msgs` to `peer` with no reply wanted (they are all answers: isAnswer in read-pipeline.ts). */
  protected abstract publish(peer: string, msgs: [string, Message][]): void;

  /**
   * Turns read pipelining on (read-pipeline.ts): `maxWaitMs` bounds how long a frame waits for a
   * lost answer; `released` is called when a peer's answers free frames and no turn follows.
   */
  pipelineReads(maxWaitMs: number, released: () => void): void {
    this.pipeline = new ReadPipeline(true, maxWaitMs);
    this.released = released;
  }

  publishAnswers(): void {
    this.publishing = true;
  }

  holding(): boolean {
    return this.pipeline.busy() && this.out.size > 0;
  }

  /** A frame arrived from `peer` (a request, a reply, a published frame): its answers end the exchange in flight. */
  protected arrived(peer: string, msgs: readonly [string, Message][]): void {
    this.pipeline.received(peer, msgs);
  }

  /**
   * Our request to `peer` ended: answered (after {@link arrived} and the batch was stepped;
   * `turnFollows` when a turn will flush), or failed. Frames that waited for it leave now unless
   * a turn is coming to take them.
   */
  protected exchangeEnded(peer: string, turnFollows: boolean): void {
    this.pipeline.ended(peer);
    if (!turnFollows && this.out.has(peer)) this.released?.();
  }

  enqueue(group: string, m: Message, trace?: string): void {
    if (trace !== undefined) this.traced.set(m, trace);
    let list = this.out.get(m.to);
    if (!list) this.out.set(m.to, (list = []));
    list.push([group, m]);
    this.outBytes.set(m.to, (this.outBytes.get(m.to) ?? 0) + messageBytes(m));
  }

  takeWaiting(): Waiting[] {
    const w = this.waiting;
    this.waiting = [];
    return w;
  }

  flush(now: number, answer: readonly Waiting[] = []): void {
    if (this.out.size === 0 && answer.length === 0) return;
    const carrier = new Map<string, W>();
    for (const w of answer as readonly W[]) {
      const prev = carrier.get(w.peer);
      if (prev) this.respond(prev, undefined);
      carrier.set(w.peer, w);
    }
    const pipelined = this.pipeline.enabled;
    for (const [peer, queued] of this.out) {
      if (!carrier.has(peer) && this.pipeline.holds(peer, queued, now)) continue;
      const list = pipelined ? latestHeartbeats(queued) : queued;
      for (const part of splitFrames(list, this.outBytes.get(peer) ?? 0, this.maxPayload - FRAMING)) {
        const reply = carrier.get(peer);
        const trace = this.traced.size > 0 ? this.traceOf(part) : undefined;
        this.stats.messages += part.length;
        if (reply) {
          carrier.delete(peer);
          this.stats.replies++;
          this.respond(reply, part, trace);
        } else if (this.publishing && trace === undefined && part.every(([, m]) => isAnswer(m))) {
          this.stats.publishes++;
          this.publish(peer, part);
        } else {
          this.stats.requests++;
          this.request(peer, part, trace);
        }
        this.pipeline.sent(peer, part, now);
        if (this.traced.size > 0) for (const [, m] of part) this.traced.delete(m);
      }
      this.lastSent.set(peer, now);
      this.out.delete(peer);
      this.outBytes.delete(peer);
    }
    for (const w of carrier.values()) this.respond(w, undefined);
  }

  private traceOf(part: [string, Message][]): string | undefined {
    let out: string | undefined;
    for (const [, m] of part) {
      const t = this.traced.get(m);
      if (t !== undefined) out = out === undefined ? t : `${out},${t}`;
    }
    return out;
  }

  ping(peers: Iterable<string>, now: number, idleMs: number): void {
    for (const p of peers) {
      if (now - (this.lastSent.get(p) ?? -Infinity) >= idleMs) {
        this.stats.requests++;
        this.request(p, []);
        this.lastSent.set(p, now);
      }
    }
  }
}

/** Bytes a message is counted as when frames are sized. */
export function messageBytes(m: Message): number {
  let bytes = 64;
  if (m.type === 'app') for (const e of m.entries) bytes += e.data.length + 48;
  return bytes;
}

/** Splits one peer's queued messages into frames under `limit` bytes (one frame when they fit). */
export function splitFrames(list: [string, Message][], total: number, limit: number): [string, Message][][] {
  if (total <= limit) return [list];
  const parts: [string, Message][][] = [];
  let part: [string, Message][] = [];
  let bytes = 0;
  for (const item of list) {
    const b = messageBytes(item[1]);
    if (part.length > 0 && bytes + b > limit) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(item);
    bytes += b;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}
