/**
 * Carries one move through its phases (PROTOCOL.md, rebalance.status; DESIGN.md, Moves):
 *
 * - `prepare`: the shard's bootstrap voters are cleared (from now on a node with no state joins),
 *   and the target is added as a learner. The move record itself, naming the target, is what
 *   makes the target's replica manager start an empty replica that joins;
 * - `copy`: the leader sends the learner a snapshot (its points and index checkpoint) in chunks,
 *   paced by the cluster's `maxBytesPerSec`; done once the learner holds it;
 * - `catch-up`: the learner replays the log until it is within {@link CATCH_UP_ENTRIES};
 * - `switch`: the learner becomes a voter and the replaced replica is removed, one membership
 *   change at a time. With a live `from`, promote first (the shard keeps every replica it had
 *   until the new one votes); with a dead one, remove it first (a dead voter adds to the quorum
 *   without helping reach it). Leadership is handed away before its holder is removed. Then the
 *   placement (the goal) follows;
 * - `cleanup`: the old replica's node deletes its data, once the configuration no longer holds it.
 *
 * Every phase checks the shard's actual Raft configuration before acting and is safe to repeat,
 * so a coordinator that takes over goes on from the phase the record names. Every write of the
 * record is a compare-and-set stamped with the coordinator's lease epoch (fencing).
 */
import type { MoveRecord } from '../../cluster/metadata.js';
import { describeError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import type { MembershipChange, ShardStatus } from '../shard-protocol.js';

/** The learner is caught up once its log is within this many entries of the leader's. */
export const CATCH_UP_ENTRIES = 16;
/** How often a phase that waits looks again. */
export const POLL_MS = 250;
/** A target down for this long is given up on; the move goes on with another target. */
export const TARGET_LOST_MS = 10_000;
/** A move's bytesCopied is written to the bucket at most this often. */
const PROGRESS_EVERY_MS = 1_000;

export interface MovePorts {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** The lease epoch held now; 0 once this coordinator is deposed (the move stops). */
  epoch(): number;
  /** The shard's status from its leader, or undefined without one. */
  leaderStatus(uid: string, shard: number): Promise<ShardStatus | undefined>;
  /** One node's replica's status, or undefined when it does not answer. */
  replicaStatus(node: string, uid: string, shard: number): Promise<ShardStatus | undefined>;
  /** One membership change through the shard's leader (idempotent there). */
  conf(uid: string, shard: number, change: MembershipChange, epoch: number): Promise<void>;
  /** Hands the shard's leadership away from its leader (to `to` when given). */
  transfer(uid: string, shard: number, to?: string): Promise<void>;
  /** Asks `node` to delete its replica if the configuration no longer holds it. */
  collect(node: string, uid: string, shard: number): Promise<{ removed: boolean; hosted: boolean }>;
  isAlive(node: string): boolean;
  /** Writes the record (CAS at its last revision, stamped with `epoch`); throws once deposed or on a conflict. */
  save(move: MoveRecord): Promise<void>;
  /** Clears the shard's bootstrap voters (before its first membership change). */
  clearBootstrap(collection: string, uid: string, shard: number): Promise<void>;
  /** The placement follows the configuration: `from` out, `to` in. */
  commitPlacement(move: MoveRecord): Promise<void>;
  /** Another target for a move whose target died, or null when none fits. */
  retarget(move: MoveRecord): string | null;
  /** Test hook (SHOAL_FAULTS=slow-switch): a wait before each step of the switch, so a test can crash the coordinator in the middle of it. */
  beforeSwitchStep?(): Promise<void>;
  log: Logger;
}

/** Why a move stopped without finishing. */
export class MoveStopped extends Error {}

export async function runMove(move: MoveRecord, p: MovePorts): Promise<MoveRecord> {
  const shardName = `${move.collection}/${move.shard}`;
  let lostSince: number | null = null;
  let lastProgressSave = 0;
  /** Leadership transfers asked of the source while it leads. */
  let handOffs = 0;
  const live = (): number => {
    const e = p.epoch();
    if (e === 0) throw new MoveStopped(`move ${move.id}: this coordinator is no longer active`);
    return e;
  };
  const advance = async (phase: MoveRecord['phase']): Promise<void> => {
    move.phase = phase;
    move.epoch = live();
    await p.save(move);
    p.log.info('move phase', { move: move.id, shard: shardName, from: move.from, to: move.to, phase });
  };
  /**
   * The target went away for good: take the learner out, then start again elsewhere (or give up).
   * The learner goes first and for certain (a failure is retried like any step's): nothing else
   * ever removes it, and a dead learner left in the configuration stays there for good.
   */
  const targetLost = async (): Promise<void> => {
    await p.conf(move.uid, move.shard, { remove: move.to }, live());
    const next = p.retarget(move);
    p.log.warn('move target lost; trying another', { move: move.id, shard: shardName, target: move.to, next });
    if (!next) throw new MoveStopped(`move ${move.id}: target ${move.to} is down and no other node fits`);
    move.failedTargets = [...(move.failedTargets ?? []), move.to];
    move.to = next;
    move.bytesCopied = 0;
    move.bytesTotal = null;
    lostSince = null;
    await advance('prepare');
  };
  const watchTarget = async (): Promise<boolean> => {
    if (p.isAlive(move.to)) {
      lostSince = null;
      return false;
    }
    lostSince ??= p.now();
    if (p.now() - lostSince < TARGET_LOST_MS) return false;
    await targetLost();
    return true;
  };

  for (;;) {
    live();
    try {
      switch (move.phase) {
        case 'prepare': {
          await p.clearBootstrap(move.collection, move.uid, move.shard);
          await p.conf(move.uid, move.shard, { addLearner: move.to }, live());
          await advance('copy');
          break;
        }
        case 'copy':
        case 'catch-up': {
          if (await watchTarget()) break;
          const lead = await p.leaderStatus(move.uid, move.shard);
          const mine = await p.replicaStatus(move.to, move.uid, move.shard);
          if (mine?.snapshot) {
            move.bytesCopied = mine.snapshot.bytes;
            move.bytesTotal = mine.snapshot.totalBytes;
            if (p.now() - lastProgressSave >= PROGRESS_EVERY_MS) {
              lastProgressSave = p.now();
              move.epoch = live();
              await p.save(move);
            }
          }
          if (!lead) {
            await p.sleep(POLL_MS);
            break;
          }
          if (!lead.voters.includes(move.to) && !lead.learners.includes(move.to)) {
            // the learner is not in the configuration (a coordinator stopped before adding it, or it was taken out)
            await advance('prepare');
            break;
          }
          const pr = lead.progress.find((x) => x.node === move.to);
          const match = pr?.matchIndex ?? 0;
          if (move.phase === 'copy') {
            if (match > 0 && !mine?.snapshot) {
              if (move.bytesTotal !== null) move.bytesCopied = move.bytesTotal;
              await advance('catch-up');
            } else await p.sleep(POLL_MS);
          } else if (lead.lastIndex - match <= CATCH_UP_ENTRIES) {
            await advance('switch');
          } else await p.sleep(POLL_MS);
          break;
        }
        case 'switch': {
          await p.beforeSwitchStep?.();
          const lead = await p.leaderStatus(move.uid, move.shard);
          if (!lead) {
            await p.sleep(POLL_MS);
            break;
          }
          const isMember = (n: string): boolean => lead.voters.includes(n) || lead.learners.includes(n);
          if (!isMember(move.to)) {
            await advance('prepare');
            break;
          }
          const fromIn = move.from !== null && isMember(move.from);
          const fromDead = move.from !== null && !p.isAlive(move.from);
          if (fromIn && (fromDead || lead.voters.includes(move.to))) {
            if (lead.node === move.from) {
              // To the new replica; after a try that did not take, every other one lets the leader
              // pick (the new replica may never take over: down, or damaged and so unable to campaign).
              const to = lead.voters.includes(move.to) && handOffs++ % 2 === 0 ? move.to : undefined;
              await p.transfer(move.uid, move.shard, to);
              break;
            }
            await p.conf(move.uid, move.shard, { remove: move.from as string }, live());
            break;
          }
          if (lead.learners.includes(move.to)) {
            await p.conf(move.uid, move.shard, { promote: move.to }, live());
            break;
          }
          // `to` votes and `from` is out: the goal follows
          await p.commitPlacement(move);
          await advance('cleanup');
          break;
        }
        case 'cleanup': {
          if (move.from !== null && p.isAlive(move.from)) {
            const r = await p.collect(move.from, move.uid, move.shard);
            if (r.hosted) {
              await p.sleep(POLL_MS * 4);
              break;
            }
          }
          return move;
        }
      }
    } catch (err) {
      if (err instanceof MoveStopped) throw err;
      p.log.info('move step failed; retrying', { move: move.id, shard: shardName, phase: move.phase, error: describeError(err) });
      await p.sleep(POLL_MS * 2);
    }
  }
}
