/**
 * The restart policy of a supervisor, as pure arithmetic over failure times: how long to wait
 * before the next restart, and when to give up and escalate.
 */

export interface SupervisionOptions {
  /** Restarts allowed inside `windowMs` before the failure escalates. */
  maxRestarts: number;
  windowMs: number;
  /** First backoff; doubles per restart inside the window, up to `backoffMaxMs`. */
  backoffMinMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_MAX_RESTARTS = 10;
export const DEFAULT_RESTART_WINDOW_MS = 60_000;
export const DEFAULT_BACKOFF_MIN_MS = 10;
export const DEFAULT_BACKOFF_MAX_MS = 5_000;

export const DEFAULT_SUPERVISION: Readonly<SupervisionOptions> = {
  maxRestarts: DEFAULT_MAX_RESTARTS,
  windowMs: DEFAULT_RESTART_WINDOW_MS,
  backoffMinMs: DEFAULT_BACKOFF_MIN_MS,
  backoffMaxMs: DEFAULT_BACKOFF_MAX_MS,
};

export type SupervisorDecision = { action: 'restart'; afterMs: number } | { action: 'escalate'; failures: number };

/** Remembers recent failure times of one actor and decides what each new failure means. */
export class RestartPolicy {
  private readonly opts: SupervisionOptions;
  private failures: number[] = [];

  constructor(opts: Partial<SupervisionOptions> = {}) {
    this.opts = { ...DEFAULT_SUPERVISION, ...opts };
    const o = this.opts;
    if (!(o.maxRestarts >= 0) || !(o.windowMs > 0) || !(o.backoffMinMs >= 0) || !(o.backoffMaxMs >= o.backoffMinMs)) {
      throw new RangeError(`invalid supervision options ${JSON.stringify(o)}`);
    }
  }

  /** Records a failure at `now` and says whether to restart (and after how long) or escalate. */
  onFailure(now: number): SupervisorDecision {
    this.failures = this.failures.filter((t) => now - t < this.opts.windowMs);
    this.failures.push(now);
    const n = this.failures.length;
    if (n > this.opts.maxRestarts) return { action: 'escalate', failures: n };
    const afterMs = Math.min(this.opts.backoffMaxMs, this.opts.backoffMinMs * 2 ** (n - 1));
    return { action: 'restart', afterMs };
  }
}
