/**
 * A deterministic simulation of one Raft group on N nodes, each running the real host
 * (src/replication: its turn pipeline, group replicas, reads, snapshots and compaction) over the
 * in-memory transport, a disk that makes writes durable only when flushed, and a clock in steps.
 * The seeded network drops, duplicates, delays and reorders frames and makes symmetric and
 * asymmetric partitions; crashes lose every transaction the disk had not written (and sometimes
 * corrupt a stored entry); restarts; compaction and snapshots streamed in chunks (paced by a
 * snapshot rate limit on half the seeds); membership changes, leadership transfers, writes and
 * reads during the faults. In most seeds (60%) the membership changes are moves of a replica
 * carried out by the real move executor under a coordinator that crashes between phases
 * (sim-moves.ts, with its own checks); in the others, random changes. After every step it checks
 * election safety, log matching, leader completeness, state machine safety, monotonic commit,
 * that a damaged replica never grants a vote, that every write is answered with its own entry's
 * result, and that confirmed reads (on the leader, through follower read indexes and through
 * follower leases) are linearizable. After the faults heal it checks that a leader is elected and
 * a new entry commits and is applied everywhere within a bound (and that the move under way
 * finishes).
 */
import { seededRandom, type TestingBugs } from '../../src/raft/config.js';
import { decodeConf, sameConf } from '../../src/raft/entry.js';
import { bootstrapInit, emptyInit, type RaftNodeView } from '../../src/raft/raft-node.js';
import type { ConfState, Entry, Message, NodeId } from '../../src/raft/types.js';
import { MemoryRaftNetwork, type FrameKind } from '../../src/replication/memory-raft-transport.js';
import { RaftHost } from '../../src/replication/raft-host.js';
import type { HostTestingBugs } from '../../src/replication/raft-turns.js';
import type { Logger } from '../../src/runtime/logger.js';
import { GROUP, SimMoves, type MoveBugs, type MoveWorld } from './sim-moves.js';
import { corruptEntry, SimClock, SimDisk, SimStateMachine, SimStore } from './sim-world.js';

export interface SimOptions {
  seed: number;
  bugs?: TestingBugs & HostTestingBugs;
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
  /** Membership through moves run by the real move executor under a crashing coordinator (sim-moves.ts), rather than random changes (default: by seed). */
  moves?: boolean;
  /** Deliberate mistakes of the coordinator's ports, for the tests of the move checks. */
  moveBugs?: MoveBugs;
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

interface SimNode {
  id: NodeId;
  disk: SimDisk;
  host: RaftHost | null;
  sm: SimStateMachine | null;
  lastCommit: number;
  /** Its stored log was corrupted and it has not started since. */
  corrupt: boolean;
}

const IDS = ['a', 'b', 'c', 'd', 'e'].map((s) => s as NodeId);
/** Steps per tick of a host. */
const TICK_MS = 4;
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
/** Steps after the healing commit for every member to apply it (catching up may be slow with tiny messages). */
const CATCH_UP_BOUND = 3000;
/** A client's deadline, in steps. */
const REQUEST_MS = 200;
const enc = new TextEncoder();
const noop = (): void => undefined;
const SILENT: Logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => SILENT };

/** Lets every promise callback that is ready run (the hosts' flush chains, applies, reads). */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class SimCluster {
  readonly seed: number;
  private readonly rnd: () => number;
  private readonly bugs: TestingBugs & HostTestingBugs;
  private readonly clock = new SimClock();
  private readonly net: MemoryRaftNetwork;
  private nodes = new Map<NodeId, SimNode>();
  private deferred: (() => void)[] = [];
  private blocked = new Set<string>();
  private step = 0;
  private leaders = new Map<number, NodeId>();
  private committed = new Map<number, { crc: number; term: number; seenAtTerm: number }>();
  private applied = new Map<number, number>();
  private proposals = 0;
  private everRemoved = new Set<NodeId>();
  /** Nodes crashed for good: no restart until the faults heal. */
  private readonly keptDown = new Set<NodeId>();
  private dropP = 0;
  private dupP = 0;
  private maxDelay = 3;
  private corruptP = 0;
  private readonly hostOptions: { quiesceAfterTicks: number; compactKeep: number; compactEvery: number; snapshotChunkBytes: number; readPipeline: boolean; publishAnswers: boolean };
  private readonly flow: { maxSizePerMsg: number; maxInflightMsgs: number };
  /**
   * Bytes per second (per step: / 1000) of snapshot chunks each node receives; 0 unlimited. From
   * the seed, not the generator, so that the other choices of every seed stay as they were. At
   * 20,000 the waits of 512- and 4096-byte chunks hit their cap (half the stall timeout).
   */
  private readonly snapshotRate: number;
  /** A check failed inside a callback (a host's promise, a listener): thrown at the end of the step. */
  private violation: SimViolation | undefined;
  /** The coordinator and the replica managers' moves, in seeds that make membership changes by moves. */
  private readonly moves: SimMoves | null = null;
  /** The coordinator's own random stream (so that a seed without moves runs exactly as it did before they existed). */
  private readonly mrnd: () => number;
  /** The configuration in force at the highest index committed anywhere so far. */
  private latestConf: { index: number; conf: ConfState };
  /** Counters a test may look at. */
  readonly stats = {
    commits: 0, elections: 0, snapshots: 0, confChanges: 0, crashes: 0, reads: 0, leaseReads: 0, followerReads: 0, askedReads: 0, corruptions: 0, transfers: 0, damagedOutages: 0, writes: 0,
    movesPlanned: 0, movesDone: 0, movesStopped: 0, coordinatorCrashes: 0, retargets: 0, replicasDeleted: 0, joins: 0, joinsAfterAdded: 0,
  };

  constructor(private readonly opts: SimOptions) {
    this.seed = opts.seed;
    this.rnd = seededRandom(opts.seed * 7919 + 17);
    this.bugs = opts.bugs ?? {};
    this.net = new MemoryRaftNetwork(this.clock, {
      fate: (from, to, kind) => this.fate(from, to, kind),
      observe: (from, _to, msgs) => this.observe(from, msgs),
    });
    this.mrnd = seededRandom(opts.seed * 104_729 + 3);
    const withMoves = opts.moves ?? this.mrnd() < 0.6;
    let voters = opts.voters ?? this.pick([3, 3, 3, 1, 5]);
    // Moves need a node outside the group to move to.
    if (withMoves && opts.voters === undefined) voters = [1, 2, 3, 3, 4][Math.floor(this.mrnd() * 5)] as number;
    const conf: ConfState = { voters: IDS.slice(0, voters), learners: [] };
    this.snapshotRate = [0, 20_000, 0, 200_000][opts.seed % 4] as number;
    this.latestConf = { index: 0, conf };
    this.flow = { maxSizePerMsg: opts.maxSizePerMsg ?? this.pick([1, 256, 4096]), maxInflightMsgs: this.pick([4, 64]) };
    this.hostOptions = {
      quiesceAfterTicks: this.rnd() < 0.5 ? 0 : 6,
      compactKeep: this.pick([0, 2, 10]),
      compactEvery: this.pick([1, 4, 20]),
      snapshotChunkBytes: this.pick([64, 512, 4096]),
      // Read pipelining and published answers (read-pipeline.ts) on most seeds, off on some; from the
      // seed rather than the random stream, so that the other draws stay as they were.
      readPipeline: opts.seed % 3 !== 0,
      publishAnswers: opts.seed % 5 !== 0,
    };
    for (const id of IDS) {
      const init = conf.voters.includes(id) ? bootstrapInit(conf) : emptyInit();
      // With moves, a node outside the group has no replica until a move names it.
      const stored = conf.voters.includes(id) || !withMoves ? { hardState: init.hardState, snapshot: init.snapshot, entries: [...init.entries] } : undefined;
      const n: SimNode = { id, disk: new SimDisk(stored), host: null, sm: null, lastCommit: 0, corrupt: false };
      this.nodes.set(id, n);
      // Nodes start a few steps apart, so their ticks are out of phase.
      this.clock.setTimer(() => this.start(n), Math.floor(this.rnd() * TICK_MS));
    }
    this.dropP = this.opts.dropP ?? this.pick([0, 0.02, 0.1, 0.25]);
    this.dupP = this.pick([0, 0.02, 0.1]);
    this.maxDelay = this.pick([1, 3, 8, 20]);
    this.corruptP = this.pick([0, 0, 0.3]);
    if (withMoves) this.moves = new SimMoves(this.moveWorld(), this.mrnd, conf.voters, this.stats, opts.moveBugs);
  }

  /** What the coordinator and the replica managers see and do (sim-moves.ts). */
  private moveWorld(): MoveWorld {
    return {
      ids: IDS,
      now: () => this.clock.now(),
      setTimer: (fn, steps) => this.clock.setTimer(fn, steps),
      fate: () => (this.mrnd() < this.dropP ? null : 1 + Math.floor(this.mrnd() * this.maxDelay)),
      host: (id) => this.nodes.get(id)?.host ?? undefined,
      replica: (id) => {
        const n = this.nodes.get(id);
        return n && this.core(n) ? (n.host as RaftHost) : undefined;
      },
      leaders: () => IDS.filter((id) => this.core(this.nodes.get(id) as SimNode)?.isReadyLeader()),
      committedConf: () => this.committedConf(),
      openJoiner: (id) => this.openGroup(this.nodes.get(id) as SimNode, true),
      deleteReplica: (id) => this.deleteReplica(this.nodes.get(id) as SimNode),
      crash: (id, forGood) => {
        this.crash(this.nodes.get(id) as SimNode);
        if (forGood) this.keptDown.add(id);
      },
      fail: (m) => this.softFail(m),
      log: this.opts.trace ? this.traceLogger('coordinator') : SILENT,
    };
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)] as T;
  }

  private fail(msg: string): never {
    const v = new SimViolation(this.seed, this.step, msg);
    this.violation ??= v;
    throw v;
  }

  /** Records a failed check from inside a callback, where a throw would only reject a promise. */
  private softFail(msg: string): void {
    this.violation ??= new SimViolation(this.seed, this.step, msg);
  }

  private t(line: string): void {
    this.opts.trace?.(`${this.step} ${line}`);
  }

  private traceLogger(node: string): Logger {
    const line = (level: string) => (msg: string, f?: Record<string, unknown>): void => this.t(`${node} ${level} ${msg} ${JSON.stringify(f ?? {})}`);
    return { debug: noop, info: line('info'), warn: line('warn'), error: line('error'), child: () => this.traceLogger(node) };
  }

  // ------------------------------------------------------------ node lifecycle

  private start(n: SimNode): void {
    if (n.host) return;
    const d = n.disk.durable;
    this.t(`start ${n.id} hs=${JSON.stringify(d.raft?.hardState)} snap=${d.raft?.snapshot.index} entries=${d.raft?.entries.length} sm=${d.smApplied}`);
    const incarnation = n.disk.incarnation;
    const transport = this.net.attach(n.id, { requestTimeoutMs: 2 * ELECTION_TICKS * TICK_MS });
    const host = RaftHost.open({
      nodeId: n.id,
      clock: this.clock,
      log: this.opts.trace ? this.traceLogger(n.id) : SILENT,
      store: new SimStore(n.disk, incarnation),
      transport,
      defer: (fn) => this.deferred.push(fn),
      options: { tickMs: TICK_MS, electionTicks: ELECTION_TICKS, heartbeatTicks: HEARTBEAT_TICKS, snapshotStallMs: 10 * TICK_MS, seed: this.seed * 31 + incarnation * 1009 + n.id.charCodeAt(0), ...this.hostOptions },
      flow: this.flow,
      bugs: this.bugs,
      onFatal: (err) => this.softFail(`${n.id} stopped: ${err.message}`),
    });
    host.setSnapshotRate(this.snapshotRate);
    n.host = host;
    n.sm = null;
    n.corrupt = false;
    // A replica opens from its stored state; with moves, a node without one opens it empty (to
    // join) only if the placement or a move names it, as the replica manager does.
    if (n.disk.durable.raft || !this.moves) this.openGroup(n, false);
    else this.moves.reconcile(n.id);
  }

  /** Opens the node's replica of the group: from its stored state, or empty to join (`join`). */
  private openGroup(n: SimNode, join: boolean): void {
    const host = n.host;
    if (!host || n.sm) return;
    if (join && (n.disk.durable.raft || n.disk.durable.smApplied > 0)) this.fail(`${n.id} opens a joining replica over stored state`);
    const sm = new SimStateMachine(n.id, n.disk, n.disk.incarnation, {
      applied: (node, index, fp) => this.checkApplied(node, index, fp),
      fail: (m) => this.fail(m),
      snapshotTaken: () => {
        this.stats.snapshots++;
        this.t(`${n.id} snapshot image taken at ${sm.appliedIndex}`);
      },
    }, this.pick([50, 500, 100_000]));
    n.sm = sm;
    const opened = (): void => {
      if (n.host !== host || n.sm !== sm) return;
      host.onRoleChange(GROUP, (ev) => {
        this.t(`${n.id} role ${JSON.stringify(ev)}`);
        if (ev.role !== 'leader') return;
        this.stats.elections++;
        this.checkNewLeader(n);
        this.checkCompleteness(n);
      });
      n.lastCommit = host.inspect(GROUP).log.committed;
    };
    if (!join) {
      void host.createGroup(GROUP, { voters: [n.id], stateMachine: sm }).catch((err: unknown) => this.softFail(`createGroup on ${n.id}: ${String(err)}`));
      opened();
      return;
    }
    this.t(`${n.id} opens an empty replica to join`);
    this.stats.joins++;
    // The replica manager learns of the move after a delay: the learner may be in the configuration already.
    if (this.committedConf().learners.includes(n.id)) this.stats.joinsAfterAdded++;
    const voters = this.latestConf.conf.voters;
    host.createGroup(GROUP, { voters: [...voters], join: true, stateMachine: sm }).then(opened, (err: unknown) => {
      if (n.host === host) this.softFail(`createGroup (join) on ${n.id}: ${String(err)}`);
    });
  }

  /** Deletes the node's replica and its state machine's data, as the replica manager's collection does. */
  private async deleteReplica(n: SimNode): Promise<void> {
    const host = n.host;
    const sm = n.sm;
    if (!host || !sm || !this.core(n)) return;
    this.t(`${n.id} deletes its replica`);
    // Both deletions in one transaction: a crash keeps both or neither.
    sm.drop();
    const removed = host.removeGroup(GROUP);
    n.sm = null;
    n.lastCommit = 0;
    await removed;
  }

  private crash(n: SimNode): void {
    const host = n.host;
    if (!host) return;
    this.t(`crash ${n.id}`);
    this.stats.crashes++;
    // At most one replica damaged at a time, in groups of three or more voters: a majority of
    // damaged replicas can never be repaired (by design they will not vote), which is an outage
    // the checkers would report, not a safety bug.
    const others = [...this.nodes.values()].filter((o) => o !== n && (o.host ? this.core(o)?.damaged : o.corrupt));
    const voters = this.leader()?.host?.inspect(GROUP).conf.voters.length ?? 0;
    // Detached first: a crashed process answers nothing, not even the requests it was holding.
    this.net.detach(n.id);
    host.crash();
    // The disk wrote some prefix of the transactions it was given; the rest are lost, and so are
    // the messages and applies waiting behind them.
    n.disk.crash(Math.floor(this.rnd() * (n.disk.queued() + 1)));
    n.host = null;
    n.sm = null;
    const entries = n.disk.durable.raft?.entries ?? [];
    if (this.rnd() < this.corruptP && entries.length > 0 && others.length === 0 && voters >= 3) {
      n.corrupt = true;
      corruptEntry(n.disk, Math.floor(this.rnd() * entries.length));
      this.stats.corruptions++;
    }
  }

  // ------------------------------------------------------------ network

  private fate(from: string, to: string, kind: FrameKind): number[] {
    const lost = this.blocked.has(`${from}>${to}`) || this.rnd() < this.dropP;
    if (this.opts.trace && kind !== 'request' && kind !== 'reply') this.t(`frame ${kind} ${from}>${to}${lost ? ' lost' : ''}`);
    if (lost) return [];
    const delay = (): number => 1 + Math.floor(this.rnd() * this.maxDelay);
    // Snapshot chunks are not duplicated: NATS does not duplicate a request, and a copy of a chunk is a different stream position.
    return kind !== 'chunk' && kind !== 'chunkReply' && this.rnd() < this.dupP ? [delay(), delay()] : [delay()];
  }

  /** Every batch a host sends: a damaged replica must never grant a vote. */
  private observe(from: string, msgs: readonly [string, Message][]): void {
    const n = this.nodes.get(from as NodeId);
    const core = n && this.core(n);
    if (!n || !core) return;
    if (this.opts.trace) for (const [, m] of msgs) this.t(`send ${m.from}>${m.to} ${m.type} t${m.term}${m.type === 'app' ? ` prev=${m.prevIndex}/${m.prevTerm} n=${m.entries.length} c=${m.commit}` : m.type === 'appResp' ? ` i=${m.index} rej=${m.reject} hint=${m.hintIndex}` : m.type === 'snap' ? ` s=${m.snapshot.index}` : ''}`);
    for (const [, m] of msgs) {
      if (core.damaged && (m.type === 'voteResp' || m.type === 'preVoteResp') && !m.reject) this.softFail(`damaged ${n.id} granted a ${m.type}`);
    }
  }

  // ------------------------------------------------------------ checks

  private core(n: SimNode): RaftNodeView | undefined {
    return n.host && n.host.groupIds().includes(GROUP) ? n.host.inspect(GROUP) : undefined;
  }

  private checkApplied(node: string, index: number, fp: number): void {
    const prev = this.applied.get(index);
    if (prev === undefined) this.applied.set(index, fp);
    else if (prev !== fp) this.fail(`state machine safety: ${node} applied a different entry at ${index}`);
  }

  private checkNewLeader(n: SimNode): void {
    const core = this.core(n);
    if (!core) return;
    const prev = this.leaders.get(core.term);
    if (prev !== undefined && prev !== n.id) this.softFail(`election safety: ${prev} and ${n.id} both lead term ${core.term}`);
    this.leaders.set(core.term, n.id);
  }

  /** Leader completeness (§5.4): a new leader has every entry committed before its term. */
  private checkCompleteness(n: SimNode): void {
    const core = this.core(n);
    if (!core) return;
    for (const [i, c] of this.committed) {
      if (c.seenAtTerm >= core.term || i <= core.log.snapIndex) continue;
      const e = core.log.entry(i);
      if (!e || e.crc !== c.crc) this.softFail(`leader completeness: leader ${n.id} of term ${core.term} lacks entry ${i} committed by term ${c.seenAtTerm}`);
    }
  }

  private check(): void {
    const live = [...this.nodes.values()].filter((n) => this.core(n));
    for (const n of live) {
      const core = this.core(n) as RaftNodeView;
      if (core.role === 'leader') this.checkNewLeader(n);
      if (core.log.committed < n.lastCommit) this.fail(`monotonic commit: ${n.id} went from ${n.lastCommit} to ${core.log.committed}`);
      for (let i = Math.max(core.log.firstIndex(), n.lastCommit + 1, 1); i <= core.log.committed; i++) {
        const e = core.log.entry(i) as Entry;
        const c = this.committed.get(i);
        if (!c) {
          this.committed.set(i, { crc: e.crc, term: e.term, seenAtTerm: core.term });
          this.stats.commits++;
          if (e.type === 'config') this.noteConf(i, decodeConf(e.data));
        } else if (c.crc !== e.crc) this.fail(`state machine safety: ${n.id} committed a different entry at ${i}`);
      }
      n.lastCommit = core.log.committed;
    }
    this.committedConf();
    // Log matching (§5.3): same index and term ⇒ identical prefix.
    for (let x = 0; x < live.length; x++) {
      for (let y = x + 1; y < live.length; y++) this.checkLogMatching(live[x] as SimNode, live[y] as SimNode);
    }
  }

  private checkLogMatching(a: SimNode, b: SimNode): void {
    const la = (this.core(a) as RaftNodeView).log;
    const lb = (this.core(b) as RaftNodeView).log;
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

  /**
   * The configuration in force at the highest index committed anywhere so far: from the commit
   * indexes of the live replicas now, and from every `config` entry seen committed (its replica
   * may have crashed since).
   */
  private committedConf(): ConfState {
    for (const n of this.nodes.values()) {
      const core = this.core(n);
      if (core) this.noteConf(core.log.committed, core.conf);
    }
    return this.latestConf.conf;
  }

  private noteConf(index: number, conf: ConfState): void {
    if (index <= this.latestConf.index) return;
    const changed = !sameConf(conf, this.latestConf.conf);
    this.latestConf = { index, conf: { voters: [...conf.voters], learners: [...conf.learners] } };
    if (changed) {
      this.t(`committed configuration at ${index}: voters ${conf.voters.join(',')} learners ${conf.learners.join(',')}`);
      this.moves?.confCommitted(conf);
    }
  }

  /** The highest index committed anywhere, so far: a read that begins now must see at least it. */
  private readFloor(): number {
    let floor = 0;
    for (const i of this.committed.keys()) floor = Math.max(floor, i);
    for (const n of this.nodes.values()) {
      const core = this.core(n);
      if (core) floor = Math.max(floor, core.log.committed);
    }
    return floor;
  }

  // ------------------------------------------------------------ driving

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      const core = this.core(n);
      if (core?.role === 'leader' && core.term > bestTerm) {
        best = n;
        bestTerm = core.term;
      }
    }
    return best;
  }

  /** Runs the hosts' deferred turns and every promise callback, until nothing is left to run. */
  private async settle(): Promise<void> {
    for (let rounds = 0; ; rounds++) {
      if (rounds > 10_000) this.fail('the hosts never settled (a turn keeps scheduling another)');
      while (this.deferred.length > 0) {
        const fns = this.deferred;
        this.deferred = [];
        for (const fn of fns) fn();
      }
      await drainMicrotasks();
      if (this.deferred.length === 0) return;
    }
  }

  private async advance(faulty: boolean): Promise<void> {
    this.step++;
    // Ticks, arriving frames, request timeouts, client deadlines.
    this.clock.fireDue(this.step);
    await this.settle();
    for (const n of this.nodes.values()) if (n.host && this.rnd() < 0.5) n.disk.flush();
    await this.settle();
    if (faulty) {
      this.fault();
      this.client();
    }
    this.moves?.step(faulty);
    if (faulty || this.moves) await this.settle();
    if (this.violation) throw this.violation;
    this.check();
  }

  private client(): void {
    const l = this.leader();
    const lcore = l && this.core(l);
    if (!l?.host || !lcore) return;
    if (this.rnd() < 0.3) {
      const k = ++this.proposals;
      const text = `p${k}`;
      const concern = this.pick(['majority', 'majority', 'majority', 'leader', 'all'] as const);
      l.host.propose(GROUP, enc.encode(text), { concern, timeoutMs: REQUEST_MS }).then(
        ({ result }) => {
          // A write is answered with its own entry's result, never another's.
          if (concern !== 'leader' && result !== text) this.softFail(`write ${text} (${concern}) was answered with ${JSON.stringify(result)}`);
          this.stats.writes++;
        },
        noop,
      );
    }
    const f = this.pick([...this.nodes.values()]);
    const fcore = this.core(f);
    // Follower read leases: a read through the lease, with no message, must cover everything
    // committed anywhere when it begins.
    if (f.host && fcore?.role === 'follower' && this.rnd() < 0.2) {
      const floor = this.readFloor();
      const term = fcore.term;
      f.host.leaseRead(GROUP, REQUEST_MS)?.then((index) => {
        if (index < floor) this.softFail(`lease read on ${f.id} (term ${term}) at index ${index} but ${floor} was already committed when it began`);
        this.stats.leaseReads++;
      }, noop);
    }
    // Follower reads through a read index (Raft §8 on a follower), sent like the router sends
    // them: to the leader subject, which any replica that believes it leads may still hold (a
    // stale leader too), whatever the follower's own term.
    const leaders = [...this.nodes.values()].filter((n) => this.core(n)?.role === 'leader');
    if (f.host && fcore?.role === 'follower' && leaders.length > 0 && this.rnd() < 0.1) {
      const to = this.pick(leaders);
      const floor = this.readFloor();
      if (to !== f && !this.blocked.has(`${f.id}>${to.id}`)) this.followerRead(f, to, floor);
    }
    // Follower reads through a read index asked over the Raft transport (the core's readReq and
    // readResp): one to three reads at once, which share one request.
    if (f.host && fcore?.role === 'follower' && this.rnd() < 0.1) {
      const n = 1 + Math.floor(this.rnd() * 3);
      for (let i = 0; i < n; i++) this.askedRead(f, this.rnd() < 0.5 ? 'leased' : 'strong');
    }
    if (this.rnd() < 0.05) {
      const floor = this.readFloor();
      const mode = this.rnd() < 0.5 ? 'leased' : 'strong';
      if (this.rnd() < 0.5) {
        l.host.readIndex(GROUP, { mode, timeoutMs: REQUEST_MS }).then(({ index }) => {
          if (index < floor) this.softFail(`read on ${l.id} confirmed at index ${index} but ${floor} was already committed when it began`);
          this.stats.reads++;
        }, noop);
      } else {
        const sm = l.sm as SimStateMachine;
        l.host.readBarrier(GROUP, { mode, timeoutMs: REQUEST_MS }).then(() => {
          if (sm.appliedIndex < floor) this.softFail(`read barrier on ${l.id} passed at applied ${sm.appliedIndex} but ${floor} was already committed when it began`);
          this.stats.reads++;
        }, noop);
      }
    }
  }

  /** A follower's read through a read index its host asks the leader for over the Raft transport; served once applied there. */
  private askedRead(f: SimNode, mode: 'strong' | 'leased'): void {
    const host = f.host as RaftHost;
    const floor = this.readFloor();
    host.followerReadIndex(GROUP, { mode, timeoutMs: REQUEST_MS }).then(({ index, term }) => {
      if (index < floor) this.softFail(`follower read (${mode}, asked over raft) on ${f.id} (term ${term}) at index ${index} but ${floor} was already committed when it began`);
      this.stats.askedReads++;
      const sm = f.sm as SimStateMachine;
      host.waitApplied(GROUP, index, REQUEST_MS).then(() => {
        if (sm.appliedIndex < floor) this.softFail(`follower read (${mode}, asked over raft) on ${f.id} served at applied ${sm.appliedIndex} but ${floor} was already committed when it began`);
      }, noop);
    }, noop);
  }

  /** A follower asks `leader` for a read index, and serves the read once it applied it, if still in the term the index was taken in. */
  private followerRead(f: SimNode, leader: SimNode, floor: number): void {
    const delay = (): number => 1 + Math.floor(this.rnd() * this.maxDelay);
    const mode = this.rnd() < 0.5 ? 'leased' : 'strong';
    const host = f.host as RaftHost;
    this.clock.setTimer(() => {
      if (!leader.host || this.blocked.has(`${f.id}>${leader.id}`)) return;
      leader.host.readIndex(GROUP, { mode, timeoutMs: REQUEST_MS, forPeer: f.id }).then(({ index, term }) => {
        if (this.blocked.has(`${leader.id}>${f.id}`)) return;
        this.clock.setTimer(() => {
          if (f.host !== host || !this.core(f) || host.termOf(GROUP) !== term) return;
          if (index < floor) this.softFail(`follower read on ${f.id} (term ${term}) at index ${index} but ${floor} was already committed when it asked`);
          this.stats.followerReads++;
          host.waitApplied(GROUP, index, REQUEST_MS).catch(noop);
        }, delay());
      }, noop);
    }, delay());
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
      if (!n.host && !this.keptDown.has(n.id)) this.start(n);
    } else if (r < crashP + 0.025) {
      // symmetric partition: one node cut off
      const x = some().id;
      for (const y of IDS) if (y !== x) this.blocked.add(`${x}>${y}`).add(`${y}>${x}`);
    } else if (r < crashP + 0.03) {
      // asymmetric: one direction only
      this.blocked.add(`${some().id}>${some().id}`);
    } else if (r < crashP + 0.04) {
      this.blocked.clear();
    } else if (r < crashP + 0.045) {
      // With moves, the coordinator alone changes the membership.
      if (!this.moves) this.confChange();
    } else if (r < crashP + 0.048) {
      const l = this.leader();
      const core = l && this.core(l);
      if (l?.host && core) {
        l.host.transferLeadership(GROUP, this.pick(core.conf.voters)).catch(noop);
        this.stats.transfers++;
      }
    }
  }

  private confChange(): void {
    const l = this.leader();
    const core = l && this.core(l);
    if (!l?.host || !core) return;
    const conf = core.conf;
    const outside = IDS.filter((n) => !conf.voters.includes(n) && !conf.learners.includes(n) && !this.everRemoved.has(n));
    const choice = this.rnd();
    let change: { addLearner?: string; promote?: string; remove?: string } | undefined;
    if (choice < 0.4 && outside.length > 0) change = { addLearner: this.pick(outside) };
    else if (choice < 0.75 && conf.learners.length > 0) change = { promote: this.pick(conf.learners) };
    else if (conf.voters.length > 1) {
      const node = this.pick([...conf.voters, ...conf.learners]);
      // A damaged replica does not vote until repaired: with fewer than three voters that is an
      // outage by design, which the liveness check would report. Keep three while one is damaged.
      const damaged = [...this.nodes.values()].some((n) => (n.host ? this.core(n)?.damaged : n.corrupt));
      if (damaged && conf.voters.includes(node) && conf.voters.length <= 3) return;
      change = { remove: node };
    }
    if (!change) return;
    // A removed node never comes back (as in the real cluster, which gives a returning node a new replica).
    if (change.remove !== undefined) this.everRemoved.add(change.remove as NodeId);
    this.stats.confChanges++;
    l.host.changeMembership(GROUP, change).catch(noop);
  }

  /**
   * A damaged replica does not vote until a leader repairs it; when the configuration the most
   * advanced replica knows cannot make a quorum without damaged voters, no leader can be
   * elected. That outage is the designed behaviour (rather than serving a corrupt log).
   */
  private outageByDamage(): boolean {
    let best: RaftNodeView | undefined;
    for (const n of this.nodes.values()) {
      const core = this.core(n);
      if (core && (!best || core.log.committed > best.log.committed)) best = core;
    }
    if (!best) return false;
    const voters = best.conf.voters;
    const healthy = voters.filter((v) => {
      const n = this.nodes.get(v);
      return n && !(n.host ? this.core(n)?.damaged : n.corrupt);
    }).length;
    return healthy < Math.floor(voters.length / 2) + 1;
  }

  /** The faulty phase, then healing: resolves with the steps healing took. Rejects with {@link SimViolation}. */
  async run(): Promise<number> {
    const steps = this.opts.steps ?? 600;
    for (let i = 0; i < steps; i++) await this.advance(true);
    // heal: everyone up, no partitions, no loss
    this.blocked.clear();
    this.dropP = 0;
    this.dupP = 0;
    this.maxDelay = Math.min(this.maxDelay, 2);
    this.keptDown.clear();
    for (const n of this.nodes.values()) if (!n.host) this.start(n);
    this.moves?.heal();
    await this.settle();
    // Time to elect, plus time to ship the backlog a new leader may have to replicate before its
    // first entry commits (slow when the seed chose one entry per message).
    const cores = [...this.nodes.values()].map((n) => this.core(n)).filter((c): c is RaftNodeView => c !== undefined);
    const backlog = Math.max(...cores.map((c) => c.log.lastIndex())) - Math.min(...cores.filter((c) => c.isVoter()).map((c) => c.log.committed));
    const bound = (this.opts.healBound ?? 400) + 4 * Math.max(0, backlog);
    let marker = -1;
    let committedAt = -1;
    let appliedEverywhere = false;
    for (let i = 0; i < bound + CATCH_UP_BOUND; i++) {
      await this.advance(false);
      const l = this.leader();
      const core = l && this.core(l);
      if (!l?.host || !core || !core.isReadyLeader()) continue;
      if (marker < 0 || (committedAt < 0 && core.log.termAt(marker) !== core.term)) {
        const host = l.host;
        // The marker is proposed with a deadline that outlives healing; its index is known at once.
        const p = host.propose(GROUP, enc.encode('heal'), { concern: 'leader', timeoutMs: 100_000 });
        p.catch(noop);
        marker = core.log.lastIndex();
        continue;
      }
      if (committedAt < 0 && core.log.committed >= marker) committedAt = i;
      if (committedAt < 0 && i >= bound) break;
      const members = [...core.conf.voters, ...core.conf.learners];
      appliedEverywhere = committedAt >= 0 && members.every((id) => (this.nodes.get(id)?.sm?.appliedIndex ?? 0) >= marker);
      // With moves, healing also ends the move under way (the coordinator comes back if it was down).
      if (appliedEverywhere && !this.moves?.busy()) {
        this.moves?.checkSettled(this.committedConf());
        if (this.violation) throw this.violation;
        return committedAt;
      }
    }
    const l = this.leader();
    const state = [...this.nodes.values()]
      .map((n) => {
        const c = this.core(n);
        return `${n.id}:${c?.role}/${c?.term}/c${c?.log.committed}/a${n.sm?.appliedIndex}${c?.damaged ? '/damaged' : ''}${c?.quiesced ? '/quiesced' : ''}${c?.isVoter() ? '/voter' : ''}${c ? `/lead=${c.lead}` : ''}`;
      })
      .join(' ');
    const lcore = l && this.core(l);
    if (lcore) this.t(`leader progress ${JSON.stringify(lcore.status().progress)}`);
    if (committedAt < 0 && this.outageByDamage()) {
      this.stats.damagedOutages++;
      return -1;
    }
    if (appliedEverywhere && this.moves) this.fail(`the move under way did not finish within ${bound + CATCH_UP_BOUND} steps after healing (${this.moves.describe()}; ${state})`);
    this.fail(committedAt < 0 ? `no leader committed a new entry within ${bound} steps after healing (leader ${l?.id ?? 'none'}; ${state})` : `members did not all apply the new entry within ${CATCH_UP_BOUND} steps after it committed (${state})`);
  }
}
