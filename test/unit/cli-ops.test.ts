/** What the operations verbs print, and how they read their flags. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Move, RebalanceStatus } from '../../src/client/ops.js';
import { UsageError } from '../../src/cli/command.js';
import {
  finalLine, fitFrame, formatBytes, formatCopy, formatDryRun, formatDuration, formatMaintenance, formatRate, formatRemove, formatStatus, formatTransfer, settled, watchEvents,
} from '../../src/cli/ops-format.js';
import { nodeSettingsFrom, parseBytes, rebalanceSettingsFrom, zonesFrom } from '../../src/cli/ops-options.js';
import { bar } from '../../src/cli/progress.js';
import { watchRebalance } from '../../src/cli/rebalance-watch.js';
import { TimeoutError, NotFoundError } from '../../src/runtime/errors.js';

const NOW = Date.parse('2026-12-01T21:42:05Z');

function move(over: Partial<Move> = {}): Move {
  return {
    id: 'm-41', collection: 'docs', shard: 1, from: 'n2', to: 'n4', reason: 'repair', phase: 'copy',
    bytesCopied: 18874368, bytesTotal: 94371840, startedAt: '2026-12-01T21:40:00Z', ...over,
  };
}

function status(over: Partial<RebalanceStatus> = {}): RebalanceStatus {
  return {
    coordinator: 'n1', state: 'running', auto: true,
    throttle: { maxConcurrentMoves: 2, maxBytesPerSec: 52428800, replaceAfterMs: 60000 },
    moves: [move(), move({ id: 'm-42', shard: 0, from: null, to: 'n3', reason: 'rebalance', phase: 'prepare', bytesCopied: 0, bytesTotal: 0, startedAt: '2026-12-01T21:41:30Z' })],
    done: 12, failed: 0, pending: 3, ...over,
  };
}

/** The UsageError `fn` throws, for its message. */
function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UsageError, `a UsageError, not ${String(err)}`);
    return err.message;
  }
  return assert.fail('no error thrown');
}

describe('cli ops', () => {
  it('cli ops - bytes in powers of 1024, one decimal below 10; rates; 0 B/s is unthrottled', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(18874368), '18 MiB');
    assert.equal(formatBytes(94371840), '90 MiB');
    assert.equal(formatBytes(2.5 * 2 ** 30), '2.5 GiB');
    assert.equal(formatRate(52428800), '50 MiB/s');
    assert.equal(formatRate(0), 'unthrottled');
    assert.equal(formatCopy(move()), '18 MiB/90 MiB (20%)');
    assert.equal(formatCopy(move({ bytesTotal: 0 })), '-', 'no percentage before the size is known');
    assert.equal(formatCopy(move({ bytesCopied: 94371840 })), '90 MiB/90 MiB (100%)');
  });

  it('cli ops - durations: ms, seconds, minutes, hours', () => {
    assert.equal(formatDuration(750), '750 ms');
    assert.equal(formatDuration(42_000), '42s');
    assert.equal(formatDuration(60_000), '1m');
    assert.equal(formatDuration(125_000), '2m5s');
    assert.equal(formatDuration(3_780_000), '1h3m');
    assert.equal(formatDuration(NaN), '-');
  });

  it('cli ops - --max-bytes-per-sec takes bytes with SI or IEC units; a bare M is refused as ambiguous', () => {
    assert.equal(parseBytes('52428800', '--max-bytes-per-sec'), 52428800);
    assert.equal(parseBytes('50MiB', '--max-bytes-per-sec'), 52428800);
    assert.equal(parseBytes('10MB', '--max-bytes-per-sec'), 10_000_000);
    assert.equal(parseBytes('1.5 GiB/s', '--max-bytes-per-sec'), 1610612736);
    assert.equal(parseBytes('64kib', '--max-bytes-per-sec'), 65536);
    assert.equal(parseBytes('0', '--max-bytes-per-sec'), 0);
    assert.equal(usageError(() => parseBytes('50M', '--max-bytes-per-sec')), "--max-bytes-per-sec: '50M' is ambiguous; write 50MB (powers of 1000) or 50MiB (powers of 1024)");
    assert.match(usageError(() => parseBytes('-1', '--max-bytes-per-sec')), /^--max-bytes-per-sec must be a number of bytes ≥ 0, optionally with a unit \(B, kB, MB, GB, KiB, MiB, GiB\), got '-1'$/);
    assert.match(usageError(() => parseBytes('fast', '--max-bytes-per-sec')), /--max-bytes-per-sec must be a number of bytes ≥ 0/);
  });

  it('cli ops - configure flags: each mistake names the flag and its limit; nothing given is a mistake too', () => {
    assert.deepEqual(rebalanceSettingsFrom({ 'max-concurrent-moves': '4', 'max-bytes-per-sec': '10MB', auto: 'false', 'replace-after-ms': '30000' }), {
      maxConcurrentMoves: 4, maxBytesPerSec: 10_000_000, auto: false, replaceAfterMs: 30000,
    });
    assert.deepEqual(rebalanceSettingsFrom({ auto: 'true' }), { auto: true }, 'only what is given is sent');
    assert.equal(usageError(() => rebalanceSettingsFrom({ 'max-concurrent-moves': '0' })), '--max-concurrent-moves must be 1 to 64, got 0');
    assert.equal(usageError(() => rebalanceSettingsFrom({ 'max-concurrent-moves': '65' })), '--max-concurrent-moves must be 1 to 64, got 65');
    assert.equal(usageError(() => rebalanceSettingsFrom({ auto: 'yes' })), '--auto must be true or false, got yes');
    assert.equal(usageError(() => rebalanceSettingsFrom({ 'replace-after-ms': '0' })), '--replace-after-ms must be 1000 to 604800000 (milliseconds), got 0');
    assert.equal(usageError(() => rebalanceSettingsFrom({ 'replace-after-ms': '1.5' })), '--replace-after-ms must be 1000 to 604800000 (milliseconds), got 1.5');
    assert.equal(usageError(() => rebalanceSettingsFrom({})), 'rebalance configure needs at least one of --max-concurrent-moves, --max-bytes-per-sec, --auto, --replace-after-ms');
  });

  it('cli ops - node settings: a flag wins over its variable, and an error names where the bad value came from', () => {
    assert.deepEqual(nodeSettingsFrom({}, {}), {});
    assert.deepEqual(nodeSettingsFrom({ zone: 'eu-1a', 'down-after-ms': '5000', 'replace-after-ms': '60000' }, {}), { zone: 'eu-1a', downAfterMs: 5000, replaceAfterMs: 60000 });
    assert.deepEqual(nodeSettingsFrom({}, { SHOAL_ZONE: 'b', SHOAL_DOWN_AFTER_MS: '3000', SHOAL_REPLACE_AFTER_MS: '9000' }), { zone: 'b', downAfterMs: 3000, replaceAfterMs: 9000 });
    assert.deepEqual(nodeSettingsFrom({ zone: 'a' }, { SHOAL_ZONE: 'b' }), { zone: 'a' });
    assert.equal(usageError(() => nodeSettingsFrom({ 'down-after-ms': '100' }, {})), '--down-after-ms must be 1000 to 600000, got 100');
    assert.equal(usageError(() => nodeSettingsFrom({}, { SHOAL_DOWN_AFTER_MS: 'soon' })), 'SHOAL_DOWN_AFTER_MS must be 1000 to 600000, got soon');
    assert.equal(usageError(() => nodeSettingsFrom({}, { SHOAL_REPLACE_AFTER_MS: '-1' })), 'SHOAL_REPLACE_AFTER_MS must be 1000 to 604800000 (milliseconds), got -1');
    assert.match(usageError(() => nodeSettingsFrom({ zone: 'eu west' }, {})), /^--zone "eu west" is not valid: use 1 to 128 of A-Z a-z 0-9 _ -$/);
    assert.deepEqual(zonesFrom('a,b,c'), ['a', 'b', 'c']);
    assert.equal(zonesFrom(undefined), undefined);
    assert.match(usageError(() => zonesFrom('a,,c')), /^--zones entry "" is not valid/);
  });

  it('cli ops - rebalance status: coordinator, state, auto, throttles, counts, and a table of moves', () => {
    assert.equal(formatStatus(status(), NOW), [
      'coordinator n1: running, auto on',
      'throttle: at most 2 moves at once, 50 MiB/s, dead nodes replaced after 1m',
      'moves: 2 in flight, 3 pending, 12 done, 0 failed',
      '',
      'ID    SHARD   MOVE        REASON     PHASE    PROGRESS             FOR',
      'm-41  docs/1  n2 → n4     repair     copy     18 MiB/90 MiB (20%)  2m5s',
      'm-42  docs/0  (new) → n3  rebalance  prepare  -                    35s',
    ].join('\n'));
    assert.equal(formatStatus(status({ coordinator: null, state: 'idle', auto: false, moves: [], pending: 0, throttle: { maxConcurrentMoves: 1, maxBytesPerSec: 0, replaceAfterMs: 90_000 } }), NOW), [
      'coordinator (none): idle, auto off',
      'throttle: at most 1 move at once, unthrottled, dead nodes replaced after 1m30s',
      'moves: 0 in flight, 0 pending, 12 done, 0 failed',
      'no moves in flight',
    ].join('\n'));
  });

  it('cli ops - a move in its copy phase gets a bar when watched on a terminal', () => {
    assert.equal(bar(0.2, 20), '[####................]');
    assert.equal(bar(2, 4), '[####]', 'clamped');
    const lines = formatStatus(status(), NOW, { bars: true }).split('\n');
    assert.equal(lines[5], 'm-41  docs/1  n2 → n4     repair     copy     [####................] 18 MiB/90 MiB (20%)  2m5s');
    assert.match(lines[6] as string, /prepare {2}- +35s$/, 'no bar outside the copy phase');
  });

  it('cli ops - start --dry-run shows the plan without phases or progress', () => {
    assert.equal(formatDryRun(status()), [
      'dry run: 2 moves planned, none applied',
      '',
      'ID    SHARD   MOVE        REASON',
      'm-41  docs/1  n2 → n4     repair',
      'm-42  docs/0  (new) → n3  rebalance',
    ].join('\n'));
    assert.equal(formatDryRun(status({ moves: [] })), 'dry run: nothing to move, the cluster is even');
  });

  it('cli ops - node and shard replies in words', () => {
    assert.equal(formatMaintenance({ node: 'n2', state: 'maintenance', leaders: 0 }), 'n2 is in maintenance: it leads 0 shards and takes no new replicas');
    assert.equal(formatMaintenance({ node: 'n2', state: 'up', leaders: 0 }), 'n2 is up: out of maintenance, leaderships balance back to it');
    assert.equal(formatRemove({ node: 'n2', state: 'draining', moves: 6 }), 'n2 is draining: 6 moves take its replicas elsewhere, then it leaves the cluster (follow them with: shoal rebalance status --watch)');
    assert.equal(formatTransfer({ collection: 'docs', shard: 1, leader: 'n3', term: 9 }), 'docs/1: n3 leads now (term 9)');
  });

  it('cli ops - watch without a terminal: the first poll in full, then one line per change, copy progress per 10%', () => {
    const a = status();
    assert.deepEqual(watchEvents(undefined, a), [
      'coordinator n1: running, auto on',
      'throttle: at most 2 moves at once, 50 MiB/s, dead nodes replaced after 1m',
      'moves: 2 in flight, 3 pending, 12 done, 0 failed',
      'm-41 docs/1 n2 → n4 (repair): copy 18 MiB/90 MiB (20%)',
      'm-42 docs/0 (new) → n3 (rebalance): prepare',
    ]);
    assert.deepEqual(watchEvents(a, a), [], 'nothing changed, nothing printed');
    const b = status({ moves: [move({ bytesCopied: 20_000_000 }), a.moves[1] as Move] });
    assert.deepEqual(watchEvents(a, b), [], 'still in the same 10% of the copy');
    const c = status({ moves: [move({ bytesCopied: 50_000_000 }), { ...(a.moves[1] as Move), phase: 'copy', bytesTotal: 1000 }] });
    assert.deepEqual(watchEvents(b, c), ['m-41 docs/1: copy 48 MiB/90 MiB (52%)', 'm-42 docs/0: prepare → copy']);
    const d = status({ state: 'paused', moves: [c.moves[1] as Move], done: 13, coordinator: 'n3', throttle: { ...a.throttle, maxBytesPerSec: 0 } });
    assert.deepEqual(watchEvents(c, d), [
      'coordinator n1 → n3',
      'state running → paused',
      'throttle: at most 2 moves at once, unthrottled, dead nodes replaced after 1m',
      'm-41 docs/1 n2 → n4: ended',
      'moves: 1 in flight, 3 pending, 13 done, 0 failed',
    ]);
  });

  it('cli ops - watch ends when nothing is in flight or pending, with the counts', () => {
    assert.equal(settled(status()), false);
    assert.equal(settled(status({ moves: [], pending: 1 })), false);
    assert.equal(settled(status({ moves: [], pending: 0 })), true);
    assert.equal(finalLine(status({ moves: [], pending: 0, done: 14 })), 'no moves in flight or pending: 14 moves done, none failed');
    assert.equal(finalLine(status({ moves: [], pending: 0, done: 14, failed: 2 })), 'no moves in flight or pending: 14 moves done, 2 failed');
  });

  it('cli ops - a redrawn frame fits the terminal: lines cut to its width, at most its height', () => {
    assert.deepEqual(fitFrame(['abcdef', 'ab'], 5, 24), ['abc…', 'ab']);
    assert.deepEqual(fitFrame(['1', '2', '3', '4', '5', '6'], 80, 5), ['1', '2', '3', '… 3 more lines']);
    assert.deepEqual(fitFrame(['1', '2'], undefined, undefined), ['1', '2']);
  });
});

/** A fake terminal or pipe that keeps what is written. */
function output(tty: boolean): { out: { write(t: string): boolean; isTTY: boolean; columns: number; rows: number }; text: () => string } {
  let text = '';
  return { out: { write: (t: string) => ((text += t), true), isTTY: tty, columns: 200, rows: 50 }, text: () => text };
}

/** Polls answering `replies` in turn (an Error is thrown), the last one forever. */
function polls(replies: (RebalanceStatus | Error)[]): () => Promise<RebalanceStatus> {
  let i = 0;
  return () => {
    const r = replies[Math.min(i++, replies.length - 1)] as RebalanceStatus | Error;
    return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
  };
}

const never = new Promise<NodeJS.Signals>(() => undefined);
const noSleep = (): Promise<void> => Promise.resolve();

describe('cli ops watch', () => {
  const moving = status({ moves: [move()], pending: 1 });
  const copied = status({ moves: [move({ phase: 'catch-up', bytesCopied: 94371840 })], pending: 0 });
  const even = status({ moves: [], pending: 0, done: 14 });

  it('cli ops watch - on a pipe: a line per change, a timeout while the coordinator fails over is shown once, then the final line and 0', async () => {
    const o = output(false);
    const code = await watchRebalance({ poll: polls([moving, moving, new TimeoutError('no answer'), new TimeoutError('no answer'), copied, even]), out: o.out, stopped: never, now: () => NOW, sleep: noSleep });
    assert.equal(code, 0);
    assert.equal(o.text(), [
      'coordinator n1: running, auto on',
      'throttle: at most 2 moves at once, 50 MiB/s, dead nodes replaced after 1m',
      'moves: 1 in flight, 1 pending, 12 done, 0 failed',
      'm-41 docs/1 n2 → n4 (repair): copy 18 MiB/90 MiB (20%)',
      'waiting for the coordinator: no answer',
      'm-41 docs/1: copy → catch-up',
      'moves: 1 in flight, 0 pending, 12 done, 0 failed',
      'm-41 docs/1 n2 → n4: ended',
      'moves: 0 in flight, 0 pending, 14 done, 0 failed',
      'no moves in flight or pending: 14 moves done, none failed',
      '',
    ].join('\n'));
  });

  it('cli ops watch - on a terminal: each poll redraws the frame in place', async () => {
    const o = output(true);
    assert.equal(await watchRebalance({ poll: polls([moving, even]), out: o.out, stopped: never, now: () => NOW, sleep: noSleep }), 0);
    const frames = o.text().split('\x1b[0J');
    assert.equal(frames.length, 3, 'two frames');
    assert.equal(frames[0], '', 'the first frame does not move up');
    assert.match(frames[1] as string, /\[####\.{16}\] 18 MiB\/90 MiB \(20%\)/);
    assert.ok((frames[1] as string).endsWith('\x1b[6A'), `the second frame first goes up the 6 lines of the first: ${JSON.stringify(frames[1])}`);
    assert.match(frames[2] as string, /^coordinator n1: running, auto on\n.*\nmoves: 0 in flight, 0 pending, 14 done, 0 failed\nno moves in flight\nno moves in flight or pending: 14 moves done, none failed\n$/);
  });

  it('cli ops watch - --json: each changed reply as one JSON line, no final prose', async () => {
    const o = output(true);
    assert.equal(await watchRebalance({ poll: polls([moving, moving, even]), out: o.out, json: true, stopped: never, sleep: noSleep }), 0);
    assert.deepEqual(o.text().trimEnd().split('\n').map((l) => JSON.parse(l) as unknown), [moving, even]);
  });

  it('cli ops watch - Ctrl-C exits 130, SIGTERM 143', async () => {
    for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const o = output(false);
      let stop: (s: NodeJS.Signals) => void = () => undefined;
      const stopped = new Promise<NodeJS.Signals>((r) => (stop = r));
      const watching = watchRebalance({ poll: polls([moving]), out: o.out, stopped, sleep: () => new Promise(() => undefined) });
      await new Promise((r) => setTimeout(r, 20));
      stop(sig);
      assert.equal(await watching, code);
    }
  });

  it('cli ops watch - a first poll that fails ends the watch with its error; a later non-transient one too', async () => {
    await assert.rejects(watchRebalance({ poll: polls([new TimeoutError('no answer')]), out: output(false).out, stopped: never, sleep: noSleep }), TimeoutError);
    await assert.rejects(watchRebalance({ poll: polls([moving, new NotFoundError('gone')]), out: output(false).out, stopped: never, sleep: noSleep }), NotFoundError);
  });
});
