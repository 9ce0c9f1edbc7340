/**
 * `shoal rebalance status --watch`: polls the coordinator every second until no move is in flight
 * and none is pending. On a terminal the status is redrawn in place, with a bar per move in its
 * copy phase; elsewhere (a log, a pipe) each change is one line; with --json each changed reply
 * is one line of JSON.
 */
import type { RebalanceStatus } from '../client/ops.js';
import { describeError, ShoalError } from '../runtime/errors.js';
import { EXIT_SIGINT, EXIT_SIGTERM } from './exit-codes.js';
import { finalLine, fitFrame, formatStatus, settled, watchEvents } from './ops-format.js';

export const WATCH_INTERVAL_MS = 1_000;


export interface WatchOutput {
  write(text: string): unknown;
  isTTY?: boolean | undefined;
  columns?: number | undefined;
  rows?: number | undefined;
}

export interface WatchOptions {
  poll: () => Promise<RebalanceStatus>;
  out: WatchOutput;
  json?: boolean | undefined;
  /** Resolves when the operator stops the watch (Ctrl-C: SIGINT). */
  stopped: Promise<NodeJS.Signals>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Errors worth waiting out once the coordinator has answered: it may be failing over (≤ 10 s). */
function transient(err: unknown): boolean {
  return err instanceof ShoalError && (err.code === 'UNAVAILABLE' || err.code === 'TIMEOUT');
}

/**
 * Runs the watch; resolves with the exit code: 0 once settled, 130 on SIGINT (143 on SIGTERM).
 * A first poll that fails rejects (a wrong prefix or no cluster should not wait forever); later
 * UNAVAILABLE or TIMEOUT replies are shown and polled again.
 */
export async function watchRebalance(o: WatchOptions): Promise<number> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
  const tty = Boolean(o.out.isTTY) && !o.json;
  let stop: NodeJS.Signals | undefined;
  const stopped = o.stopped.then((sig) => {
    stop = sig;
    return undefined;
  });
  let prev: RebalanceStatus | undefined;
  let lastJson = '';
  let lastError = '';
  let drawn = 0;
  const draw = (lines: string[]): void => {
    const frame = fitFrame(lines, o.out.columns, o.out.rows);
    // Up to the first line of the last frame, clear to the end of the screen, draw anew.
    o.out.write(`${drawn > 0 ? `\x1b[${drawn}A` : ''}\x1b[0J${frame.join('\n')}\n`);
    drawn = frame.length;
  };
  for (;;) {
    let s: RebalanceStatus | undefined;
    try {
      s = await Promise.race([o.poll(), stopped]);
    } catch (err) {
      if (prev === undefined || !transient(err)) throw err;
      const msg = `waiting for the coordinator: ${describeError(err)}`;
      if (tty) draw([...formatStatus(prev, now(), { bars: true }).split('\n'), msg]);
      else if (msg !== lastError) o.out.write(`${msg}\n`);
      lastError = msg;
    }
    if (stop) return stop === 'SIGINT' ? EXIT_SIGINT : EXIT_SIGTERM;
    if (s) {
      lastError = '';
      if (o.json) {
        const line = JSON.stringify(s);
        if (line !== lastJson) o.out.write(`${line}\n`);
        lastJson = line;
      } else if (tty) {
        draw(formatStatus(s, now(), { bars: true }).split('\n'));
      } else {
        for (const line of watchEvents(prev, s)) o.out.write(`${line}\n`);
      }
      prev = s;
      if (settled(s)) {
        if (!o.json) o.out.write(`${finalLine(s)}\n`);
        return 0;
      }
    }
    await Promise.race([sleep(WATCH_INTERVAL_MS), stopped]);
    if (stop) return stop === 'SIGINT' ? EXIT_SIGINT : EXIT_SIGTERM;
  }
}
