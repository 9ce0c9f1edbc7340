/**
 * An in-memory network of pure Raft cores for the paper tests: it carries out each Ready as the
 * host would (persist, advance, send, apply), delivers messages until the network is quiet, and
 * can drop, cut off and heal nodes. Fakes are fine here: the cores are pure.
 */
import { bootstrapInit, emptyInit, RaftNode, type RaftInit } from '../../src/raft/raft-node.js';
import type { RaftConfigInput } from '../../src/raft/config.js';
import type { ConfState, Entry, HardState, Message, NodeId, Ready, SnapshotMeta } from '../../src/raft/types.js';

export const id = (s: string): NodeId => s as NodeId;
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

export interface NetNode {
  core: RaftNode;
  hard: HardState;
  snapshot: SnapshotMeta;
  entries: Entry[];
  applied: Entry[];
}

export class RaftNet {
  readonly nodes = new Map<string, NetNode>();
  /** Messages in flight, in order. */
  queue: Message[] = [];
  /** Every message delivered, for assertions. */
  readonly trace: Message[] = [];
  private readonly cut = new Set<string>();
  /** Drop messages for which this returns true. */
  dropIf: (m: Message) => boolean = () => false;

  constructor(
    names: string[],
    private readonly cfg: Partial<RaftConfigInput> = {},
    voters: string[] = names,
  ) {
    const conf: ConfState = { voters: voters.map(id), learners: [] };
    for (const n of names) this.add(n, voters.includes(n) ? bootstrapInit(conf) : emptyInit());
  }

  add(name: string, init: RaftInit, cfg: Partial<RaftConfigInput> = {}): NetNode {
    const core = new RaftNode({ id: id(name), seed: name.charCodeAt(0), ...this.cfg, ...cfg }, init);
    const n: NetNode = { core, hard: init.hardState, snapshot: init.snapshot, entries: [...init.entries], applied: [] };
    this.nodes.set(name, n);
    return n;
  }

  node(name: string): NetNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  core(name: string): RaftNode {
    return this.node(name).core;
  }

  /** Restarts `name` from what it persisted (its unpersisted state is gone). */
  restart(name: string, cfg: Partial<RaftConfigInput> = {}): NetNode {
    const n = this.node(name);
    return this.add(name, { hardState: n.hard, snapshot: n.snapshot, entries: [...n.entries], applied: n.applied.length > 0 ? (n.applied[n.applied.length - 1] as Entry).index : 0 }, cfg);
  }

  isolate(name: string): void {
    this.cut.add(name);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Carries out every pending Ready of every node (persist, advance, queue messages, apply). */
  flushReadies(): void {
    for (const n of this.nodes.values()) {
      while (n.core.hasReady()) this.handle(n, n.core.ready());
    }
  }

  private handle(n: NetNode, rd: Ready): void {
    if (rd.snapshot) {
      n.snapshot = rd.snapshot;
      n.entries = [];
    }
    if (rd.truncateFrom !== undefined) n.entries = n.entries.filter((e) => e.index < (rd.truncateFrom as number));
    const first = rd.entries[0];
    if (first) n.entries = n.entries.filter((e) => e.index < first.index).concat(rd.entries);
    if (rd.hardState) n.hard = rd.hardState;
    n.core.advance(rd);
    this.queue.push(...rd.messages);
    for (const e of rd.committedEntries) n.applied.push(e);
    if (rd.committedEntries.length > 0) n.core.appliedTo((rd.committedEntries[rd.committedEntries.length - 1] as Entry).index);
  }

  /** Delivers messages (and the messages they cause) until none is left or `max` were delivered. */
  deliverAll(max = 10_000): void {
    this.flushReadies();
    for (let k = 0; k < max; k++) {
      const m = this.queue.shift();
      if (!m) return;
      if (this.cut.has(m.from) || this.cut.has(m.to) || this.dropIf(m)) continue;
      const to = this.nodes.get(m.to);
      if (!to) continue;
      this.trace.push(m);
      to.core.step(m);
      this.flushReadies();
    }
  }

  tick(name: string, times = 1): void {
    for (let i = 0; i < times; i++) this.core(name).tick();
    this.flushReadies();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const n of this.nodes.values()) n.core.tick();
    this.flushReadies();
  }

  /** Makes `name` campaign now (as if its election timer fired) and runs the network. */
  elect(name: string): void {
    const c = this.core(name);
    for (let i = 0; i < 3 * c.cfg.electionTicks && c.role !== 'leader'; i++) {
      c.tick();
      this.deliverAll();
    }
  }

  propose(name: string, data: string): void {
    const r = this.core(name).propose([bytes(data)]);
    if (!r.ok) throw new Error(`propose on ${name} failed: ${r.reason}`);
    this.deliverAll();
  }

  /** The data of applied normal entries on `name`, as strings. */
  appliedData(name: string): string[] {
    return this.node(name).applied.filter((e) => e.type === 'normal').map((e) => new TextDecoder().decode(e.data));
  }
}
