/**
 * A replica's answers to shard requests (shard-protocol.ts, ShardRequest): one handler per
 * request type, run by the replica actor (replica-actor.ts) off its mailbox turn, with the read
 * barrier, epoch and health checks the reads pass first, and the reshard importer that the
 * reshard requests (and a replica that begins to lead, replica-actor.ts) start.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../runtime/clock.js';
import { describeError, InternalError, InvalidArgumentError, MovingError, NotLeaderError, StaleMapError, TimeoutError, UnavailableError } from '../../runtime/errors.js';
import { runImporter } from './importer.js';
import { backupShard, restoreShard } from './backup-requests.js';
import { encodeCommand, type LoggedCommand } from '../../shard/mod.js';
import { PullRefused, type PullAnswer } from '../../shard/reshard-import.js';
import { writeKey } from './writes-in-flight.js';
import type { ReplicaConfig, ReplicaState, ShardStore } from './replica-actor.js';
import { leaderSubject, type OutboxHead, type ReadIndexResult, type ReshardStatus, type ShardRequest, type ShardStatus, type WriteResult } from '../shard-protocol.js';

/** Margin kept from a request's deadline for the answer's trip back. */
const ANSWER_MARGIN_MS = 5;

/**
 * A follower further behind the leader's read index than this many entries does not wait to
 * catch up: it answers UNAVAILABLE at once, and the router asks the leader instead. A healthy
 * follower is a few turns' worth of entries behind; a thousand is seconds of writes.
 */
export const FOLLOWER_READ_MAX_LAG = 1_000;

/**
 * A follower waits at most this long to apply up to the leader's read index; then it answers
 * UNAVAILABLE and the router asks the leader (a follower that applies slowly, its index worker
 * busy restoring a snapshot, does not hold reads).
 */
export const FOLLOWER_READ_MAX_WAIT_MS = 1_000;

/** Answers one shard request: the actor replies with what this resolves to, or the error it rejects with. */
export async function handle(cfg: ReplicaConfig, state: ReplicaState, req: ShardRequest, clock: Clock): Promise<unknown> {
  const { store, group } = state.res;
  switch (req.type) {
    case 'status':
      return { ...group.status(), node: cfg.node, count: store.count(), followerReads: { ...state.leaderReads.stats } } satisfies ShardStatus;
    case 'write': {
      // The wall clock, not the system's: `at` goes into the log, where dedup expiry compares it
      // with the readings of other leaders, on other nodes and after restarts.
      const at = Date.now();
      const mapEpoch = req.mapEpoch ?? 0;
      const command: LoggedCommand =
        req.write.op === 'upsert'
          ? { type: 'upsert', points: req.write.points, requestId: req.requestId, at, mapEpoch }
          : { type: 'delete', ids: req.write.ids, requestId: req.requestId, at, mapEpoch };
      state.log.debug('write', { collection: cfg.collection, shard: cfg.shard, op: req.write.op, count: req.write.op === 'upsert' ? req.write.points.length : req.write.ids.length });
      // a copy of a write still in flight here waits for it rather than logging it twice
      return state.writes.run(writeKey(req.requestId, req.concern, req.write.op, mapEpoch), async () => {
        const { result } = await group.propose(encodeCommand(command), { concern: req.concern, timeoutMs: Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS) });
        return writeResult(cfg, req, result);
      });
    }
    case 'search': {
      refuseUnhealthy(cfg, state);
      const queries = req.queries.map((q) => ({ ...q, filter: q.filter === undefined ? undefined : state.res.parseFilter(q.filter) }));
      await barrier(cfg, state, req.consistency, req.timeoutMs, clock);
      checkEpoch(cfg, store, req.mapEpoch);
      if (!queries.some((q) => q.explain === true) || !store.searchExplained) return { results: await Promise.all(queries.map(({ explain: _, ...q }) => store.search(q))) };
      const explained = store.searchExplained.bind(store);
      const answers = await Promise.all(queries.map(async ({ explain, ...q }) => (explain === true ? explained(q) : { hits: await store.search(q), explain: null })));
      return { results: answers.map((a) => a.hits), explain: answers.map((a) => a.explain) };
    }
    case 'get':
      refuseUnhealthy(cfg, state);
      await barrier(cfg, state, req.consistency, req.timeoutMs, clock);
      checkEpoch(cfg, store, req.mapEpoch);
      return { points: await store.get(req.ids, { withVector: req.withVector, withMetadata: req.withMetadata }) };
    case 'count':
      refuseUnhealthy(cfg, state);
      await barrier(cfg, state, req.consistency, req.timeoutMs, clock);
      checkEpoch(cfg, store, req.mapEpoch);
      return { count: store.count() };
    case 'backup':
      return backupShard(cfg, store, state.role.role === 'leader' && state.role.ready, req.object);
    case 'restore':
      if (!(state.role.role === 'leader' && state.role.ready)) throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
      return restoreShard(cfg, group, req.object, Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS));
    case 'outbox': {
      if (!(state.role.role === 'leader' && state.role.ready)) throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
      // every write this shard acknowledged is applied here, so in the outbox unless published
      await group.readBarrier({ mode: 'strong', timeoutMs: Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS) });
      if (!store.outboxHead) throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard} on ${cfg.node} cannot read its change-stream outbox`);
      const head = store.outboxHead();
      return { node: cfg.node, waiting: head.count, oldest: head.oldest && { index: head.oldest.index, time: new Date(head.oldest.time).toISOString() } } satisfies OutboxHead;
    }
    case 'reshardStatus':
      // The coordinator asks the leader this every quarter second while a reshard copies: an
      // importer that should run here and does not (whatever stopped it) starts again.
      if (state.role.role === 'leader' && state.role.ready) startImporter(cfg, state);
      return reshardStatus(cfg, state);
    case 'reshard': {
      const known = cfg.coordinatorEpoch();
      if (req.epoch < known) throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard}: a reshard step from coordinator epoch ${req.epoch} refused; epoch ${known} is current`);
      if (state.role.role !== 'leader') throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
      const { result } = await group.propose(encodeCommand({ type: 'reshard', step: req.step, at: Date.now() }), { concern: 'majority', timeoutMs: Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS) });
      const r = result as { unchanged?: string } | undefined;
      // a leader that begins to lead a shard a reshard fills starts its importer
      startImporter(cfg, state);
      return { ...reshardStatus(cfg, state), ...(r?.unchanged ? { unchanged: r.unchanged } : {}) } satisfies ReshardStatus;
    }
    case 'pull':
      try {
        return store.pull(req.pull);
      } catch (err) {
        if (err instanceof PullRefused || err instanceof InvalidArgumentError) throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard} on ${cfg.node}: ${err.message}`);
        throw err;
      }
    case 'conf':
      return changeMembership(cfg, state, req);
    case 'transfer': {
      if (state.role.role !== 'leader') throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
      const st = group.status();
      if (req.to !== undefined && !st.voters.includes(req.to)) {
        throw new InvalidArgumentError(`to: ${req.to} is not a voter of shard ${cfg.collection}/${cfg.shard} (voters: ${st.voters.join(', ')})`);
      }
      if (req.to !== cfg.node) await group.transferLeadership(req.to);
      return { term: group.term() };
    }
    case 'repairNoop': {
      if (state.role.role !== 'leader') throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
      // an upsert of nothing: applied as a no-op by every version of the state machine
      await group.propose(encodeCommand({ type: 'upsert', points: [], at: Date.now() }), { concern: 'leader', timeoutMs: Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS) });
      return { ok: true };
    }
    case 'readIndex': {
      // The Raft host refuses (NOT_LEADER, naming the leader) unless this replica leads now.
      const { index, term } = await group.readIndex({ mode: req.mode, timeoutMs: Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS), forPeer: req.from });
      return { index, term } satisfies ReadIndexResult;
    }
  }
}

/** A replica being rebuilt, or whose data is damaged, answers no read: the router asks another replica. */
function refuseUnhealthy(cfg: ReplicaConfig, state: ReplicaState): void {
  const { health, why } = state.res.group.health();
  if (health === 'ok') return;
  throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard} on ${cfg.node} serves no reads: its replica is ${health}${why ? ` (${why})` : ''}`);
}

/**
 * One membership change on the leader, refused to a deposed coordinator, and idempotent: a change
 * the committed configuration already shows is answered at once (a coordinator that took over
 * repeats the phase it found unfinished).
 */
async function changeMembership(cfg: ReplicaConfig, state: ReplicaState, req: Extract<ShardRequest, { type: 'conf' }>): Promise<{ voters: string[]; learners: string[] }> {
  const known = cfg.coordinatorEpoch();
  if (req.epoch < known) throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard}: a membership change from coordinator epoch ${req.epoch} refused; epoch ${known} is current`);
  if (state.role.role !== 'leader') throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
  const { group } = state.res;
  const done = (): boolean => {
    const st = group.status();
    const c = req.change;
    if ('addLearner' in c) return st.learners.includes(c.addLearner) || st.voters.includes(c.addLearner);
    if ('promote' in c) return st.voters.includes(c.promote);
    return !st.voters.includes(c.remove) && !st.learners.includes(c.remove);
  };
  if (!done()) await group.changeMembership(req.change);
  const st = group.status();
  return { voters: st.voters, learners: st.learners };
}

/**
 * Before a read: nothing for `eventual`; for `strong` and `leased`, the leader's read barrier
 * here, or on a follower the leader's confirmed read index, applied here.
 */
async function barrier(cfg: ReplicaConfig, state: ReplicaState, consistency: 'strong' | 'leased' | 'eventual', timeoutMs: number, clock: Clock): Promise<void> {
  if (consistency === 'eventual') return;
  const t = Math.max(1, timeoutMs - ANSWER_MARGIN_MS);
  const { group, store } = state.res;
  if (state.role.role === 'leader') {
    await group.readBarrier({ mode: consistency, timeoutMs: t });
    return;
  }
  if (consistency === 'leased') {
    const leased = group.leaseRead(t);
    if (leased) {
      state.leaderReads.stats.leased++;
      await leased;
      return;
    }
  }
  const deadline = clock.now() + t;
  const index = await state.leaderReads.get(consistency, t);
  const lag = index - store.appliedIndex;
  if (lag > FOLLOWER_READ_MAX_LAG) {
    throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard}: the replica on ${cfg.node} is ${lag} entries behind the leader; ask the leader`);
  }
  const left = Math.max(1, deadline - clock.now());
  if (left <= FOLLOWER_READ_MAX_WAIT_MS) {
    await group.waitApplied(index, left);
    return;
  }
  try {
    await group.waitApplied(index, FOLLOWER_READ_MAX_WAIT_MS);
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard}: the replica on ${cfg.node} did not apply up to the leader's read index ${index} within ${FOLLOWER_READ_MAX_WAIT_MS} ms (it is at ${store.appliedIndex}); ask the leader`);
  }
}

function reshardStatus(cfg: ReplicaConfig, state: ReplicaState): ReshardStatus {
  const { store } = state.res;
  return {
    state: store.reshard,
    appliedIndex: store.appliedIndex,
    servingEpoch: store.servingEpoch,
    node: cfg.node,
    count: store.count(),
    ...(state.imported ? { imported: state.imported } : {}),
  };
}

/** Adds one import to the replica's tally (a new tally for a newer reshard). */
function countImport(state: ReplicaState, source: number, epoch: number, bytes: number, points: number): void {
  if (state.imported === null || state.imported.epoch !== epoch) state.imported = { epoch, run: randomBytes(4).toString('hex'), bySource: {} };
  const t = (state.imported.bySource[source] ??= { bytes: 0, points: 0 });
  t.bytes += bytes;
  t.points += points;
}

/** A read made with a map this shard does not serve (after its barrier: what it has applied covers every switch the router can know of). */
function checkEpoch(cfg: ReplicaConfig, store: ShardStore, mapEpoch: number | undefined): void {
  const asked = mapEpoch ?? 0;
  const serving = store.servingEpoch;
  if (serving !== asked) throw new StaleMapError(`shard ${cfg.collection}/${cfg.shard} serves map epoch ${serving ?? 'none (a reshard dropped it)'}, not ${asked}`);
}

/** Starts the reshard importer on a leader whose shard a reshard fills, unless it runs. */
export function startImporter(cfg: ReplicaConfig, state: ReplicaState): void {
  const { store, group } = state.res;
  const st = store.reshard;
  if (state.importing || state.stopped || !cfg.sharding || st === null || st.next === null || st.switched) return;
  state.importing = true;
  const leading = () => !state.stopped && state.role.role === 'leader' && state.role.ready;
  void runImporter({
    shard: cfg.shard,
    dim: cfg.dim,
    sharding: cfg.sharding,
    state: () => store.reshard,
    leading,
    pull: (source, pull) => cfg.requester.request<PullAnswer<Uint8Array>>(leaderSubject(cfg.subjects, cfg.uid, source), { type: 'pull', pull }, { timeoutMs: 10_000 }),
    propose: async (data) => (await group.propose(data, { concern: 'majority', timeoutMs: 10_000 })).result,
    rate: () => cfg.importRate?.() ?? 0,
    counted: (source, epoch, bytes, points) => countImport(state, source, epoch, bytes, points),
    now: () => Date.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    log: state.log,
  })
    .catch((err: unknown) => state.log.warn('reshard importer stopped', { shard: `${cfg.collection}/${cfg.shard}`, error: describeError(err) }))
    .finally(() => {
      state.importing = false;
    });
}

function writeResult(cfg: ReplicaConfig, req: Extract<ShardRequest, { type: 'write' }>, result: unknown): WriteResult {
  // Write concern `leader` answers before apply, so the counts are of what was asked
  // (for a delete, which of the ids existed is not known yet).
  if (req.concern === 'leader' || result === undefined) {
    return req.write.op === 'upsert' ? { upserted: req.write.points.length } : { deleted: req.write.ids.length };
  }
  const r = result as Record<string, unknown>;
  if (typeof r['upserted'] === 'number') return { upserted: r['upserted'] };
  if (typeof r['deleted'] === 'number') return { deleted: r['deleted'] };
  if (r['rejected']) throw new InvalidArgumentError(String((r['rejected'] as { message?: unknown }).message ?? 'rejected by the shard'));
  const refused = r['refused'] as { code?: string; message?: string } | undefined;
  if (refused) {
    const msg = `shard ${cfg.collection}/${cfg.shard}: ${String(refused.message)}`;
    if (refused.code === 'STALE_MAP') throw new StaleMapError(msg);
    if (refused.code === 'MOVING') throw new MovingError(msg);
    throw new InternalError(msg);
  }
  if (r['skipped']) throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard}: the entry was applied before this replica's answer was ready; retry`);
  throw new InternalError(`shard ${cfg.collection}/${cfg.shard}: unexpected apply result ${JSON.stringify(r)}`);
}
