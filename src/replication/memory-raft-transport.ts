/**
 * The in-memory twin of the NATS transport: nodes' {@link MemoryRaftTransport}s on one
 * {@link MemoryRaftNetwork}, whose frames travel as timers of an injected clock. A policy decides
 * each frame's fate (delays, none when lost, two when duplicated), so the simulation can drop,
 * delay, duplicate, reorder and cut. Requests and replies behave as on NATS: a reply rides back
 * to the very transport that asked (a restarted node never gets its previous life's replies); a
 * request to a node with no transport attached fails fast ("no responders"); a request with no
 * reply within the timeout reports the peer unreachable.
 */
import type { Clock } from '../runtime/clock.js';
import type { Message } from '../raft/types.js';
import { BatchingTransport, type SnapshotChunk, type TransportHandlers, type Waiting } from './raft-transport.js';

export type FrameKind = 'request' | 'reply' | 'chunk' | 'chunkReply';

export interface NetworkPolicy {
  /** The delays (ms) of the copies of a frame from `from` to `to` that arrive: none when lost, two when duplicated. */
  fate(from: string, to: string, kind: FrameKind): number[];
  /** Sees every batch of Raft messages as it is sent (the simulation checks them): as a request of its own, riding on the reply to one, or published with no reply wanted. */
  observe?(from: string, to: string, msgs: readonly [string, Message][], kind: 'request' | 'reply' | 'publish'): void;
}

const RELIABLE: NetworkPolicy = { fate: () => [0] };
/** How long "no responders" takes to come back. */
const NO_RESPONDERS_MS = 1;

export class MemoryRaftNetwork {
  private readonly nodes = new Map<string, MemoryRaftTransport>();

  constructor(
    readonly clock: Clock,
    readonly policy: NetworkPolicy = RELIABLE,
  ) {}

  /** Attaches a transport for `node` (replacing a previous one: a restart). */
  attach(node: string, o: { requestTimeoutMs: number; maxPayload?: number }): MemoryRaftTransport {
    const t = new MemoryRaftTransport(this, node, o.requestTimeoutMs, o.maxPayload ?? 1024 * 1024);
    this.nodes.set(node, t);
    return t;
  }

  /** Detaches `node`'s transport (a crash): nothing reaches it any more, not even replies. */
  detach(node: string): void {
    this.nodes.get(node)?.detached();
    this.nodes.delete(node);
  }

  /** The transport attached for `node`, if any. */
  attached(node: string): MemoryRaftTransport | undefined {
    return this.nodes.get(node);
  }

  /** Sends a frame; `arrive` runs at each copy's arrival if `to` (or, for replies, `target`) is still attached. */
  send(from: string, to: string, kind: FrameKind, arrive: (t: MemoryRaftTransport) => void, target?: MemoryRaftTransport): void {
    for (const delay of this.policy.fate(from, to, kind)) {
      this.clock.setTimer(() => {
        const t = this.nodes.get(to);
        if (t && (!target || t === target)) arrive(t);
      }, delay);
    }
  }
}

interface MemoryWaiting extends Waiting {
  answer(msgs: [string, Message][] | undefined): void;
}

export class MemoryRaftTransport extends BatchingTransport<MemoryWaiting> {
  private handlers: TransportHandlers | undefined;
  private gone = false;

  constructor(
    private readonly net: MemoryRaftNetwork,
    private readonly node: string,
    private readonly requestTimeoutMs: number,
    readonly maxPayload: number,
  ) {
    super();
  }

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
  }

  stop(): void {
    for (const w of this.takeWaiting()) (w as MemoryWaiting).answer(undefined);
    this.gone = true;
  }

  /** Crashed: drops everything from now on. */
  detached(): void {
    this.gone = true;
    this.waiting = [];
  }

  sendChunk(peer: string, chunk: SnapshotChunk, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (f: () => void): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        f();
      };
      const timer = this.net.clock.setTimer(() => done(() => reject(new Error(`snapshot chunk to ${peer} timed out`))), timeoutMs);
      if (!this.net.attached(peer)) {
        this.net.clock.setTimer(() => done(() => reject(new Error(`no responders for ${peer}`))), NO_RESPONDERS_MS);
        return;
      }
      this.net.send(this.node, peer, 'chunk', (t) => {
        void t.handlers?.onChunk(chunk).then(
          (ok) => this.net.send(peer, this.node, 'chunkReply', () => done(() => resolve(ok)), this),
          () => this.net.send(peer, this.node, 'chunkReply', () => done(() => resolve(false)), this),
        );
      });
    });
  }

  protected request(peer: string, msgs: [string, Message][]): void {
    this.net.policy.observe?.(this.node, peer, msgs, 'request');
    let answered = false;
    const unreachable = (): void => {
      if (answered || this.gone) return;
      answered = true;
      timer.cancel();
      this.stats.unreachable++;
      this.handlers?.onUnreachable(peer, [...new Set(msgs.map((x) => x[0]))]);
      this.exchangeEnded(peer, false);
    };
    const timer = this.net.clock.setTimer(unreachable, this.requestTimeoutMs);
    if (!this.net.attached(peer)) {
      this.net.clock.setTimer(unreachable, NO_RESPONDERS_MS);
      return;
    }
    const onReply = (reply: [string, Message][] | undefined): void => {
      if (answered || this.gone) return;
      answered = true;
      timer.cancel();
      let later = false;
      if (reply && reply.length > 0) {
        this.arrived(peer, reply);
        later = this.handlers?.onBatch(peer, reply) ?? false;
      }
      this.exchangeEnded(peer, later);
    };
    this.net.send(this.node, peer, 'request', (t) => t.receive(this.node, msgs, (reply) => this.net.send(peer, this.node, 'reply', () => onReply(reply), this)));
  }

  protected publish(peer: string, msgs: [string, Message][]): void {
    this.net.policy.observe?.(this.node, peer, msgs, 'publish');
    if (!this.net.attached(peer)) return;
    this.net.send(this.node, peer, 'request', (t) => t.receive(this.node, msgs, undefined));
  }

  protected respond(w: MemoryWaiting, msgs: [string, Message][] | undefined): void {
    if (msgs) this.net.policy.observe?.(this.node, w.peer, msgs, 'reply');
    w.answer(msgs);
  }

  /** A peer's request arrives: step it; its reply waits for the turn when one will follow. A published frame (`answer` undefined) wants none. */
  private receive(from: string, msgs: [string, Message][], answer: ((reply: [string, Message][] | undefined) => void) | undefined): void {
    if (this.gone || !this.handlers) return;
    this.arrived(from, msgs);
    const later = this.handlers.onBatch(from, msgs);
    if (!answer) return;
    if (later) this.waiting.push({ peer: from, answer });
    else answer(undefined);
  }
}
