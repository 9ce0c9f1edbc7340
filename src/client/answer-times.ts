/**
 * How long answers on each subject have taken lately, for the client's hedge delay (client.ts,
 * `hedgeAfterMs`). A hedged copy is for a request stuck at a paused router; a request that is only
 * slow, because the cluster is busy (a bulk load's batches take a second or more), gains nothing
 * from a copy, which costs the cluster the request's work again. So by default the copy waits at
 * least as long as most recent answers on the subject took (the "95th-percentile" deferral of
 * Dean & Barroso, "The Tail at Scale"): a busy cluster sees few copies, and a stuck request is
 * still copied once it has waited longer than answers do.
 */

/** Answer times kept per subject. */
export const ANSWER_WINDOW = 64;
/** Answers a subject needs before its times count (until then the delay is the floor alone). */
export const MIN_ANSWERS = 8;
/** Subjects remembered; past this the one heard from longest ago is forgotten. */
const MAX_SUBJECTS = 1_000;
/** The delay as a multiple of the subject's 95th percentile: room for the jitter of a steady load. */
const P95_FACTOR = 1.5;

interface Times {
  /** The latest answer times, in arrival order (a ring once full). */
  ring: number[];
  next: number;
  /** The same times in ascending order, kept so as answers come (every request asks for the percentile). */
  sorted: number[];
}

/** Where `ms` goes in ascending `sorted` (the first index whose value is not below it). */
function lowerBound(sorted: readonly number[], ms: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class AnswerTimes {
  private readonly bySubject = new Map<string, Times>();

  /** An answer (a reply, success or error) on `subject` took `ms` from when its copy was sent. */
  record(subject: string, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    let t = this.bySubject.get(subject);
    if (t === undefined) {
      if (this.bySubject.size >= MAX_SUBJECTS) this.bySubject.delete(this.bySubject.keys().next().value as string);
      t = { ring: [], next: 0, sorted: [] };
    } else {
      this.bySubject.delete(subject); // re-inserted below: the map's order is by last answer
    }
    this.bySubject.set(subject, t);
    if (t.ring.length < ANSWER_WINDOW) t.ring.push(ms);
    else {
      t.sorted.splice(lowerBound(t.sorted, t.ring[t.next] as number), 1);
      t.ring[t.next] = ms;
    }
    t.sorted.splice(lowerBound(t.sorted, ms), 0, ms);
    t.next = (t.next + 1) % ANSWER_WINDOW;
  }

  /** The 95th percentile of the subject's recent answer times, or undefined with fewer than {@link MIN_ANSWERS}. */
  p95(subject: string): number | undefined {
    const t = this.bySubject.get(subject);
    if (t === undefined || t.sorted.length < MIN_ANSWERS) return undefined;
    return t.sorted[Math.ceil(t.sorted.length * 0.95) - 1];
  }

  /**
   * The hedge delay of a request on `subject` with deadline `deadlineMs`: `floorMs` (a quarter of
   * the deadline, at most 1 s), or 1.5 times the subject's recent 95th percentile if that is
   * longer, but at most half the deadline, so that a copy has time to answer.
   */
  hedgeDelay(subject: string, deadlineMs: number, floorMs: number): number {
    const p95 = this.p95(subject);
    if (p95 === undefined) return floorMs;
    return Math.max(floorMs, Math.min(deadlineMs / 2, Math.ceil(p95 * P95_FACTOR)));
  }
}
