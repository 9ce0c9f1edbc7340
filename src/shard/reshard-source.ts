/**
 * A reshard source's answer to a target's pull (reshard-import.ts, answerPull), read from the
 * shard's stores in one LMDB read transaction: pages of the points that move to the target, or
 * the reshard journal after its cursor.
 */
import { InvalidArgumentError } from '../runtime/errors.js';
import type { NodeEnv } from '../storage/node-env.js';
import { decodeValue } from '../storage/store-codec.js';
import type { ApplyContext } from './apply-command.js';
import { ownershipOf, routeOfValue } from './apply-reshard.js';
import { answerPull, type PullAnswer, type PullRequest } from './reshard-import.js';

/** Answers `req` from group `group`'s records as of the read transaction `txn`. */
export function pullFrom(ctx: ApplyContext, group: string, txn: ReturnType<NodeEnv['useReadTransaction']>, req: PullRequest): PullAnswer<Uint8Array> {
  const meta = ctx.meta.getMeta(group, txn);
  if (!meta?.reshard) throw new InvalidArgumentError(`shard ${ctx.shard} runs no reshard`);
  const { points, dedup } = ctx;
  const shardMeta = ctx.meta;
  return answerPull(ownershipOf(ctx, meta.reshard), {
    appliedIndex: meta.appliedIndex,
    *points(after) {
      for (const [id, value] of points.entries(group, txn, after)) {
        points.check(group, id, value);
        yield [id, value];
      }
    },
    *journalAfter(after) {
      for (const [, value] of shardMeta.movesRaw(group, after, txn)) yield decodeValue(value);
    },
    *requestIds() {
      for (const [id, e] of dedup.entries(group, txn)) yield [id, e.keys ?? []];
    },
    route: (key, value) => (value ? routeOfValue(key, value) : points.routeOf(group, key) ?? (points.has(group, key) ? key : undefined)),
  }, req);
}
