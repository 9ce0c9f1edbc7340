/**
 * One live actor: its mailbox, its current incarnation (state, timers, subscriptions,
 * children) and its supervision. Messages are handled one at a time, each to completion, also
 * when the handler is async. Failures restart the actor with backoff; past the restart limit
 * they escalate to the parent, or to the system for a top-level actor.
 */
import type { Msg } from '@nats-io/transport-node';
import type { Context, Span } from '@opentelemetry/api';
import type {
  ActorContext,
  ActorRef,
  ActorStats,
  ActorStatus,
  ActorSummary,
  AskOptions,
  Behavior,
  Reply,
  SpawnOptions,
  SubscribeOptions,
  Subscription,
} from './actor.js';
import type { Timer } from './clock.js';
import { ActorFailedError, ActorStoppedError, MailboxFullError, describeError } from './errors.js';
import type { Logger } from './logger.js';
import { DEFAULT_MAILBOX_CAPACITY, Mailbox } from './mailbox.js';
import { RestartPolicy } from './supervision.js';
import { endSpan, extractTrace, runInTrace, startMessageSpan, tracingEnabled } from './tracing.js';
import { extractRequestId, withRequestId } from './request-context.js';
import type { SystemInternals } from './system-internals.js';

/** A message in a mailbox, with what is needed to answer it and to continue its trace. */
export interface Envelope<M> {
  msg: M;
  reply: Reply | undefined;
  natsMsg: Msg | undefined;
  /** The sender's trace context, for a message delivered in-process (over NATS it is in the headers). */
  trace?: Context | undefined;
  /** The sender's request id, for a message delivered in-process (over NATS it is in the headers). */
  requestId?: string | undefined;
}

/** What the cell holds of a subscription: only the means to end it. */
export interface SubscriptionHandle {
  unsubscribe(): void;
}

/** What a handler queued; carried out only if it returns normally. */
interface Turn {
  env: Envelope<unknown>;
  tells: { ref: ActorRef<unknown>; msg: unknown }[];
  replied: boolean;
  replyValue: unknown;
  deferred: boolean;
  /** The message's span, when it has one. */
  span?: Span | undefined;
  /** The span ends when the deferred reply is sent, not when the handler returns: through this reply. */
  spanReply?: Reply;
}

/** One incarnation's resources; `alive` turns false when it ends, so late callbacks do nothing. */
interface Incarnation {
  alive: boolean;
  timers: Map<string, Timer>;
  subs: Set<SubscriptionHandle>;
  children: Set<ActorCell<unknown, unknown>>;
}

export class ActorCell<S, M> {
  readonly ref: ActorRef<M>;
  private readonly mailbox: Mailbox<Envelope<M>>;
  private readonly policy: RestartPolicy;
  private readonly log: Logger;
  private status: ActorStatus = 'starting';
  private state: S | undefined;
  private inc: Incarnation = newIncarnation();
  private incarnationNo = 0;
  private turn: Turn | undefined;
  private draining = false;
  private stopRequested = false;
  private escalation: unknown = undefined;
  private restartTimer: Timer | undefined;
  private processed = 0;
  private failures = 0;
  private restarts = 0;
  private refused = 0;
  private lastError: string | null = null;
  private mainSub: SubscriptionHandle | undefined;
  private readonly stopWaiters: (() => void)[] = [];
  private readonly ctx: ActorContext<M>;

  constructor(
    private readonly sys: SystemInternals,
    readonly name: string,
    private readonly behavior: Behavior<S, M>,
    opts: SpawnOptions,
    readonly parent: ActorCell<unknown, unknown> | undefined,
  ) {
    this.ref = sys.ref<M>(sys.name, name);
    this.mailbox = new Mailbox(opts.mailboxCapacity ?? DEFAULT_MAILBOX_CAPACITY);
    this.policy = new RestartPolicy(opts.supervision);
    this.log = sys.log.child({ actor: name });
    this.ctx = this.makeContext();
  }

  /** Subscribes to the actor's own subject and runs the first `init`. */
  begin(): void {
    this.mainSub = this.sys.subscribeActor(this, this.ref.subject);
    void this.start();
  }

  stats(): ActorStats {
    return {
      name: this.name,
      kind: this.behavior.kind ?? (this.name.split('.')[0] as string),
      status: this.status,
      mailboxDepth: this.mailbox.length,
      mailboxCapacity: this.mailbox.capacity,
      processed: this.processed,
      failures: this.failures,
      restarts: this.restarts,
      refused: this.refused,
      parent: this.parent?.name ?? null,
      lastError: this.lastError,
      state: this.summary(),
    };
  }

  private summary(): ActorSummary | null {
    if (!this.behavior.summary || this.state === undefined || this.status === 'stopped') return null;
    try {
      return this.behavior.summary(this.state);
    } catch (err) {
      return { error: describeError(err) };
    }
  }

  /** Queues a message. Returns false when refused (mailbox full or actor stopped); the caller answers the sender. */
  offer(env: Envelope<M>): boolean {
    if (this.status === 'stopped') return false;
    if (!this.mailbox.offer(env)) {
      this.refused++;
      return false;
    }
    this.kick();
    return true;
  }

  /** Stops after the message in hand, if any; at once otherwise. */
  requestStop(): Promise<void> {
    if (this.draining) {
      this.stopRequested = true;
      return Promise.resolve();
    }
    return this.stop();
  }

  /** Stops and resolves once stopped, waiting for the message in hand to finish first. */
  stopAndWait(): Promise<void> {
    if (this.status === 'stopped') return Promise.resolve();
    if (!this.draining) return this.stop();
    this.stopRequested = true;
    return new Promise((resolve) => this.stopWaiters.push(resolve));
  }

  isStopped(): boolean {
    return this.status === 'stopped';
  }

  fullError(): MailboxFullError {
    return new MailboxFullError(`mailbox of actor ${this.name} is full (${this.mailbox.capacity} messages)`);
  }

  /** A child escalated past its restart limit: this actor fails in turn, between two messages. */
  escalateFromChild(child: string, err: unknown): void {
    if (this.status === 'stopped') return;
    this.escalation = new ActorFailedError(`child actor ${child} escalated: ${describeError(err)}`, { cause: err });
    this.kick();
  }

  private kick(): void {
    if (this.draining || this.status !== 'running') return;
    if (this.mailbox.length === 0 && this.escalation === undefined) return;
    this.draining = true;
    void this.drainLoop();
  }

  private async drainLoop(): Promise<void> {
    try {
      while (this.status === 'running') {
        if (this.escalation !== undefined) {
          const err = this.escalation;
          this.escalation = undefined;
          await this.fail(err);
          break;
        }
        const env = this.mailbox.poll();
        if (env === undefined) break;
        const pending = this.handle(env);
        if (pending !== undefined) await pending;
        if (this.stopRequested) {
          await this.stop();
          break;
        }
      }
    } finally {
      this.draining = false;
    }
    this.kick();
  }

  /** Handles one message; returns a promise only when the handler is async. */
  private handle(env: Envelope<M>): Promise<void> | undefined {
    const turn: Turn = { env: env as Envelope<unknown>, tells: [], replied: false, replyValue: undefined, deferred: false };
    this.turn = turn;
    const type = this.describe(env.msg);
    const parentCtx = env.trace ?? extractTrace(env.natsMsg?.headers);
    // Checked here too: the message's description is built only when spans can be made.
    const span = tracingEnabled() ? startMessageSpan({ actor: this.name, node: this.sys.name, type, subject: env.natsMsg?.subject, asked: env.reply !== undefined }, env.msg, parentCtx, this.behavior.tracing) : undefined;
    turn.span = span;
    let result: S | Promise<S>;
    try {
      // Always a scope of its own, also without an id: no id is left over from the sender that started this drain loop.
      const requestId = env.requestId ?? extractRequestId(env.natsMsg?.headers);
      result = withRequestId(requestId, () => runInTrace(parentCtx, span, () => this.behavior.receive(this.state as S, env.msg, this.ctx)));
    } catch (err) {
      return this.failTurn(turn, span, err);
    }
    if (result instanceof Promise) {
      return result.then(
        (next) => this.commitTurn(turn, span, next),
        (err: unknown) => this.failTurn(turn, span, err),
      );
    }
    this.commitTurn(turn, span, result);
    return undefined;
  }

  private commitTurn(turn: Turn, span: ReturnType<typeof startMessageSpan>, next: S): void {
    this.turn = undefined;
    this.state = next;
    this.processed++;
    for (const t of turn.tells) this.sys.tellNow(t.ref, t.msg);
    const reply = turn.env.reply;
    if (reply && !turn.deferred && !reply.done) reply.resolve(turn.replied ? turn.replyValue : undefined);
    // A deferred reply's span ends when the reply is sent (deferReply), so it covers the work.
    if (turn.spanReply === undefined) endSpan(span);
  }

  private async failTurn(turn: Turn, span: ReturnType<typeof startMessageSpan>, err: unknown): Promise<void> {
    this.turn = undefined;
    const reply = turn.spanReply ?? turn.env.reply;
    if (turn.spanReply === undefined) endSpan(span, err);
    if (reply && !reply.done) reply.reject(err);
    await this.fail(err);
  }

  private async start(): Promise<void> {
    this.status = 'starting';
    this.inc = newIncarnation();
    try {
      this.state = await this.behavior.init(this.ctx);
    } catch (err) {
      await this.fail(err);
      return;
    }
    if (this.status !== 'starting') return; // stopped while starting
    this.status = 'running';
    this.kick();
  }

  private async fail(err: unknown): Promise<void> {
    if (this.status === 'stopped') return;
    this.failures++;
    this.lastError = describeError(err);
    this.status = 'restarting';
    this.log.warn('actor failed', { error: this.lastError, failures: this.failures });
    // The decision and the backoff timer are taken in the same synchronous step as the failure
    // count, so the backoff runs from the failure; the restart itself waits for cleanup.
    const decision = this.policy.onFailure(this.sys.clock.now());
    const cleaned = this.endIncarnation();
    if (decision.action === 'restart') {
      this.restartTimer = this.sys.clock.setTimer(() => {
        this.restartTimer = undefined;
        void cleaned.then(() => {
          if (this.status !== 'restarting') return;
          this.restarts++;
          this.incarnationNo++;
          return this.start();
        });
      }, decision.afterMs);
      await cleaned;
      return;
    }
    await cleaned;
    this.log.error('actor escalated past its restart limit', { failures: decision.failures, error: this.lastError });
    await this.stop(new ActorStoppedError(`actor ${this.name} stopped after ${decision.failures} failures: ${this.lastError}`));
    if (this.parent) this.parent.escalateFromChild(this.name, err);
    else this.sys.escalate(this.name, err);
  }

  /** Stops for good: no more messages; queued asks are answered with `reason`. */
  async stop(reason?: ActorStoppedError): Promise<void> {
    if (this.status === 'stopped') return;
    this.status = 'stopped';
    this.restartTimer?.cancel();
    this.mainSub?.unsubscribe();
    await this.endIncarnation();
    const why = reason ?? new ActorStoppedError(`actor ${this.name} was stopped`);
    for (const env of this.mailbox.drain()) if (env.reply && !env.reply.done) env.reply.reject(why);
    this.parent?.inc.children.delete(this as ActorCell<unknown, unknown>);
    this.sys.forget(this as ActorCell<unknown, unknown>);
    for (const w of this.stopWaiters.splice(0)) w();
  }

  private async endIncarnation(): Promise<void> {
    const inc = this.inc;
    if (!inc.alive) return;
    inc.alive = false;
    for (const t of inc.timers.values()) t.cancel();
    inc.timers.clear();
    for (const s of inc.subs) s.unsubscribe();
    inc.subs.clear();
    const children = [...inc.children];
    inc.children.clear();
    await Promise.all(children.map((c) => c.stop()));
    if (this.behavior.cleanup) {
      try {
        await this.behavior.cleanup(this.state, this.ctx);
      } catch (err) {
        this.log.warn('cleanup failed', { error: describeError(err) });
      }
    }
    this.state = undefined;
  }

  private describe(msg: M): string {
    if (this.behavior.describe) return this.behavior.describe(msg);
    const type: unknown = typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : undefined;
    return typeof type === 'string' ? type : 'message';
  }

  private postLocal(inc: Incarnation, msg: M, source: string): boolean {
    if (!inc.alive) return false;
    if (this.offer({ msg, reply: undefined, natsMsg: undefined })) return true;
    this.log.warn('mailbox full: local message dropped', { source });
    return false;
  }

  private setTimer(key: string, delayMs: number, msg: M, periodMs: number | undefined): void {
    const inc = this.inc;
    inc.timers.get(key)?.cancel();
    const fire = (): void => {
      if (!inc.alive) return;
      if (periodMs === undefined) inc.timers.delete(key);
      else inc.timers.set(key, this.sys.clock.setTimer(fire, periodMs));
      this.postLocal(inc, msg, `timer ${key}`);
    };
    inc.timers.set(key, this.sys.clock.setTimer(fire, delayMs));
  }

  private makeContext(): ActorContext<M> {
    const cell = this;
    const requireTurn = (what: string): Turn => {
      if (!cell.turn) throw new Error(`${what} called outside a message handler of actor ${cell.name}`);
      return cell.turn;
    };
    return {
      get self() {
        return cell.ref;
      },
      get clock() {
        return cell.sys.clock;
      },
      get log() {
        return cell.log;
      },
      get incarnation() {
        return cell.incarnationNo;
      },
      reply(value: unknown): void {
        const turn = requireTurn('reply');
        turn.replied = true;
        turn.replyValue = value;
      },
      deferReply(): Reply {
        const turn = requireTurn('deferReply');
        turn.deferred = true;
        const reply = turn.env.reply ?? NO_REPLY;
        const span = turn.span;
        if (span === undefined || reply.done) return reply;
        return (turn.spanReply ??= replyEndingSpan(reply, span));
      },
      tell<T>(ref: ActorRef<T>, msg: T): void {
        if (cell.turn) cell.turn.tells.push({ ref: ref as ActorRef<unknown>, msg });
        else cell.sys.tellNow(ref, msg);
      },
      ask<R, T = unknown>(ref: ActorRef<T>, msg: T, opts?: AskOptions): Promise<R> {
        return cell.sys.ask<R, T>(ref, msg, opts);
      },
      post(msg: M): void {
        if (!cell.offer({ msg, reply: undefined, natsMsg: undefined })) throw cell.fullError();
      },
      poster(): (msg: M) => void {
        const inc = cell.inc;
        return (msg: M) => void cell.postLocal(inc, msg, 'poster');
      },
      schedule(key: string, delayMs: number, msg: M): void {
        cell.setTimer(key, delayMs, msg, undefined);
      },
      every(key: string, periodMs: number, msg: M): void {
        cell.setTimer(key, periodMs, msg, periodMs);
      },
      cancelTimer(key: string): void {
        cell.inc.timers.get(key)?.cancel();
        cell.inc.timers.delete(key);
      },
      subscribe(subject: string, opts: SubscribeOptions<M>): Subscription {
        const inc = cell.inc;
        const sub = cell.sys.subscribeExtra(cell, subject, opts);
        inc.subs.add(sub);
        return {
          unsubscribe: () => {
            inc.subs.delete(sub);
            sub.unsubscribe();
          },
        };
      },
      spawn<S2, M2>(name: string, behavior: Behavior<S2, M2>, opts?: SpawnOptions): ActorRef<M2> {
        const child = cell.sys.spawnCell(name, behavior, opts ?? {}, cell as ActorCell<unknown, unknown>);
        cell.inc.children.add(child as ActorCell<unknown, unknown>);
        return child.ref;
      },
      async stopChild(ref: ActorRef<unknown>): Promise<void> {
        for (const child of cell.inc.children) {
          if (child.name === ref.name) {
            await child.stopAndWait();
            return;
          }
        }
      },
      stopSelf(): void {
        cell.stopRequested = true;
      },
    };
  }
}

function newIncarnation(): Incarnation {
  return { alive: true, timers: new Map(), subs: new Set(), children: new Set() };
}

/** The reply of a message nobody waits for: answering it does nothing. */
const NO_REPLY: Reply = { resolve() {}, reject() {}, done: true };

/** `reply`, ending `span` when it is resolved or rejected (once). */
function replyEndingSpan(reply: Reply, span: Span): Reply {
  let open = true;
  return {
    resolve(value: unknown): void {
      reply.resolve(value);
      if (open) endSpan(span);
      open = false;
    },
    reject(err: unknown): void {
      reply.reject(err);
      if (open) endSpan(span, err);
      open = false;
    },
    get done(): boolean {
      return reply.done;
    },
  };
}
