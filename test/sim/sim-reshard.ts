/**
 * A model of a reshard's cutover (docs/resharding.md), driven by the real pieces: the
 * coordinator's driver (`runReshard`), each shard's decisions (`ShardOwnership`, `applyReshard`)
 * and the source's answers to pulls (`answerPull`). Around them, in this file: shards as atomic
 * state machines (Raft's own safety is the other simulation's job), routers that cache the map
 * and refresh it when a shard refuses their epoch, clients that write (several keys at once, each
 * with a requestId, retried on timeouts and across the switch), read and scan, a network that
 * delays and loses replies, a coordinator deposed at random (its requests in flight still land)
 * and taken over, and target leaders (importers) that die and come back.
 *
 * Checks, as it runs:
 * - a write applied to a key finds there the key's last applied value: no shard takes writes for
 *   a key while another holds a newer value of it (two owners), and no switch loses a write;
 * - no (requestId, key) is applied twice;
 * - a read, and each shard's part of a scan, returns exactly the last applied values of the keys
 *   the shard owns at the epoch it serves (stale reads, lost points and a point seen twice all fail it);
 * - an import carries only keys that move to its target.
 * After healing (no more crashes): the reshard is done, the bucket has the new map, every shard
 * of it holds exactly its keys' last applied values, and every write a client saw acknowledged
 * is there unless a later write of its key replaced it.
 */
import type { ShardingConfig } from '../../src/api/types.js';
import { runReshard, ReshardStopped, type ReshardPorts, type ReshardRecord, type ReshardShardStatus } from '../../src/actors/coordinator/reshard-driver.js';
import { initialMap, movePairs, ownerOfFor, reshardedMap, sharderOf, type ShardMap } from '../../src/cluster/shard-map.js';
import { afterImport, answerPull, importApplies, PullRefused, type ImportCommand, type JournalEntry } from '../../src/shard/reshard-import.js';
import { applyReshard, initialReshardState, newShardState, ShardOwnership, type ReshardCommand, type ReshardState } from '../../src/shard/reshard-state.js';
import { createLogger } from '../../src/runtime/logger.js';
import { idsToApply } from '../../src/shard/dedup-rule.js';
import { rng } from '../helpers/shard-workload.js';

export class ReshardViolation extends Error {}

export interface ReshardSimOptions {
  seed: number;
  /** Deliberately broken cutovers, each of which the checks must catch. */
  bugs?: {
    /** Targets switch without waiting for their imports to reach the sources' fences. */
    switchBeforeCaughtUp?: boolean;
    /** Sources ignore their fence: writes of moving keys are still applied after it. */
    ignoreFence?: boolean;
    /** A known requestId counts as applied for every key of a retry (not only the keys it wrote). */
    dedupByIdOnly?: boolean;
    /** The copy's cursor is set at its newest page's index, not its oldest: writes between the pages are not replayed. */
    copyCursorAtNewestPage?: boolean;
    /** An entry an import wrote counts as the shard's own application at its epoch: a part that arrives after it is skipped. */
    importedCountsAsOwn?: boolean;
  };
}

type Value = string;
const KEYS = 48;
const STRATEGIES: ShardingConfig[] = [{ strategy: 'consistent-hash', vnodes: 8 }, { strategy: 'hash' }, { strategy: 'range', boundaries: [] }, { strategy: 'custom', vnodes: 8 }];

class Refused extends Error {
  constructor(
    readonly code: 'STALE_MAP' | 'MOVING' | 'WRONG_SHARD' | 'NO_GROUP' | 'TIMEOUT' | 'DEPOSED' | 'REFUSED',
    readonly epoch?: number,
  ) {
    super(code);
  }
}

/** One shard's replicated state machine, applied atomically. */
class Group {
  points = new Map<string, Value>();
  /** requestId -> the keys its writes applied here (or imported), the epoch of the last own application, and whether only imports wrote it (dedup-rule.ts). */
  dedup = new Map<string, { keys: Set<string>; epoch: number; imported: boolean }>();
  journal: JournalEntry<Value>[] = [];
  applied = 0;
  dropped = false;
  epochSeen = 0;
  own: ShardOwnership;

  constructor(
    readonly id: string,
    readonly shard: number,
    readonly sharding: ShardingConfig,
    public state: ReshardState,
  ) {
    this.own = new ShardOwnership(ownerOfFor(sharding), shard, state);
  }

  setState(s: ReshardState): void {
    this.state = s;
    this.own = new ShardOwnership(ownerOfFor(this.sharding), this.shard, s);
  }

  status(): ReshardShardStatus {
    return { state: this.state, appliedIndex: this.applied };
  }
}

export class ReshardSim {
  readonly stats = { writes: 0, acked: 0, retriesAfterSwitch: 0, refusedMoving: 0, refusedStale: 0, reads: 0, scans: 0, imports: 0, coordinatorCrashes: 0, importerCrashes: 0, lostReplies: 0, unknownWrites: 0 };
  private readonly rand: () => number;
  private time = 0;
  private readonly queue: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;
  private readonly groups = new Map<string, Group>();
  private readonly sharding: ShardingConfig;
  private readonly from: ShardMap;
  private readonly to: ShardMap;
  private bucket: { map: ShardMap; revision: number; reshard: ReshardRecord; coordinatorEpoch: number };
  /** The last applied value of each key (undefined: never written; null: deleted). */
  private readonly truth = new Map<string, Value | null>();
  private readonly appliedOnce = new Set<string>();
  /** Per key, acknowledged values in the order the (single) client acked them. */
  private readonly acked = new Map<string, Value>();
  private readonly pendingUnknown = new Map<string, Set<Value>>();
  private healing = false;
  private coordinatorEpoch = 0;
  private readonly log = createLogger({}, 'silent');
  readonly description: string;

  constructor(private readonly opts: ReshardSimOptions) {
    this.rand = rng(opts.seed * 7919 + 17);
    const strategy = STRATEGIES[Math.floor(this.rand() * STRATEGIES.length)] as ShardingConfig;
    const n0 = 1 + Math.floor(this.rand() * 4);
    let n1 = 1 + Math.floor(this.rand() * 5);
    if (n1 === n0) n1 = n0 + 1;
    const bounds = (n: number) => Array.from({ length: n - 1 }, (_, i) => `k${String(Math.floor(((i + 1) * KEYS) / n) + (this.rand() < 0.5 ? 1 : 0)).padStart(2, '0')}`);
    this.sharding = strategy.strategy === 'range' ? { strategy: 'range', boundaries: bounds(n0) } : strategy;
    this.from = initialMap('u', this.sharding, n0);
    this.to = reshardedMap('u', this.sharding, this.from, n1, strategy.strategy === 'range' ? bounds(n1) : undefined);
    this.description = `${strategy.strategy} ${n0} -> ${n1}`;
    for (let s = 0; s < n0; s++) this.groups.set(this.from.groups[s] as string, new Group(this.from.groups[s] as string, s, this.sharding, initialReshardState(this.from)));
    this.bucket = {
      map: this.from,
      revision: 1,
      coordinatorEpoch: 0,
      reshard: { collection: 'c', uid: 'u', sharding: this.sharding, from: this.from, to: this.to, phase: 'prepare', epoch: 0, startedAt: 't0', fences: {} },
    };
  }

  /** The first violation: kept here too, since it may be thrown inside a process nobody awaits. */
  private violation: ReshardViolation | undefined;

  private fail(msg: string): never {
    this.violation ??= new ReshardViolation(`seed ${this.opts.seed} (${this.description}) at t=${this.time}: ${msg}`);
    throw this.violation;
  }

  // ------------------------------------------------------------ scheduling

  private at(delay: number, fn: () => void): void {
    this.queue.push({ at: this.time + delay, seq: this.seq++, fn });
  }

  private sleep = (ms: number): Promise<void> => new Promise((r) => this.at(Math.max(1, ms), r));

  /** Runs `fn` on group `id` after a network delay; its reply comes back after another, or is lost (TIMEOUT after `timeout`). */
  private send<R>(id: string, fn: (g: Group) => R, timeout = 60): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void) => {
        if (!settled) {
          settled = true;
          f();
        }
      };
      this.at(timeout, () => settle(() => reject(new Refused('TIMEOUT'))));
      // now and then a request is slow on its way (a paused process, a congested link), as long as a timeout
      const slow = !this.healing && this.rand() < 0.05;
      this.at(slow ? 20 + Math.floor(this.rand() * 40) : 1 + Math.floor(this.rand() * 8), () => {
        const g = this.groups.get(id);
        if (!g || g.dropped) {
          this.at(1, () => settle(() => reject(new Refused('NO_GROUP'))));
          return;
        }
        let out: { ok: true; value: R } | { ok: false; err: unknown };
        try {
          out = { ok: true, value: fn(g) };
        } catch (err) {
          out = { ok: false, err };
        }
        if (!this.healing && this.rand() < 0.03) {
          this.stats.lostReplies++;
          return;
        }
        this.at(1 + Math.floor(this.rand() * 8), () => settle(() => (out.ok ? resolve(out.value) : reject(out.err))));
      });
    });
  }

  // ------------------------------------------------------------ the shard's state machine

  private applyWrite(g: Group, epoch: number, requestId: string, ops: { key: string; value: Value | null }[]): number {
    const keys = ops.map((o) => o.key);
    const adm = g.own.admitWrite(epoch, keys);
    let journal: string[];
    if (!adm.ok) {
      if (adm.code === 'MOVING' && this.opts.bugs?.ignoreFence) journal = adm.keys;
      else {
        g.applied++;
        if (adm.code === 'WRONG_SHARD') this.fail(`shard ${g.shard} was sent keys it does not own at epoch ${epoch}: ${adm.keys.join(', ')}`);
        throw new Refused(adm.code, adm.code === 'STALE_MAP' ? adm.epoch : undefined);
      }
    } else journal = adm.journal;
    g.applied++;
    const seen = g.dedup.get(requestId);
    const facts = seen && { keys: [...seen.keys], epoch: seen.epoch, imported: this.opts.bugs?.importedCountsAsOwn ? false : seen.imported };
    const decision = idsToApply(facts, epoch, ops.map((o) => o.key));
    const todo = 'all' in decision ? ops : 'none' in decision || this.opts.bugs?.dedupByIdOnly ? [] : ops.filter((o) => decision.only.has(o.key));
    for (const o of todo) {
      const once = `${requestId}/${o.key}`;
      if (this.appliedOnce.has(once)) this.fail(`${requestId} applied twice to ${o.key} (on shard ${g.shard})`);
      this.appliedOnce.add(once);
      const before = g.points.get(o.key) ?? null;
      const last = this.truth.get(o.key) ?? null;
      if (before !== last) this.fail(`shard ${g.shard} applied a write of ${o.key} over ${before}, but its last applied value is ${last} (two owners, or a write lost at the switch)`);
      if (o.value === null) g.points.delete(o.key);
      else g.points.set(o.key, o.value);
      this.truth.set(o.key, o.value);
    }
    if (!('none' in decision)) {
      const keys = seen?.keys ?? new Set<string>();
      for (const o of todo) keys.add(o.key);
      g.dedup.set(requestId, { keys, epoch, imported: false });
    }
    const moved = todo.filter((o) => journal.includes(o.key));
    if (moved.length > 0) g.journal.push({ index: g.applied, ops: moved, requestId });
    return ops.length;
  }

  private applyCommand(g: Group, cmd: ReshardCommand, epoch: number): ReshardShardStatus {
    if (epoch < g.epochSeen) throw new Refused('DEPOSED');
    g.epochSeen = epoch;
    g.applied++;
    const r = applyReshard(g.state, cmd, g.applied);
    if ('state' in r) {
      g.setState(r.state);
      if (cmd.type === 'reshard-end') {
        // cleanup: what moved away, and the journal, are deleted
        for (const k of [...g.points.keys()]) if (!g.own.owns(k, g.state.active.epoch)) g.points.delete(k);
        g.journal = [];
      }
    }
    return g.status();
  }

  /** Per group and source, the newest index of a page applied (for the bug copyCursorAtNewestPage). */
  private readonly newestPage = new Map<string, number>();

  private applyImport(g: Group, cmd: ImportCommand<Value>): void {
    g.applied++;
    if (!importApplies(g.own, cmd).ok) return;
    if (cmd.type === 'import-page') this.newestPage.set(`${g.id}/${cmd.source}`, Math.max(cmd.index, this.newestPage.get(`${g.id}/${cmd.source}`) ?? 0));
    if (cmd.type !== 'import-copied') {
      const ok = g.own.importable(cmd.ops.map((o) => o.key));
      if (!ok.ok) this.fail(`shard ${g.shard} was sent an import of keys it does not own at the next epoch: ${ok.keys.join(', ')}`);
      for (const o of cmd.ops) {
        if (o.value === null) g.points.delete(o.key);
        else g.points.set(o.key, o.value);
      }
      for (const r of cmd.requestIds) {
        const e = g.dedup.get(r.id) ?? { keys: new Set<string>(), epoch: g.state.active.epoch, imported: true };
        for (const k of r.keys) e.keys.add(k);
        g.dedup.set(r.id, e);
      }
    }
    g.setState(afterImport(g.state, cmd));
    if (cmd.type === 'import-copied' && this.opts.bugs?.copyCursorAtNewestPage) {
      g.setState({ ...g.state, cursors: { ...g.state.cursors, [cmd.source]: this.newestPage.get(`${g.id}/${cmd.source}`) as number } });
    }
    this.stats.imports++;
  }

  /** A read or a scan's part: the shard answers only at the epoch it serves, with what it owns then. */
  private serve(g: Group, epoch: number, keys: string[] | 'all'): Map<string, Value> {
    const adm = g.own.admitRead(epoch);
    if (!adm.ok) throw new Refused('STALE_MAP', adm.epoch);
    const out = new Map<string, Value>();
    for (const [k, v] of g.points) if (g.own.visible(k) && (keys === 'all' || keys.includes(k))) out.set(k, v);
    // What it returns is exactly the truth of the keys it owns at this epoch.
    const sharder = sharderOf(this.sharding, epoch === this.to.epoch ? this.to : this.from);
    for (let i = 0; i < KEYS; i++) {
      const k = key(i);
      if (sharder.shardOf(k) !== g.shard || (keys !== 'all' && !keys.includes(k))) continue;
      const t = this.truth.get(k) ?? null;
      if ((out.get(k) ?? null) !== t) this.fail(`shard ${g.shard} at epoch ${epoch} returned ${out.get(k) ?? null} for ${k}, whose last applied value is ${t} (a stale or lost point)`);
    }
    return out;
  }

  // ------------------------------------------------------------ routers

  /** A router's map: refreshed from the bucket when a shard says a newer one is in force. */
  private routerMap(r: { map: ShardMap }, refusal: Refused): Promise<void> | undefined {
    // a newer map in force, or a shard that is gone (dropped by a reshard this router missed)
    if ((refusal.code === 'STALE_MAP' && (refusal.epoch ?? 0) > r.map.epoch) || refusal.code === 'NO_GROUP') {
      return this.sleep(1 + Math.floor(this.rand() * 10)).then(() => {
        r.map = this.bucket.map;
      });
    }
    return undefined;
  }

  /** Sends one write (all its keys) through a router until every part is applied or `deadline` passes. */
  private async routeWrite(r: { map: ShardMap }, requestId: string, ops: { key: string; value: Value | null }[], deadline: number): Promise<void> {
    let left = ops;
    while (left.length > 0) {
      if (this.time >= deadline) throw new Refused('TIMEOUT');
      const map = r.map;
      const sharder = sharderOf(this.sharding, map);
      const parts = new Map<number, typeof ops>();
      for (const o of left) {
        const s = sharder.shardOf(o.key);
        parts.set(s, [...(parts.get(s) ?? []), o]);
      }
      const done: typeof ops = [];
      let refresh: Promise<void> | undefined;
      await Promise.all(
        [...parts].map(async ([s, part]) => {
          try {
            await this.send(map.groups[s] as string, (g) => this.applyWrite(g, map.epoch, requestId, part));
            done.push(...part);
          } catch (err) {
            if (!(err instanceof Refused)) throw err;
            if (err.code === 'MOVING') this.stats.refusedMoving++;
            if (err.code === 'STALE_MAP') this.stats.refusedStale++;
            refresh ??= this.routerMap(r, err);
          }
        }),
      );
      left = left.filter((o) => !done.includes(o));
      if (left.length > 0) await (refresh ?? this.sleep(2 + Math.floor(this.rand() * 6)));
    }
  }

  private async routeRead(r: { map: ShardMap }, keys: string[] | 'all', deadline: number): Promise<Map<string, Value>> {
    for (;;) {
      if (this.time >= deadline) throw new Refused('TIMEOUT');
      const map = r.map;
      const sharder = sharderOf(this.sharding, map);
      const shards = keys === 'all' ? Array.from({ length: map.shards }, (_, s) => s) : [...new Set(keys.map((k) => sharder.shardOf(k)))];
      try {
        // every shard of one map, or the whole read again on the new map (answers of two maps never mix)
        const parts = await Promise.all(shards.map((s) => this.send(map.groups[s] as string, (g) => this.serve(g, map.epoch, keys === 'all' ? 'all' : keys.filter((k) => sharder.shardOf(k) === s)))));
        const out = new Map<string, Value>();
        for (const p of parts) {
          for (const [k, v] of p) {
            if (out.has(k)) this.fail(`a scan at epoch ${map.epoch} returned ${k} twice`);
            out.set(k, v);
          }
        }
        return out;
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        await (this.routerMap(r, err) ?? this.sleep(2 + Math.floor(this.rand() * 6)));
      }
    }
  }

  // ------------------------------------------------------------ clients

  private async client(c: number, until: number): Promise<void> {
    const router = { map: this.bucket.map };
    const mine = Array.from({ length: KEYS }, (_, i) => i).filter((i) => i % 4 === c).map(key);
    let seq = 0;
    /** A write whose outcome is unknown, retried later with the same requestId. */
    let retry: { requestId: string; ops: { key: string; value: Value | null }[] } | undefined;
    while (this.time < until) {
      const x = this.rand();
      if (x < 0.6 || retry) {
        const w = retry ?? {
          requestId: `c${c}-${seq}`,
          ops: [...new Set(Array.from({ length: 1 + Math.floor(this.rand() * 3) }, () => mine[Math.floor(this.rand() * mine.length)] as string))].map((k) => ({ key: k, value: this.rand() < 0.1 ? null : `c${c}-${seq}-${k}` })),
        };
        if (!retry) seq++;
        else this.stats.retriesAfterSwitch += this.bucket.map.epoch > 0 ? 1 : 0;
        this.stats.writes++;
        try {
          await this.routeWrite(router, w.requestId, w.ops, this.time + 150);
          this.stats.acked++;
          for (const o of w.ops) {
            this.acked.set(o.key, o.value ?? 'null');
            this.pendingUnknown.delete(o.key);
          }
          retry = undefined;
        } catch (err) {
          if (!(err instanceof Refused)) throw err;
          this.stats.unknownWrites++;
          for (const o of w.ops) this.pendingUnknown.set(o.key, (this.pendingUnknown.get(o.key) ?? new Set()).add(o.value ?? 'null'));
          retry = this.rand() < 0.8 ? w : undefined;
        }
      } else if (x < 0.85) {
        this.stats.reads++;
        await this.routeRead(router, [mine[Math.floor(this.rand() * mine.length)] as string], this.time + 300).catch((err) => {
          if (!(err instanceof Refused)) throw err;
        });
      } else {
        this.stats.scans++;
        await this.routeRead(router, 'all', this.time + 300).catch((err) => {
          if (!(err instanceof Refused)) throw err;
        });
      }
      await this.sleep(1 + Math.floor(this.rand() * 5));
    }
    // Settle: a write left unknown is retried until it lands, so the end state is known.
    if (retry) await this.routeWrite(router, retry.requestId, retry.ops, Infinity).then(() => {
      for (const o of retry!.ops) {
        this.acked.set(o.key, o.value ?? 'null');
        this.pendingUnknown.delete(o.key);
      }
    });
  }

  // ------------------------------------------------------------ coordinator and importers

  private ports(epoch: () => number): ReshardPorts {
    const bugs = this.opts.bugs ?? {};
    return {
      sleep: this.sleep,
      epoch,
      status: (group) => this.send(group, (g) => g.status()),
      command: (group, cmd, e) => {
        const sent = cmd.type === 'reshard-switch' && bugs.switchBeforeCaughtUp ? { ...cmd, need: {} } : cmd;
        return this.send(group, (g) => this.applyCommand(g, sent, e));
      },
      createGroups: async (rec, ids) => {
        await this.sleep(2);
        for (const id of ids) {
          if (this.groups.has(id)) continue;
          const g = new Group(id, rec.to.groups.indexOf(id), this.sharding, newShardState(rec.from, rec.to));
          this.groups.set(id, g);
          this.importer(g);
        }
      },
      save: async (rec) => {
        await this.sleep(1);
        if (epoch() < this.bucket.coordinatorEpoch) throw new Refused('DEPOSED');
        this.bucket.reshard = structuredClone(rec);
        this.bucket.revision++;
      },
      activate: async (rec) => {
        await this.sleep(1);
        if (epoch() < this.bucket.coordinatorEpoch) throw new Refused('DEPOSED');
        this.bucket.map = rec.to;
        this.bucket.revision++;
      },
      dropGroups: async (_rec, ids) => {
        await this.sleep(2);
        for (const id of ids) {
          const g = this.groups.get(id);
          if (g) g.dropped = true;
        }
      },
      log: this.log,
    };
  }

  /** A coordinator that holds `epoch` until deposed, running the reshard from the bucket's record. */
  private async coordinator(): Promise<void> {
    const mine = ++this.coordinatorEpoch;
    this.bucket.coordinatorEpoch = mine;
    let deposed = false;
    if (!this.healing && this.rand() < 0.7) {
      this.at(20 + Math.floor(this.rand() * 400), () => {
        if (this.healing) return;
        deposed = true;
        this.stats.coordinatorCrashes++;
        this.at(10 + Math.floor(this.rand() * 40), () => void this.coordinator());
      });
    }
    // a holder whose lease was taken over stops by itself
    const epoch = () => (deposed || mine < this.bucket.coordinatorEpoch ? 0 : mine);
    const rec = structuredClone(this.bucket.reshard);
    // every group of the old map: the importers of groups that exist from the start
    try {
      await runReshard(rec, this.ports(epoch));
    } catch (err) {
      if (err instanceof ReshardStopped || err instanceof Refused) return;
      throw err;
    }
  }

  /** The importer on a target's leader: pulls from each source after its cursor and proposes imports; dies at random and comes back. */
  private importer(g: Group): void {
    const run = async (): Promise<void> => {
      let alive = true;
      if (!this.healing && this.rand() < 0.3) {
        this.at(10 + Math.floor(this.rand() * 300), () => {
          if (this.healing) return;
          alive = false;
          this.stats.importerCrashes++;
          this.at(5 + Math.floor(this.rand() * 30), () => void run());
        });
      }
      while (alive && !g.dropped) {
        const st = g.state;
        if (st.next !== null && !st.switched) {
          const next = st.next;
          for (const { source } of movePairs(this.sharding, st.active, next).filter((p) => p.target === g.shard)) {
            if (!alive) return;
            const cursor = g.state.cursors[source] ?? 0;
            try {
              const pull = (after: string | undefined) =>
                this.send(st.active.groups[source] as string, (src) =>
                  answerPull(src.own, { appliedIndex: src.applied, points: (a) => [...src.points].filter(([k]) => a === undefined || k > a).sort(([x], [y]) => (x < y ? -1 : 1)), journalAfter: (a) => src.journal.filter((e) => e.index > a), requestIds: () => [...src.dedup].map(([id, e]) => [id, [...e.keys]] as [string, string[]]) }, { target: g.shard, epoch: next.epoch, cursor, after, maxOps: 4 }),
                );
              if (cursor === 0) {
                // the copy, page by page; then the cursor is set to the lowest page's index
                let after: string | undefined;
                for (;;) {
                  const page = await pull(after);
                  if (!alive || page.type !== 'import-page') return;
                  await this.send(g.id, (tg) => this.applyImport(tg, { ...page }));
                  if (page.next === null) break;
                  after = page.next;
                }
                await this.send(g.id, (tg) => this.applyImport(tg, { type: 'import-copied', source, epoch: next.epoch }));
              } else {
                const batch = await pull(undefined);
                if (!alive) return;
                await this.send(g.id, (tg) => this.applyImport(tg, batch));
              }
            } catch (err) {
              if (err instanceof ReshardViolation) return;
              if (!(err instanceof Refused) && !(err instanceof PullRefused)) throw err;
            }
          }
        }
        await this.sleep(3 + Math.floor(this.rand() * 10));
      }
    };
    void run().catch((err) => (this.violation ??= new ReshardViolation(`seed ${this.opts.seed}: importer failed: ${(err as Error).stack}`)));
  }

  // ------------------------------------------------------------ the run

  /** Runs until healed; returns the step at which everything settled. */
  async run(): Promise<number> {
    const until = 1_500;
    for (const g of this.groups.values()) this.importer(g);
    let failure: unknown;
    const onError = (err: unknown) => (failure ??= err);
    const clients = Array.from({ length: 4 }, (_, c) => this.client(c, until).catch(onError));
    this.at(5 + Math.floor(this.rand() * 100), () => void this.coordinator().catch(onError));
    this.at(until, () => {
      this.healing = true;
      // a coordinator that was deposed for good is replaced
      this.at(50, () => void this.coordinator().catch(onError));
    });
    let doneClients = false;
    void Promise.all(clients).then(() => (doneClients = true));
    const limit = until + 20_000;
    while (this.queue.length > 0 && this.time < limit) {
      if (failure || this.violation) throw this.violation ?? failure;
      if (doneClients && this.bucket.reshard.phase === 'done' && this.time > until) break;
      this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const e = this.queue.shift() as (typeof this.queue)[number];
      this.time = Math.max(this.time, e.at);
      e.fn();
      await new Promise((r) => setImmediate(r));
    }
    if (failure || this.violation) throw this.violation ?? failure;
    if (this.bucket.reshard.phase !== 'done') this.fail(`after healing the reshard is at ${this.bucket.reshard.phase}, not done`);
    if (!doneClients) this.fail('after healing some client still waits');
    this.checkEnd();
    return this.time;
  }

  private checkEnd(): void {
    if (this.bucket.map.epoch !== this.to.epoch) this.fail(`after healing the bucket's map is epoch ${this.bucket.map.epoch}`);
    const sharder = sharderOf(this.sharding, this.to);
    for (let s = 0; s < this.to.shards; s++) {
      const g = this.groups.get(this.to.groups[s] as string) as Group;
      if (g.state.active.epoch !== this.to.epoch || g.state.next !== null) this.fail(`shard ${s} did not end the reshard: ${JSON.stringify(g.state)}`);
      for (const k of g.points.keys()) if (sharder.shardOf(k) !== s) this.fail(`shard ${s} still holds ${k}, which moved away`);
    }
    for (const id of this.from.groups) if (!this.to.groups.includes(id) && !this.groups.get(id)?.dropped) this.fail(`group ${id}, which the new map dropped, is still there`);
    for (let i = 0; i < KEYS; i++) {
      const k = key(i);
      const g = this.groups.get(this.to.groups[sharder.shardOf(k)] as string) as Group;
      const have = g.points.get(k) ?? null;
      if (have !== (this.truth.get(k) ?? null)) this.fail(`${k} holds ${have}, its last applied value is ${this.truth.get(k) ?? null}`);
      const a = this.acked.get(k);
      if (a !== undefined && (have ?? 'null') !== a && !this.pendingUnknown.get(k)?.has(have ?? 'null')) this.fail(`${k}: the acknowledged ${a} is lost (it holds ${have})`);
    }
  }
}

function key(i: number): string {
  return `k${String(i).padStart(2, '0')}`;
}
