/**
 * What an actor is, seen from the code that writes one: a {@link Behavior} over its own state
 * and one message at a time, and an {@link ActorContext} through which it replies, sends,
 * schedules and subscribes. The runtime (actor-cell.ts) holds the mailbox and carries out the
 * effects.
 */
import type { MessageTracing } from './tracing.js';
import type { MsgHdrs } from '@nats-io/transport-node';
import type { Clock } from './clock.js';
import type { Encoding } from './codec.js';
import type { Logger } from './logger.js';
import type { SupervisionOptions } from './supervision.js';

/** An actor's address: the system (node) it lives in and its dotted name. Plain data: it can travel in messages. */
export interface ActorRef<M = unknown> {
  readonly system: string;
  readonly name: string;
  readonly subject: string;
  /** Phantom: the message type this actor accepts. */
  readonly __msg?: M;
}

export interface AskOptions {
  /** Deadline for the reply. Default {@link DEFAULT_ASK_TIMEOUT_MS}. */
  timeoutMs?: number;
}

export const DEFAULT_ASK_TIMEOUT_MS = 5_000;

/** The answer to one ask, given now or later. Only the first call of either method counts. */
export interface Reply {
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** True once resolved or rejected. */
  readonly done: boolean;
}

/** How the bytes of messages on an extra subscription are read and answered. */
export type SubscriptionCodec =
  /** Cluster-internal: CBOR both ways, errors as Shoal error replies. */
  | 'internal'
  /** Public edge: JSON or CBOR by `Content-Type`; errors as `{error: {code, message}}` plus `Nats-Service-Error*` headers. */
  | 'edge';

/** A message that arrived on an extra subscription, before it became a mailbox message. */
export interface Delivery {
  subject: string;
  body: unknown;
  headers: MsgHdrs | undefined;
  encoding: Encoding;
  /** Whether the sender waits for a reply. */
  asked: boolean;
}

export interface SubscribeOptions<M> {
  /** NATS queue group: each message goes to one member of the group. */
  queue?: string;
  codec?: SubscriptionCodec;
  /**
   * Turns a delivery into this actor's message type. Throwing here (say, a body that fails
   * validation) answers the sender with that error and never reaches the mailbox.
   */
  map: (delivery: Delivery) => M;
}

export interface Subscription {
  unsubscribe(): void;
}

export interface SpawnOptions {
  /** Maximum queued messages; past it, asks are refused with MAILBOX_FULL. */
  mailboxCapacity?: number;
  supervision?: Partial<SupervisionOptions>;
}

/**
 * An actor's view of the runtime during one incarnation. Effects queued here (`reply`,
 * `tell`) are carried out after the handler returns, and dropped if it throws: a failed
 * handler leaks nothing. Timers, subscriptions and children belong to the incarnation and end
 * with it (on restart or stop).
 */
export interface ActorContext<M> {
  readonly self: ActorRef<M>;
  readonly clock: Clock;
  readonly log: Logger;
  /** Restarts so far (0 in the first incarnation). */
  readonly incarnation: number;

  /** Answers the message being handled, if it was asked; carried out after the handler returns. */
  reply(value: unknown): void;
  /** Takes over answering the current message: the runtime will not answer it when the handler returns. */
  deferReply(): Reply;
  /** Sends after the handler returns. */
  tell<T>(ref: ActorRef<T>, msg: T): void;
  /** Asks now; the handler may await the answer. */
  ask<R, T = unknown>(ref: ActorRef<T>, msg: T, opts?: AskOptions): Promise<R>;
  /** Puts `msg` in this actor's own mailbox without touching NATS. Throws MailboxFullError when full. */
  post(msg: M): void;
  /** A function that posts to this incarnation's mailbox later (from a promise callback); a no-op once the incarnation ended. */
  poster(): (msg: M) => void;

  /** Delivers `msg` to self after `delayMs` (replacing a timer of the same key). */
  schedule(key: string, delayMs: number, msg: M): void;
  /** Delivers `msg` to self every `periodMs` (replacing a timer of the same key). */
  every(key: string, periodMs: number, msg: M): void;
  cancelTimer(key: string): void;

  /** Feeds another subject (a leader subject, a queue group, a public API subject) into this mailbox. */
  subscribe(subject: string, opts: SubscribeOptions<M>): Subscription;
  /** Starts a child actor supervised by this one. */
  spawn<S2, M2>(name: string, behavior: Behavior<S2, M2>, opts?: SpawnOptions): ActorRef<M2>;
  /** Stops a child of this actor (after the message it is handling); resolves once it stopped. */
  stopChild(ref: ActorRef<unknown>): Promise<void>;
  /** Stops this actor after the current message. */
  stopSelf(): void;
}

/**
 * An actor's logic. `init` builds the state at start and at every restart; `receive` handles
 * one message and returns the next state (the same object if it mutated it). A throw from
 * either fails the actor, and its supervisor restarts it.
 */
export interface Behavior<S, M> {
  init(ctx: ActorContext<M>): S | Promise<S>;
  receive(state: S, msg: M, ctx: ActorContext<M>): S | Promise<S>;
  /** Releases what the incarnation holds (files, handles); called on stop and before a restart. */
  cleanup?(state: S | undefined, ctx: ActorContext<M>): void | Promise<void>;
  /** The name of a message in spans and logs; default `msg.type` when present. */
  describe?(msg: M): string;
  /** How its messages appear in traces: span names, attributes, which may start a trace (tracing.ts). */
  tracing?: MessageTracing<M>;
  /** What kind of actor this is, as introspection reports it (`replica`, `router`); default: the first part of its name. */
  readonly kind?: string;
  /**
   * A few facts of the current state, as introspection reports them (the console's `actors` and
   * `inspect`). Called on an introspection request, between messages: keep it cheap. A throw is
   * reported as the summary's `error`, never fails the actor.
   */
  summary?(state: S): ActorSummary;
}

/** An actor's state in a few flat facts (see {@link Behavior.summary}). */
export type ActorSummary = Record<string, string | number | boolean | null>;

export type ActorStatus = 'starting' | 'running' | 'restarting' | 'stopped';

/** What introspection reports of one actor. */
export interface ActorStats {
  name: string;
  /** {@link Behavior.kind}. */
  kind: string;
  status: ActorStatus;
  mailboxDepth: number;
  mailboxCapacity: number;
  processed: number;
  failures: number;
  restarts: number;
  /** Messages refused because the mailbox was full. */
  refused: number;
  parent: string | null;
  lastError: string | null;
  /** {@link Behavior.summary} of the current state; null when the behaviour gives none or the actor has no state (starting, stopped). */
  state: ActorSummary | null;
}
