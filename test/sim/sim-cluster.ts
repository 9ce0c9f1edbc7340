/**
 * A deterministic simulation of Raft groups: N replicas of the pure core on a seeded network
 * that drops, duplicates, delays and reorders messages and makes symmetric and asymmetric
 * partitions; crashes that lose every write not yet flushed (and sometimes corrupt a stored
 * entry); restarts; compaction and snapshots; membership changes, leadership transfers and reads
 * during the faults. After every step it checks election safety, log matching, leader
 * completeness, state machine safety, monotonic commit, that a damaged replica never grants a
 * vote, and that confirmed reads are linearizable. After the faults heal it checks that a
 * leader is elected and a new entry commits everywhere within a bound.
 *
 * The host rules it follows are the real host's: a Ready's writes are staged, and its messages
 * leave and its committed entries are applied only when a flush makes the writes durable.
 */
import { bootstrapInit, emptyInit, RaftNode, type RaftInit } from '../../src/raft/raft-node.js';
import { seededRandom, type TestingBugs } from '../../src/raft/config.js';
import { mustPersistBeforeSending, type ConfState, type Entry, type HardState, type Message, type NodeId, type Ready, type SnapshotMeta } from '../../src/raft/types.js';

export interface SimOptions {
  seed: number;
  bugs?: TestingBugs;
  /** Steps of the faulty phase. */
  steps?: number;
  /** Steps allowed after healing for a leader to be elected and an entry to commit everywhere. */
  healBound?: number;
  /** Fix the number of initial voters (default: 1, 3 or 5 by seed). */
  voters?: number;
  /** Fix the bytes per append message (default: 1, 256 or 4096 by seed); 1 sends one entry per message. */
  maxSizePerMsg?: number;
  /** Probability per step of crashing a node (default 0.01). */
  crashP?: number;
  /** Probability per step of crashing the current leader (default 0). */
  leaderCrashP?: number;
  /** Fix the message drop probability (default: 0, 0.02, 0.1 or 0.25 by seed). */
  dropP?: number;
  /** Receives a line per event, for debugging a seed. */
  trace?: (line: string) => void;
}

export class SimViolation extends Error {
  constructor(
    readonly seed: number,
    readonly step: number,
    message: string,
  ) {
    super(`seed ${seed}, step ${step}: ${message}`);
    this.name = 'SimViolation';
  }
}

interface Durable {
  hardState: HardState;
  snapshot: SnapshotMeta;
  entries: Entry[];
  /** The state machine (durable by itself): applied entries' checksums by index, and its applied index. */
  smApplied: number;
  smLog: Map<number, number>;
}

interface Staged {
  ready?: Ready;
  compact?: SnapshotMeta;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: SnapshotMeta;
  smImage?: { applied: number; log: Map<number, number> };
  truncateFrom?: number;
  messages: Message[];
  committed: Entry[];
}

interface SimNode {
  id: NodeId;
  core: RaftNode | null;
  durable: Durable;
  staged: Staged[];
  /** In-memory state machine (the durable one plus applies not yet flushed). */
  smApplied: number;
  smLog: Map<number, number>;
  lastCommit: number;
  incarnation: number;
  tickPhase: number;
  pendingReads: Map<number, number>;
  /** Leader: reads a follower asked a read index for (by id): the follower, and what was committed when it asked. */
  peerReads: Map<number, { follower: NodeId; floor: number; term: number }>;
  /** When anything last arrived from each peer node (the host's liveness view). */
  heard: Map<NodeId, number>;
  /** Its stored log was corrupted and it has not started since. */
  corrupt: boolean;
}

type InFlight =
  | { kind: 'msg'; at: number; msg: Message; image?: { applied: number; log: Map<number, number> } }
  /** The outcome of streaming a snapshot, reported to the sender's core (success, or a timeout). */
  | { kind: 'snapStatus'; at: number; node: NodeId; peer: NodeId; ok: boolean }
  /** The host's node-level liveness ping (one per peer node, not per group). */
  | { kind: 'ping'; at: number; from: NodeId; to: NodeId }
  /** A follower asks the leader for a read index (the host's request, outside Raft's messages). */
  | { kind: 'readReq'; at: number; from: NodeId; to: NodeId; id: number; floor: number }
  /** The leader's answer: the index, and the term it was taken in. */
  | { kind: 'readResp'; at: number; to: NodeId; id: number; index: number; term: number; floor: number };

const IDS = ['a', 'b', 'c', 'd', 'e'].map((s) => s as NodeId);
const TICK_EVERY = 4;
/** Steps after the healing commit for every member to apply it (catching up may be slow with tiny messages). */
const CATCH_UP_BOUND = 3000;
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;

export class SimCluster {
  readonly seed: number;
  private readonly rnd: () => number;
  private readonly bugs: TestingBugs;
  private nodes = new Map<NodeId, SimNode>();
  private net: InFlight[] = [];
  private blocked = new Set<string>();
  private now = 0;
  private step = 0;
  private leaders = new Map<number, NodeId>();
  private committed = new Map<number, { crc: number; term: number; seenAtTerm: number }>();
  private applied = new Map<number, number>();
  private proposals = 0;
  private readSeq = 0;
  private everRemoved = new Set<NodeId>();
  private dropP = 0;
  private dupP = 0;
  private maxDelay = 3;
  private corruptP = 0;
  /** Counters a test may look at. */
  readonly stats = { commits: 0, elections: 0, snapshots: 0, confChanges: 0, crashes: 0, reads: 0, leaseReads: 0, followerReads: 0, corruptions: 0, transfers: 0, damagedOutages: 0 };

  constructor(private readonly opts: SimOptions) {
    this.seed = opts.seed;
    this.rnd = seededRandom(opts.seed * 7919 + 17);
    this.bugs = opts.bugs ?? {};
    const voters = opts.voters ?? this.pick([3, 3, 3, 1, 5]);
    const conf: ConfState = { voters: IDS.slice(0, voters), learners: [] };
    for (const id of IDS) {
      const init = conf.voters.includes(id) ? bootstrapInit(conf) : emptyInit();
      const durable: Durable = { hardState: init.hardState, snapshot: init.snapshot, entries: [...init.entries], smApplied: 0, smLog: new Map() };
      const n: SimNode = { id, core: null, durable, staged: [], smApplied: 0, smLog: new Map(), lastCommit: 0, incarnation: 0, tickPhase: Math.floor(this.rnd() * TICK_EVERY), pendingReads: new Map(), peerReads: new Map(), heard: new Map(), corrupt: false };
      this.nodes.set(id, n);
      this.start(n);
    }
    this.dropP = this.opts.dropP ?? this.pick([0, 0.02, 0.1, 0.25]);
    this.dupP = this.pick([0, 0.02, 0.1]);
    this.maxDelay = this.pick([1, 3, 8, 20]);
    this.corruptP = this.pick([0, 0, 0.3]);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)] as T;
  }

  private fail(msg: string): never {
    throw new SimViolation(this.seed, this.step, msg);
  }

  // ------------------------------------------------------------ node lifecycle

  private start(n: SimNode): void {
    const d = n.durable;
    this.t(`start ${n.id} hs=${JSON.stringify(d.hardState)} snap=${d.snapshot.index} entries=${d.entries.length} sm=${d.smApplied}`);
    const init: RaftInit = { hardState: d.hardState, snapshot: d.snapshot, entries: d.entries.slice(), applied: d.smApplied };
    n.core = new RaftNode(
      {
        id: n.id,
        seed: this.seed * 31 + n.incarnation * 1009 + n.id.charCodeAt(0),
        electionTicks: ELECTION_TICKS,
        heartbeatTicks: HEARTBEAT_TICKS,
        maxSizePerMsg: this.opts.maxSizePerMsg ?? this.pick([1, 256, 4096]),
        maxInflightMsgs: this.pick([4, 64]),
        quiesceAfterTicks: this.rnd() < 0.5 ? 0 : 6,
        bugs: this.bugs,
      },
      init,
    );
    n.smApplied = d.smApplied;
    n.smLog = new Map(d.smLog);
    n.lastCommit = n.core.log.committed;
    n.staged = [];
    n.pendingReads.clear();
    n.peerReads.clear();
    n.heard = new Map(IDS.map((p) => [p, this.now]));
    n.corrupt = false;
  }

  private crash(n: SimNode): void {
    if (!n.core) return;
    this.t(`crash ${n.id}`);
    this.stats.crashes++;
    n.core = null;
    n.staged = []; // unflushed writes are lost, and so are the messages and applies behind them
    n.incarnation++;
    // At most one replica damaged at a time, in groups of three or more voters: a majority of
    // damaged replicas can never be repaired (by design they will not vote), which is an outage
    // the checkers would report, not a safety bug.
    const others = [...this.nodes.values()].filter((o) => o !== n && (o.core ? o.core.damaged : o.corrupt));
    const voters = this.leader()?.core?.conf.voters.length ?? 0;
    if (this.rnd() < this.corruptP && n.durable.entries.length > 0 && others.length === 0 && voters >= 3) {
      n.corrupt = true;
      // A disk that returns a bad byte: flip one byte of a stored entry (its checksum stays).
      const k = Math.floor(this.rnd() * n.durable.entries.length);
      const e = n.durable.entries[k] as Entry;
      const data = new Uint8Array(e.data.length + 1);
      data.set(e.data);
      data[data.length - 1] = 0xff;
      n.durable.entries[k] = { ...e, data };
      this.stats.corruptions++;
    }
  }

  // ------------------------------------------------------------ host behaviour

  private process(n: SimNode): void {
    const core = n.core;
    if (!core) return;
    while (core.hasReady()) {
      const rd = core.ready();
      for (const m of rd.messages) {
        // A leader's appends may leave before its own write is durable (like the real host).
        if (!mustPersistBeforeSending(m)) this.send(n, m);
        if (core.damaged && (m.type === 'voteResp' || m.type === 'preVoteResp') && !m.reject) this.fail(`damaged ${n.id} granted a ${m.type}`);
      }
      if (rd.softState) this.t(`${n.id} soft ${JSON.stringify(rd.softState)} last=${core.log.lastIndex()}`);
      if (rd.softState?.role === 'leader') {
        this.stats.elections++;
        this.checkNewLeader(n);
        this.checkCompleteness(n);
      }
      for (const rs of rd.readStates) {
        const floor = n.pendingReads.get(rs.id);
        if (floor === undefined) continue;
        n.pendingReads.delete(rs.id);
        if (rs.index < floor) this.fail(`read ${rs.id} on ${n.id} confirmed at index ${rs.index} but ${floor} was already committed when it began`);
        this.stats.reads++;
      }
      for (const rs of rd.readStates) {
        const pr = n.peerReads.get(rs.id);
        if (!pr) continue;
        n.peerReads.delete(rs.id);
        if (!this.blocked.has(`${n.id}>${pr.follower}`)) this.net.push({ kind: 'readResp', at: this.now + 1 + Math.floor(this.rnd() * this.maxDelay), to: pr.follower, id: rs.id, index: rs.index, term: pr.term, floor: pr.floor });
      }
      for (const f of rd.readFailures) {
        n.pendingReads.delete(f.id);
        n.peerReads.delete(f.id);
      }
      n.staged.push({
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
        entries: [...rd.entries],
        ...(rd.snapshot ? { snapshot: rd.snapshot } : {}),
        ...(rd.truncateFrom !== undefined ? { truncateFrom: rd.truncateFrom } : {}),
        messages: rd.messages.filter(mustPersistBeforeSending),
        committed: [...rd.committedEntries],
        ready: rd,
      });
    }
  }

  /** Makes every staged write durable, then sends the held messages and applies committed entries. */
  private flush(n: SimNode): void {
    const core = n.core;
    if (!core) return;
    const staged = n.staged;
    n.staged = [];
    const d = n.durable;
    for (const s of staged) {
      if (s.smImage) {
        d.smApplied = s.smImage.applied;
        d.smLog = new Map(s.smImage.log);
      }
      if (s.snapshot) {
        d.snapshot = s.snapshot;
        d.entries = [];
      }
      if (s.compact && s.compact.index > d.snapshot.index) {
        const c = s.compact;
        d.snapshot = c;
        d.entries = d.entries.filter((e) => e.index > c.index);
      }
      if (s.truncateFrom !== undefined) d.entries = d.entries.filter((e) => e.index < (s.truncateFrom as number));
      if (s.entries.length > 0) {
        const first = (s.entries[0] as Entry).index;
        d.entries = d.entries.filter((e) => e.index < first).concat(s.entries);
      }
      if (s.hardState) d.hardState = s.hardState;
    }
    for (const s of staged) if (s.ready) core.advance(s.ready);
    for (const s of staged) {
      for (const m of s.messages) this.send(n, m);
      for (const e of s.committed) this.apply(n, e);
    }
    d.smApplied = n.smApplied;
    d.smLog = new Map(n.smLog);
    core.appliedTo(n.smApplied);
    this.process(n);
  }

  private apply(n: SimNode, e: Entry): void {
    if (e.index <= n.smApplied) return;
    if (e.index !== n.smApplied + 1) this.fail(`${n.id} applies ${e.index} after ${n.smApplied}`);
    const prev = this.applied.get(e.index);
    if (prev === undefined) this.applied.set(e.index, e.crc);
    else if (prev !== e.crc) this.fail(`state machine safety: ${n.id} applied a different entry at ${e.index}`);
    n.smLog.set(e.index, e.crc);
    n.smApplied = e.index;
  }

  private t(line: string): void {
    this.opts.trace?.(`${this.step} ${line}`);
  }

  private send(from: SimNode, m: Message): void {
    let image: { applied: number; log: Map<number, number> } | undefined;
    let msg = m;
    if (m.type === 'snap') {
      // The host sends the state machine's current image, described at its applied index.
      const core = from.core as RaftNode;
      const meta = core.snapshotMetaAt(from.smApplied);
      msg = { ...m, snapshot: meta };
      image = { applied: from.smApplied, log: new Map(from.smLog) };
      this.stats.snapshots++;
    }
    const lost = this.blocked.has(`${m.from}>${m.to}`) || this.rnd() < this.dropP;
    if (m.type === 'snap') {
      // The streaming outcome reaches the sender's core later (success or a timeout).
      const at = this.now + 1 + Math.floor(this.rnd() * this.maxDelay) + (lost ? 10 : 0);
      this.net.push({ kind: 'snapStatus', at, node: from.id, peer: m.to, ok: !lost });
    }
    if (lost) return;
    const copies = this.rnd() < this.dupP ? 2 : 1;
    for (let k = 0; k < copies; k++) this.net.push({ kind: 'msg', at: this.now + 1 + Math.floor(this.rnd() * this.maxDelay), msg, ...(image ? { image } : {}) });
  }

  private deliver(f: InFlight): void {
    if (f.kind === 'readReq') {
      const l = this.nodes.get(f.to);
      if (!l?.core) return;
      l.peerReads.set(f.id, { follower: f.from, floor: f.floor, term: l.core.term });
      l.core.readIndex(f.id, this.rnd() < 0.5, f.from);
      this.process(l);
      return;
    }
    if (f.kind === 'readResp') {
      // The follower serves the read only if it is still in the term the index was taken in.
      const n = this.nodes.get(f.to);
      if (!n?.core || n.core.term !== f.term) return;
      if (f.index < f.floor) this.fail(`follower read on ${f.to} (term ${f.term}) at index ${f.index} but ${f.floor} was already committed when it asked`);
      this.stats.followerReads++;
      return;
    }
    if (f.kind === 'ping') {
      this.nodes.get(f.to)?.heard.set(f.from, this.now);
      return;
    }
    if (f.kind === 'snapStatus') {
      const n = this.nodes.get(f.node);
      if (!n?.core) return;
      n.core.reportSnapshot(f.peer, f.ok);
      this.process(n);
      return;
    }
    const n = this.nodes.get(f.msg.to);
    if (!n?.core) return;
    const core = n.core;
    n.heard.set(f.msg.from, this.now);
    if (this.opts.trace) {
      const m = f.msg;
      const extra = m.type === 'app' ? ` prev=${m.prevIndex}/${m.prevTerm} n=${m.entries.length} c=${m.commit}` : m.type === 'appResp' ? ` i=${m.index} rej=${m.reject} hint=${m.hintIndex}/${m.hintTerm}` : m.type === 'heartbeat' ? ` c=${m.commit} q=${m.quiesce}` : m.type === 'snap' ? ` s=${m.snapshot.index}/${m.snapshot.term}` : 'reject' in m ? ` rej=${m.reject}` : '';
      this.t(`deliver ${m.from}->${m.to} ${m.type} t${m.term}${extra} | ${core.role} t${core.term} last=${core.log.lastIndex()} c=${core.log.committed}`);
    }
    if (f.msg.type === 'snap' && f.image && core.wantsSnapshot(f.msg.snapshot)) {
      n.smApplied = f.image.applied;
      n.smLog = new Map(f.image.log);
      for (const [i, crc] of n.smLog) {
        const prev = this.applied.get(i);
        if (prev !== undefined && prev !== crc) this.fail(`snapshot image on ${n.id} disagrees at ${i}`);
      }
      n.staged.push({ entries: [], smImage: { applied: n.smApplied, log: new Map(n.smLog) }, messages: [], committed: [] });
    }
    core.step(f.msg);
    if (n.smApplied > core.log.applied) core.appliedTo(n.smApplied);
    this.process(n);
  }

  // ------------------------------------------------------------ checks

  private checkNewLeader(n: SimNode): void {
    const core = n.core as RaftNode;
    const prev = this.leaders.get(core.term);
    if (prev !== undefined && prev !== n.id) this.fail(`election safety: ${prev} and ${n.id} both lead term ${core.term}`);
    this.leaders.set(core.term, n.id);
  }

  private check(): void {
    const live = [...this.nodes.values()].filter((n) => n.core);
    for (const n of live) {
      const core = n.core as RaftNode;
      if (core.role === 'leader') this.checkNewLeader(n);
      if (core.log.committed < n.lastCommit) this.fail(`monotonic commit: ${n.id} went from ${n.lastCommit} to ${core.log.committed}`);
      for (let i = Math.max(core.log.firstIndex(), n.lastCommit + 1, 1); i <= core.log.committed; i++) {
        const e = core.log.entry(i) as Entry;
        const c = this.committed.get(i);
        if (!c) {
          this.committed.set(i, { crc: e.crc, term: e.term, seenAtTerm: core.term });
          this.stats.commits++;
        } else if (c.crc !== e.crc) this.fail(`state machine safety: ${n.id} committed a different entry at ${i}`);
      }
      n.lastCommit = core.log.committed;
    }
    // Log matching (§5.3): same index and term ⇒ identical prefix.
    for (let x = 0; x < live.length; x++) {
      for (let y = x + 1; y < live.length; y++) this.checkLogMatching(live[x] as SimNode, live[y] as SimNode);
    }
  }

  /** Leader completeness (§5.4): a new leader has every entry committed before its term. */
  private checkCompleteness(n: SimNode): void {
    const core = n.core as RaftNode;
    for (const [i, c] of this.committed) {
      if (c.seenAtTerm >= core.term || i <= core.log.snapIndex) continue;
      const e = core.log.entry(i);
      if (!e || e.crc !== c.crc) this.fail(`leader completeness: leader ${n.id} of term ${core.term} lacks entry ${i} committed by term ${c.seenAtTerm}`);
    }
  }

  private checkLogMatching(a: SimNode, b: SimNode): void {
    const la = (a.core as RaftNode).log;
    const lb = (b.core as RaftNode).log;
    const lo = Math.max(la.firstIndex(), lb.firstIndex());
    let top = -1;
    for (let i = Math.min(la.lastIndex(), lb.lastIndex()); i >= lo; i--) {
      if (la.termAt(i) === lb.termAt(i)) {
        top = i;
        break;
      }
    }
    for (let i = lo; i <= top; i++) {
      const ea = la.entry(i) as Entry;
      const eb = lb.entry(i) as Entry;
      if (ea.term !== eb.term || ea.crc !== eb.crc) this.fail(`log matching: ${a.id} and ${b.id} agree at ${top} but differ at ${i}`);
    }
  }

  // ------------------------------------------------------------ driving

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.core?.role === 'leader' && (!best || n.core.term > (best.core as RaftNode).term)) best = n;
    }
    return best;
  }

  private advance(faulty: boolean): void {
    this.step++;
    this.now++;
    for (const n of this.nodes.values()) {
      if (n.core && (this.now + n.tickPhase) % TICK_EVERY === 0) {
        const tick = Math.floor((this.now + n.tickPhase) / TICK_EVERY);
        if (tick % HEARTBEAT_TICKS === 0) {
          for (const to of IDS) {
            if (to !== n.id && !this.blocked.has(`${n.id}>${to}`) && this.rnd() >= this.dropP) {
              this.net.push({ kind: 'ping', at: this.now + 1 + Math.floor(this.rnd() * this.maxDelay), from: n.id, to });
            }
          }
        }
        for (const [p, at] of n.heard) if (this.now - at >= ELECTION_TICKS * TICK_EVERY) n.core.leaderNodeDown(p);
        n.core.tick();
        this.process(n);
      }
    }
    const due = this.net.filter((f) => f.at <= this.now);
    this.net = this.net.filter((f) => f.at > this.now);
    for (const f of due) this.deliver(f);
    for (const n of this.nodes.values()) if (n.core && this.rnd() < 0.5) this.flush(n);
    if (faulty) {
      this.fault();
      this.client();
    }
    this.check();
  }

  private client(): void {
    const l = this.leader();
    if (!l?.core) return;
    if (this.rnd() < 0.3) {
      const k = ++this.proposals;
      l.core.propose([new TextEncoder().encode(`p${k}`)]);
      this.process(l);
    }
    // Follower read leases: followers ask for them, and read through them with no message: such a
    // read must cover everything committed anywhere when it begins.
    const f = this.pick([...this.nodes.values()]);
    if (f.core?.role === 'follower' && this.rnd() < 0.1) {
      f.core.requestLease();
      this.process(f);
    }
    const lease = this.rnd() < 0.2 ? f.core?.followerLease() : undefined;
    if (lease) {
      let floor = Math.max(0, ...[...this.committed.keys()]);
      for (const n of this.nodes.values()) if (n.core) floor = Math.max(floor, n.core.log.committed);
      if (lease.index < floor) this.fail(`lease read on ${f.id} (term ${f.core?.term}) at index ${lease.index} but ${floor} was already committed when it began`);
      this.stats.leaseReads++;
    }
    // Follower reads through a read index (Raft §8 on a follower), sent like the host sends them:
    // to the leader subject, which any replica that believes it leads may still hold (a stale
    // leader too), whatever the follower's own term.
    const leaders = [...this.nodes.values()].filter((n) => n.core?.role === 'leader');
    if (f.core?.role === 'follower' && leaders.length > 0 && this.rnd() < 0.1) {
      const to = this.pick(leaders).id;
      let floor = Math.max(0, ...[...this.committed.keys()]);
      for (const n of this.nodes.values()) if (n.core) floor = Math.max(floor, n.core.log.committed);
      if (to !== f.id && !this.blocked.has(`${f.id}>${to}`)) this.net.push({ kind: 'readReq', at: this.now + 1 + Math.floor(this.rnd() * this.maxDelay), from: f.id, to, id: ++this.readSeq, floor });
    }
    if (this.rnd() < 0.05) {
      const id = ++this.readSeq;
      const floor = Math.max(0, ...[...this.committed.keys()]);
      l.pendingReads.set(id, floor);
      l.core.readIndex(id, this.rnd() < 0.5);
      this.process(l);
    }
  }

  private fault(): void {
    const r = this.rnd();
    const all = [...this.nodes.values()];
    const some = (): SimNode => this.pick(all);
    const crashP = this.opts.crashP ?? 0.01;
    if (this.opts.leaderCrashP && this.rnd() < this.opts.leaderCrashP) {
      const l = this.leader();
      if (l && this.rnd() < 0.5) this.crash(l);
      else if (l) {
        // cut the leader off, then let the others elect
        this.blocked.clear();
        for (const y of IDS) if (y !== l.id) this.blocked.add(`${l.id}>${y}`).add(`${y}>${l.id}`);
      }
    }
    if (r < crashP) {
      this.crash(some());
    } else if (r < crashP + 0.02) {
      const n = some();
      if (!n.core) this.start(n);
    } else if (r < crashP + 0.025) {
      // symmetric partition: one node cut off
      const x = some().id;
      for (const y of IDS) if (y !== x) this.blocked.add(`${x}>${y}`).add(`${y}>${x}`);
    } else if (r < crashP + 0.03) {
      // asymmetric: one direction only
      this.blocked.add(`${some().id}>${some().id}`);
    } else if (r < crashP + 0.04) {
      this.blocked.clear();
    } else if (r < crashP + 0.05) {
      const n = some();
      const core = n.core;
      if (core && core.compactableIndex() > core.log.firstIndex() + 2) {
        const meta = core.compact(core.compactableIndex() - Math.floor(this.rnd() * 3));
        n.staged.push({ entries: [], compact: meta, messages: [], committed: [] });
      }
    } else if (r < crashP + 0.055) {
      this.confChange();
    } else if (r < crashP + 0.058) {
      const l = this.leader();
      if (l?.core) {
        const target = this.pick(l.core.conf.voters);
        l.core.transferLeadership(target);
        this.stats.transfers++;
        this.process(l);
      }
    }
  }

  private confChange(): void {
    const l = this.leader();
    const core = l?.core;
    if (!l || !core) return;
    const conf = core.conf;
    const outside = IDS.filter((n) => !conf.voters.includes(n) && !conf.learners.includes(n) && !this.everRemoved.has(n));
    const choice = this.rnd();
    let res;
    if (choice < 0.4 && outside.length > 0) res = core.proposeConfChange({ type: 'addLearner', node: this.pick(outside) });
    else if (choice < 0.75 && conf.learners.length > 0) res = core.proposeConfChange({ type: 'promote', node: this.pick(conf.learners) });
    else if (conf.voters.length > 1) {
      const node = this.pick([...conf.voters, ...conf.learners]);
      // A damaged replica does not vote until repaired: with fewer than three voters that is an
      // outage by design, which the liveness check would report. Keep three while one is damaged.
      const damaged = [...this.nodes.values()].some((n) => (n.core ? n.core.damaged : n.corrupt));
      if (damaged && conf.voters.includes(node) && conf.voters.length <= 3) return;
      res = core.proposeConfChange({ type: 'remove', node });
      if (res.ok) this.everRemoved.add(node);
    }
    if (res?.ok) this.stats.confChanges++;
    this.process(l);
  }

  /**
   * A damaged replica does not vote until a leader repairs it; when the configuration the most
   * advanced replica knows cannot make a quorum without damaged voters, no leader can be
   * elected. That outage is the designed behaviour (rather than serving a corrupt log).
   */
  private outageByDamage(): boolean {
    let best: RaftNode | undefined;
    for (const n of this.nodes.values()) if (n.core && (!best || n.core.log.committed > best.log.committed)) best = n.core;
    if (!best) return false;
    const voters = best.conf.voters;
    const healthy = voters.filter((v) => !this.nodes.get(v)?.core?.damaged).length;
    return healthy < Math.floor(voters.length / 2) + 1;
  }

  /** The faulty phase, then healing: returns the steps healing took. Throws {@link SimViolation}. */
  run(): number {
    const steps = this.opts.steps ?? 600;
    for (let i = 0; i < steps; i++) this.advance(true);
    // heal: everyone up, no partitions, no loss
    this.blocked.clear();
    this.dropP = 0;
    this.dupP = 0;
    this.maxDelay = Math.min(this.maxDelay, 2);
    for (const n of this.nodes.values()) if (!n.core) this.start(n);
    // Time to elect, plus time to ship the backlog a new leader may have to replicate before its
    // first entry commits (slow when the seed chose one entry per message).
    const cores = [...this.nodes.values()].map((n) => n.core as RaftNode);
    const backlog = Math.max(...cores.map((c) => c.log.lastIndex())) - Math.min(...cores.filter((c) => c.isVoter()).map((c) => c.log.committed));
    const bound = (this.opts.healBound ?? 400) + 4 * Math.max(0, backlog);
    let marker = -1;
    let committedAt = -1;
    for (let i = 0; i < bound + CATCH_UP_BOUND; i++) {
      this.advance(false);
      const l = this.leader();
      if (!l?.core || !l.core.isReadyLeader()) continue;
      if (marker < 0 || (committedAt < 0 && l.core.log.termAt(marker) !== l.core.term)) {
        const res = l.core.propose([new TextEncoder().encode('heal')]);
        if (res.ok) marker = res.index;
        this.process(l);
        continue;
      }
      if (committedAt < 0 && l.core.log.committed >= marker) committedAt = i;
      if (committedAt < 0 && i >= bound) break;
      const members = [...l.core.conf.voters, ...l.core.conf.learners];
      if (committedAt >= 0 && members.every((id) => (this.nodes.get(id)?.smApplied ?? 0) >= marker)) return committedAt;
    }
    const l = this.leader();
    const state = [...this.nodes.values()].map((n) => `${n.id}:${n.core?.role}/${n.core?.term}/c${n.core?.log.committed}/a${n.smApplied}${n.core?.damaged ? "/damaged" : ""}${n.core?.quiesced ? "/quiesced" : ""}${n.core?.isVoter() ? "/voter" : ""}${n.core ? `/lead=${n.core.lead}` : ""}`).join(' ');
    if (l?.core) this.t(`leader progress ${JSON.stringify(l.core.status().progress)}`);
    if (committedAt < 0 && this.outageByDamage()) {
      this.stats.damagedOutages++;
      return -1;
    }
    this.fail(committedAt < 0 ? `no leader committed a new entry within ${bound} steps after healing (leader ${l?.id ?? 'none'}; ${state})` : `members did not all apply the new entry within ${CATCH_UP_BOUND} steps after it committed (${state})`);
  }
}
