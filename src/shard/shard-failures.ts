/**
 * What stops a shard state machine from serving (shard-state-machine.ts, Damaged data): damage
 * one of its calls found (a CorruptDataError, told to `onCorrupt` once), or a failure that only
 * a reopen repairs (an index apply or a restore that failed). Either makes every later call
 * UNAVAILABLE.
 */
import { CorruptDataError, UnavailableError } from '../runtime/errors.js';

export class ShardFailures {
  private failure: Error | undefined;
  private damage: CorruptDataError | undefined;

  constructor(private readonly opts: { group: string; onCorrupt?: ((err: CorruptDataError) => void) | undefined }) {}

  /** The damage found while open (the state machine serves nothing since), or undefined. */
  get corruption(): CorruptDataError | undefined {
    return this.damage;
  }

  /** A failure that leaves the state machine to be reopened (or its state replaced whole: {@link clear}). */
  fail(err: Error): void {
    this.failure = err;
  }

  /** The group's state was replaced whole (a snapshot restored, or the group emptied): the failure before is over. */
  clear(): void {
    this.failure = undefined;
  }

  /** Throws UNAVAILABLE for damaged data or a failure. */
  check(): void {
    if (this.damage) throw new UnavailableError(`shard state machine ${this.opts.group} serves nothing: its stored data is damaged (${this.damage.message}); it is being rebuilt from its peers`);
    if (this.failure) throw new UnavailableError(`shard state machine ${this.opts.group} failed and must be reopened: ${this.failure.message}`);
  }

  /** Records damage that `fn` found (see {@link corruption}) and rethrows it. */
  watch<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw this.noteDamage(err);
    }
  }

  async watchAsync<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.noteDamage(err);
    }
  }

  async *watchStream(chunks: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    try {
      yield* chunks;
    } catch (err) {
      throw this.noteDamage(err);
    }
  }

  private noteDamage(err: unknown): unknown {
    if (err instanceof CorruptDataError && !this.damage) {
      this.damage = err;
      this.failure = err;
      try {
        this.opts.onCorrupt?.(err);
      } catch {
        // a listener's failure changes nothing here
      }
    }
    return err;
  }
}
