/**
 * An actor system bound to one NATS connection: it spawns actors, routes NATS messages into
 * their mailboxes, sends (`tell` publishes, `ask` is request-reply with a deadline and typed
 * failures) and answers introspection on a system subject. How replies travel on the wire (the
 * internal envelope, public-edge replies and errors) is wire-replies.ts.
 */
import { context } from '@opentelemetry/api';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import {
  DEFAULT_ASK_TIMEOUT_MS,
  type ActorRef,
  type ActorStats,
  type AskOptions,
  type Behavior,
  type Delivery,
  type Reply,
  type SpawnOptions,
  type SubscribeOptions,
} from './actor.js';
import { ActorCell, type SubscriptionHandle } from './actor-cell.js';
import { RealClock, type Clock } from './clock.js';
import { decodeBody, decodeCbor, encodeCbor, encodingOf } from './codec.js';
import { InvalidArgumentError, NotFoundError, TimeoutError, UnavailableError, describeError, toShoalError } from './errors.js';
import { InboxRequester } from './inbox-requester.js';
import { createLogger, type Logger } from './logger.js';
import { assertActorName, assertToken, Subjects } from './subjects.js';
import type { NatsSecurity } from './nats-security.js';
import type { SystemInternals } from './system-internals.js';
import { injectTrace } from './tracing.js';
import { currentRequestId, injectRequestId } from './request-context.js';
import { decodeInternalReply, edgeReply, internalReply, mapRequestError, once, respondEdge } from './wire-replies.js';

/** A local actor subscribed to a subject, and how a request body becomes its message. */
interface LocalTarget {
  cell: ActorCell<unknown, unknown>;
  map: (body: unknown, subject: string) => unknown;
}

/**
 * How Shoal connects to NATS. `noAsyncTraces`: nats.js otherwise allocates two error objects
 * per request to keep a stack trace for a possible failure, which measured as ~30% of a busy
 * requester's CPU; our errors carry the subject instead.
 */
export const NATS_CONNECTION_DEFAULTS = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 250,
  noAsyncTraces: true,
} as const;

export interface ActorSystemOptions {
  /** This system's name, unique in the cluster: the node id. */
  name: string;
  /** Subject prefix (default `shoal`). */
  prefix?: string;
  clock?: Clock;
  log?: Logger;
  /** Close the NATS connection on shutdown (true when the system opened it). */
  ownsConnection?: boolean;
}

/** What an actor system answers on its introspection subjects. */
export interface SystemReport {
  system: string;
  uptimeMs: number;
  /** Requests this system sent: delivered in-process to its own actors, or over NATS. */
  requests: { local: number; remote: number };
  actors: ActorStats[];
}

export type EscalationListener = (actor: string, err: unknown) => void;

export class ActorSystem implements SystemInternals {
  readonly name: string;
  readonly subjects: Subjects;
  readonly clock: Clock;
  readonly log: Logger;
  readonly nc: NatsConnection;
  private readonly cells = new Map<string, ActorCell<unknown, unknown>>();
  /**
   * Subjects that local actors subscribe to with the internal codec: a request to one of them is
   * delivered in-process (see {@link request}). Several entries for one subject are members of
   * a queue group (or plain subscribers); they are used in turn.
   */
  private readonly local = new Map<string, LocalTarget[]>();
  private localTurn = 0;
  private requestsLocal = 0;
  private requestsRemote = 0;
  private readonly escalationListeners: EscalationListener[] = [];
  private readonly systemSubs: SubscriptionHandle[] = [];
  private readonly ownsConnection: boolean;
  private readonly startedAt: number;
  private closed = false;
  /** This system's request-reply over NATS (one inbox subscription); other parts on its connection may share it. */
  readonly requests: InboxRequester;

  /** Connects to NATS (with `security`: TLS, credentials, user) and starts a system that owns the connection. */
  static async connect(servers: string | string[], opts: Omit<ActorSystemOptions, 'ownsConnection'> & { security?: NatsSecurity }): Promise<ActorSystem> {
    const { security, ...systemOpts } = opts;
    const nc = await connect({ servers, name: `shoal-${opts.name}`, ...NATS_CONNECTION_DEFAULTS, ...security });
    const system = new ActorSystem(nc, { ...systemOpts, ownsConnection: true });
    system.logPermissionViolations();
    await system.flush();
    return system;
  }

  /**
   * Logs each publish or subscription the NATS server refuses this connection (its user lacks the
   * permission: docs/security.md). The server only tells the connection, asynchronously, and the
   * request behind it times out; without this line a node missing a permission fails silently.
   */
  private logPermissionViolations(): void {
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type !== 'error' || s.error.name !== 'PermissionViolationError') continue;
        const e = s.error as Error & { operation?: string; subject?: string };
        this.log.error('the NATS server refused a permission to this node', { operation: e.operation, subject: e.subject, error: e.message });
      }
    })().catch(() => undefined);
  }

  constructor(nc: NatsConnection, opts: ActorSystemOptions) {
    this.nc = nc;
    this.requests = new InboxRequester(nc);
    this.name = assertToken(opts.name, 'actor system name');
    this.subjects = new Subjects(opts.prefix);
    this.clock = opts.clock ?? new RealClock();
    this.log = opts.log ?? createLogger({ system: this.name });
    this.ownsConnection = opts.ownsConnection ?? false;
    this.startedAt = this.clock.now();
    const answer = (msg: Msg): void => {
      const encoding = encodingOf(msg.headers);
      respondEdge(msg, encoding, this.report());
    };
    this.systemSubs.push(nc.subscribe(this.subjects.introspect(this.name), { callback: (_e, m) => answer(m) }));
    this.systemSubs.push(nc.subscribe(this.subjects.introspectAll(), { callback: (_e, m) => answer(m) }));
  }

  /** The address of actor `name` in system `system` (this one or any other). */
  ref<M>(system: string, name: string): ActorRef<M> {
    return { system, name, subject: this.subjects.actor(system, name) };
  }

  /** Starts a top-level actor. Its subject is subscribed at once; call {@link flush} before other connections ask it. */
  spawn<S, M>(name: string, behavior: Behavior<S, M>, opts: SpawnOptions = {}): ActorRef<M> {
    return this.spawnCell(name, behavior, opts, undefined).ref;
  }

  spawnCell<S, M>(
    name: string,
    behavior: Behavior<S, M>,
    opts: SpawnOptions,
    parent: ActorCell<unknown, unknown> | undefined,
  ): ActorCell<S, M> {
    if (this.closed) throw new UnavailableError(`actor system ${this.name} is shut down`);
    assertActorName(name);
    if (this.cells.has(name)) throw new InvalidArgumentError(`actor ${name} already exists in system ${this.name}`);
    const cell = new ActorCell<S, M>(this, name, behavior, opts, parent);
    this.cells.set(name, cell as ActorCell<unknown, unknown>);
    cell.begin();
    return cell;
  }

  /** Stops a local actor (after the message it is handling). */
  async stop(ref: ActorRef<unknown>): Promise<void> {
    await this.cells.get(ref.name)?.requestStop();
  }

  /** Publishes `msg` to `ref`; nothing comes back. */
  tell<T>(ref: ActorRef<T>, msg: T): void {
    this.tellNow(ref, msg);
  }

  /**
   * Puts `msg` straight into the mailbox of a local actor, without NATS (for events that arise
   * in this process). Throws MailboxFullError when full and NotFoundError for an unknown actor.
   */
  post<T>(ref: ActorRef<T>, msg: T): void {
    const cell = this.cells.get(ref.name);
    if (!cell || ref.system !== this.name) throw new NotFoundError(`no local actor ${ref.name} in system ${this.name}`);
    if (!cell.offer({ msg, reply: undefined, natsMsg: undefined })) throw cell.fullError();
  }

  /** Publishes `msg` as CBOR on any subject (a broadcast, such as a heartbeat). */
  publish(subject: string, msg: unknown): void {
    const hdrs = injectRequestId(injectTrace());
    this.nc.publish(subject, encodeCbor(msg), hdrs ? { headers: hdrs } : undefined);
  }

  /**
   * A tell to an actor of this system goes into its mailbox in-process, as asks do (see
   * {@link request}): everything one system sends to one local actor then travels one way, so it
   * stays in the order it was sent.
   */
  tellNow<T>(ref: ActorRef<T>, msg: T): void {
    if (ref.system === this.name) {
      const cell = this.cells.get(ref.name);
      if (cell && !cell.isStopped()) {
        if (!cell.offer({ msg, reply: undefined, natsMsg: undefined, trace: context.active(), requestId: currentRequestId() })) this.refuse(cell, undefined);
        return;
      }
    }
    const hdrs = injectRequestId(injectTrace());
    this.nc.publish(ref.subject, encodeCbor(msg), hdrs ? { headers: hdrs } : undefined);
  }

  /**
   * Request-reply to `ref`. Rejects with {@link TimeoutError} past the deadline,
   * {@link NoRespondersError} when nothing listens, or the remote handler's error as its own class.
   */
  async ask<R, T = unknown>(ref: ActorRef<T>, msg: T, opts: AskOptions = {}): Promise<R> {
    return this.request<R>(ref.subject, msg, opts);
  }

  /**
   * An ask addressed by subject (a leader subject, a queue group) rather than by actor. When an
   * actor of this system subscribes to the subject, the request is delivered to it in-process:
   * no NATS round trip and no encoding, with the same answers, errors (as their classes),
   * deadline and trace context. For a queue group this prefers the local member, so that a read
   * any replica may serve is served on this node when it holds one.
   */
  async request<R>(subject: string, msg: unknown, opts: AskOptions = {}): Promise<R> {
    const timeout = opts.timeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
    const targets = this.local.get(subject);
    if (targets !== undefined && targets.length > 0) {
      const target = targets[this.localTurn++ % targets.length] as LocalTarget;
      if (!target.cell.isStopped()) {
        this.requestsLocal++;
        return this.requestLocal<R>(target, subject, msg, timeout);
      }
    }
    this.requestsRemote++;
    const hdrs = injectRequestId(injectTrace());
    let res: Msg;
    try {
      res = await this.requests.request(subject, encodeCbor(msg), { timeout, headers: hdrs });
    } catch (err) {
      throw mapRequestError(err, subject, timeout);
    }
    return decodeInternalReply(res.data) as R;
  }

  /** True when an actor of this system subscribes to `subject` (a {@link request} to it stays in-process). */
  servesLocally(subject: string): boolean {
    const targets = this.local.get(subject);
    return targets !== undefined && targets.some((t) => !t.cell.isStopped());
  }

  private requestLocal<R>(target: LocalTarget, subject: string, msg: unknown, timeoutMs: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      // Real time, not this.clock: over NATS the same request times out in real time (the
      // InboxRequester's timer), and a local delivery times out as that one would.
      const timer = setTimeout(() => reply.reject(new TimeoutError(`no reply from ${subject} within ${timeoutMs} ms`)), timeoutMs);
      const reply = once((ok, value) => {
        clearTimeout(timer);
        if (ok) resolve(value as R);
        else reject(toShoalError(value));
      });
      let body: unknown;
      try {
        body = target.map(msg, subject);
      } catch (err) {
        reply.reject(err);
        return;
      }
      if (!target.cell.offer({ msg: body, reply, natsMsg: undefined, trace: context.active(), requestId: currentRequestId() })) this.refuse(target.cell, reply);
    });
  }

  /** Waits until the server has seen every subscription made so far. */
  async flush(): Promise<void> {
    await this.nc.flush();
  }

  onEscalation(listener: EscalationListener): void {
    this.escalationListeners.push(listener);
  }

  escalate(actor: string, err: unknown): void {
    if (this.escalationListeners.length === 0) {
      this.log.error('top-level actor escalated and was stopped', { actor, error: describeError(err) });
    }
    for (const l of this.escalationListeners) l(actor, err);
  }

  forget(cell: ActorCell<unknown, unknown>): void {
    if (this.cells.get(cell.name) === cell) this.cells.delete(cell.name);
  }

  /** Stats of one local actor, or undefined. */
  statsOf(name: string): ActorStats | undefined {
    return this.cells.get(name)?.stats();
  }

  report(): SystemReport {
    return {
      system: this.name,
      uptimeMs: this.clock.now() - this.startedAt,
      requests: { local: this.requestsLocal, remote: this.requestsRemote },
      actors: [...this.cells.values()].map((c) => c.stats()),
    };
  }

  /** Stops every actor; closes the connection if this system opened it. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const top = [...this.cells.values()].filter((c) => c.parent === undefined);
    await Promise.all(top.map((c) => c.stop()));
    for (const s of this.systemSubs) s.unsubscribe();
    this.requests.close();
    if (this.ownsConnection) await this.nc.drain().catch(() => this.nc.close());
  }

  subscribeActor<M>(cell: ActorCell<unknown, M>, subject: string): SubscriptionHandle {
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        this.deliverInternal(cell, msg, (body) => body as M);
      },
    });
    return this.registerLocal(subject, { cell: cell as ActorCell<unknown, unknown>, map: (body) => body }, sub);
  }

  subscribeExtra<M>(cell: ActorCell<unknown, M>, subject: string, opts: SubscribeOptions<M>): SubscriptionHandle {
    const codec = opts.codec ?? 'internal';
    const sub = this.subscribeNats(cell, subject, opts, codec);
    // Only internal subjects are requested from inside the cluster; public (edge) ones never are.
    if (codec !== 'internal') return sub;
    const map = (body: unknown, subj: string): unknown => opts.map({ subject: subj, body, headers: undefined, encoding: 'cbor', asked: true });
    return this.registerLocal(subject, { cell: cell as ActorCell<unknown, unknown>, map }, sub);
  }

  private registerLocal(subject: string, target: LocalTarget, sub: SubscriptionHandle): SubscriptionHandle {
    const list = this.local.get(subject) ?? [];
    list.push(target);
    this.local.set(subject, list);
    return {
      unsubscribe: () => {
        const now = (this.local.get(subject) ?? []).filter((t) => t !== target);
        if (now.length > 0) this.local.set(subject, now);
        else this.local.delete(subject);
        sub.unsubscribe();
      },
    };
  }

  private subscribeNats<M>(cell: ActorCell<unknown, M>, subject: string, opts: SubscribeOptions<M>, codec: 'internal' | 'edge'): SubscriptionHandle {
    return this.nc.subscribe(subject, {
      ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
      callback: (err, msg) => {
        if (err) return;
        if (codec === 'internal') {
          this.deliverInternal(cell, msg, (body) => opts.map({ subject: msg.subject, body, headers: msg.headers, encoding: 'cbor', asked: !!msg.reply }));
        } else {
          this.deliverEdge(cell, msg, opts.map);
        }
      },
    });
  }

  private deliverInternal<M>(cell: ActorCell<unknown, M>, msg: Msg, map: (body: unknown) => M): void {
    const reply = msg.reply ? internalReply(msg) : undefined;
    let body: M;
    try {
      body = map(decodeCbor(msg.data));
    } catch (err) {
      if (reply) reply.reject(err);
      else this.log.warn('undecodable message dropped', { actor: cell.name, subject: msg.subject, error: describeError(err) });
      return;
    }
    if (!cell.offer({ msg: body, reply, natsMsg: msg })) this.refuse(cell, reply);
  }

  private deliverEdge<M>(cell: ActorCell<unknown, M>, msg: Msg, map: (d: Delivery) => M): void {
    const encoding = encodingOf(msg.headers);
    const reply = msg.reply ? edgeReply(msg, encoding) : undefined;
    let body: M;
    try {
      body = map({ subject: msg.subject, body: decodeBody(msg.data, encoding), headers: msg.headers, encoding, asked: !!msg.reply });
    } catch (err) {
      reply?.reject(err);
      return;
    }
    if (!cell.offer({ msg: body, reply, natsMsg: msg })) this.refuse(cell, reply);
  }

  private refuse(cell: { name: string; isStopped(): boolean; fullError(): Error }, reply: Reply | undefined): void {
    const err = cell.isStopped() ? new UnavailableError(`actor ${cell.name} is stopped`) : cell.fullError();
    if (reply) reply.reject(err);
    else this.log.warn('message refused', { actor: cell.name, error: err.message });
  }
}
