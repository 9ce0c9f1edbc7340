/**
 * What an actor cell needs from its actor system. An interface of its own so that the cell and
 * the system do not import each other.
 */
import type { ActorRef, AskOptions, Behavior, SpawnOptions, SubscribeOptions } from './actor.js';
import type { ActorCell, SubscriptionHandle } from './actor-cell.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

export interface SystemInternals {
  readonly name: string;
  readonly clock: Clock;
  readonly log: Logger;
  ref<M>(system: string, name: string): ActorRef<M>;
  tellNow<T>(ref: ActorRef<T>, msg: T): void;
  ask<R, T>(ref: ActorRef<T>, msg: T, opts?: AskOptions): Promise<R>;
  subscribeActor<M>(cell: ActorCell<unknown, M>, subject: string): SubscriptionHandle;
  subscribeExtra<M>(cell: ActorCell<unknown, M>, subject: string, opts: SubscribeOptions<M>): SubscriptionHandle;
  spawnCell<S, M>(name: string, behavior: Behavior<S, M>, opts: SpawnOptions, parent: ActorCell<unknown, unknown> | undefined): ActorCell<S, M>;
  forget(cell: ActorCell<unknown, unknown>): void;
  escalate(actor: string, err: unknown): void;
}
