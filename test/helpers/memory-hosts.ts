/**
 * Real Raft hosts (src/replication) on in-memory ports, for tests of the host's own logic: the
 * memory transport on a reliable network, the memory log store (its flush can be made to fail),
 * a manual clock, and a state machine in memory whose apply and restore a test can break or slow.
 */
import type { Message } from '../../src/raft/types.js';
import { MemoryRaftNetwork } from '../../src/replication/memory-raft-transport.js';
import { RaftHost } from '../../src/replication/raft-host.js';
import type { AppliedEntry, StateMachine } from '../../src/replication/raft-state-machine.js';
import { ManualClock, type Clock, type Timer } from '../../src/runtime/clock.js';
import type { Logger } from '../../src/runtime/logger.js';
import { MemoryRaftLogStore } from '../../src/storage/raft-log-store.js';

const noop = (): void => undefined;
export const QUIET: Logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => QUIET };

/** A state machine image as the host streams it: pieces of `size` bytes. */
export async function* chunked(image: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let off = 0; off < image.length; off += size) yield image.subarray(off, off + size);
}

/**
 * One process's view of a shared {@link ManualClock} whose event loop can be stalled: while
 * stalled, its timers that fall due are held, and they fire late, at {@link release} (as after a
 * SIGSTOP, or a long synchronous task). Time itself goes on.
 */
export class StallableClock implements Clock {
  stalled = false;
  private held: (() => void)[] = [];

  constructor(private readonly inner: ManualClock) {}

  now(): number {
    return this.inner.now();
  }

  setTimer(fn: () => void, delayMs: number): Timer {
    return this.inner.setTimer(() => (this.stalled ? this.held.push(fn) : fn()), delayMs);
  }

  release(): void {
    this.stalled = false;
    const held = this.held;
    this.held = [];
    for (const fn of held) fn();
  }
}

/** The memory store, with a flush that can be made to fail once. */
export class FlakyMemoryStore extends MemoryRaftLogStore {
  failNextFlush: Error | undefined;

  override flushed(): Promise<void> {
    const err = this.failNextFlush;
    this.failNextFlush = undefined;
    return err ? Promise.reject(err) : Promise.resolve();
  }
}

/** Entries in memory, answering each normal entry with its data as text. */
export class MemoryStateMachine implements StateMachine {
  appliedIndex = 0;
  readonly entries = new Map<number, string>();
  /** Makes the next apply throw. */
  failApply: Error | undefined;
  /** Called for each chunk a restore consumes (a test may make it slow). */
  onRestoreChunk: (c: Uint8Array) => Promise<void> = () => Promise.resolve();
  /** Called once a restore has every chunk, before it completes (loading an index: a test may make it slow). */
  onRestoreEnd: () => Promise<void> = () => Promise.resolve();
  /** Bytes per snapshot chunk this state machine yields. */
  chunkBytes = 16;
  /** Restores begun, and every index applied (a replay from index 1 shows here). */
  restores = 0;
  readonly appliedIndexes: number[] = [];

  apply(entries: AppliedEntry[]): Promise<unknown[]> {
    const err = this.failApply;
    if (err) return Promise.reject(err);
    return Promise.resolve(
      entries.map((e) => {
        this.appliedIndex = e.index;
        this.appliedIndexes.push(e.index);
        if (e.type !== 'normal') return undefined;
        const text = new TextDecoder().decode(e.data);
        this.entries.set(e.index, text);
        return text;
      }),
    );
  }

  snapshot(): Promise<{ appliedIndex: number; chunks: AsyncIterable<Uint8Array>; bytes: number }> {
    const image = new TextEncoder().encode(JSON.stringify([...this.entries]));
    return Promise.resolve({ appliedIndex: this.appliedIndex, chunks: chunked(image, this.chunkBytes), bytes: image.length });
  }

  async restore(appliedIndex: number, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    this.restores++;
    const parts: Uint8Array[] = [];
    for await (const c of chunks) {
      await this.onRestoreChunk(c);
      parts.push(c);
    }
    await this.onRestoreEnd();
    this.entries.clear();
    for (const [i, v] of JSON.parse(new TextDecoder().decode(Buffer.concat(parts))) as [number, string][]) this.entries.set(i, v);
    this.appliedIndex = appliedIndex;
  }
}

export interface MemoryNode {
  id: string;
  host: RaftHost;
  store: FlakyMemoryStore;
  sm: MemoryStateMachine;
  fatal: Error[];
}

/** Hosts on one memory network and one manual clock (ticks of 10 ms, elections after 6 ticks). */
export class MemoryHosts {
  readonly clock = new ManualClock(1_000);
  /** Snapshot chunks sent to each node. */
  readonly chunkArrivals = new Map<string, number>();
  /** Nodes cut off: nothing they send arrives, nothing sent to them arrives. */
  readonly cut = new Set<string>();
  /** Frames of Raft messages sent, as requests or riding on replies, while {@link recording}. */
  readonly frames: { from: string; to: string; kind: 'request' | 'reply' | 'publish'; msgs: [string, Message][] }[] = [];
  recording = false;
  /** How long every frame takes to arrive, ms of manual time (0: at the next step of the clock). */
  latencyMs = 0;
  readonly net = new MemoryRaftNetwork(this.clock, {
    fate: (from, to, kind) => {
      if (this.cut.has(from) || this.cut.has(to)) return [];
      if (kind === 'chunk') this.chunkArrivals.set(to, (this.chunkArrivals.get(to) ?? 0) + 1);
      return [this.latencyMs];
    },
    observe: (from, to, msgs, kind) => {
      if (this.recording) this.frames.push({ from, to, kind, msgs: [...msgs] });
    },
  });
  readonly nodes = new Map<string, MemoryNode>();

  add(id: string, o: { compactEvery?: number; compactKeep?: number; snapshotChunkBytes?: number; readPipeline?: boolean; clock?: Clock; writeGate?: () => Error | undefined } = {}): MemoryNode {
    const { writeGate, clock, ...options } = o;
    const store = new FlakyMemoryStore();
    const fatal: Error[] = [];
    const host = RaftHost.open({
      nodeId: id,
      clock: clock ?? this.clock,
      log: QUIET,
      store,
      transport: this.net.attach(id, { requestTimeoutMs: 200 }),
      options: { tickMs: 10, electionTicks: 6, heartbeatTicks: 2, seed: id.charCodeAt(0), ...options },
      onFatal: (err) => fatal.push(err),
      ...(writeGate ? { writeGate } : {}),
    });
    const n: MemoryNode = { id, host, store, sm: new MemoryStateMachine(), fatal };
    this.nodes.set(id, n);
    return n;
  }

  node(id: string): MemoryNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Moves time on in 10 ms steps until `cond` holds; throws after `maxMs`. */
  async until(cond: () => boolean, maxMs = 5_000, what = 'condition'): Promise<void> {
    for (let t = 0; t <= maxMs; t += 10) {
      if (cond()) return;
      await this.clock.advance(10);
    }
    throw new Error(`${what} did not hold within ${maxMs} ms of manual time`);
  }

  /** Moves time on until `p` settles; its value, or its rejection. */
  async settle<T>(p: Promise<T>, maxMs = 5_000): Promise<T> {
    let done = false;
    const watched = p.finally(() => (done = true));
    watched.catch(() => undefined);
    await this.until(() => done, maxMs, 'the promise to settle');
    return watched;
  }

  /** The ready leader of `group`, if there is one. */
  leader(group: string): MemoryNode | undefined {
    for (const n of this.nodes.values()) {
      if (!n.host.groupIds().includes(group)) continue;
      const r = n.host.roleOf(group);
      if (r.role === 'leader' && r.ready && !n.host.failure()) return n;
    }
    return undefined;
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.values()) await n.host.stop();
  }
}
