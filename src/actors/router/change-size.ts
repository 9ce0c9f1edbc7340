/**
 * A write to a collection with a change stream becomes, on each shard, one change-stream message
 * in JSON (docs/changes.md), which must fit the NATS server's max payload: a message that cannot
 * be published would hold up the shard's stream for good (its publisher never skips a record). So
 * the router refuses, before anything is applied, a write whose message could be too large.
 */
import type { ShardPoint } from '../shard-protocol.js';
import { InvalidArgumentError } from '../../runtime/errors.js';

/** The most characters a float32 takes in the message's JSON (`-1.2345678901234567e-30`), with its comma. */
const NUMBER_CHARS = 25;
/** A message's own fields (`shard`, `index`, `time`, `op`, braces) and each point's keys. */
const MESSAGE_OVERHEAD = 160;
const POINT_OVERHEAD = 48;

/** An upper bound of the bytes of the change message of `points`. */
export function changeMessageBound(points: readonly ShardPoint[]): number {
  let n = MESSAGE_OVERHEAD;
  for (const p of points) {
    n += POINT_OVERHEAD + Buffer.byteLength(JSON.stringify(p.id)) + NUMBER_CHARS * p.vector.length;
    if (p.metadata) n += Buffer.byteLength(JSON.stringify(p.metadata));
    if (p.shardKey !== undefined) n += Buffer.byteLength(JSON.stringify(p.shardKey));
  }
  return n;
}

/** Throws INVALID_ARGUMENT when a shard's part of a write could make a change message over `maxBytes`. */
export function checkChangeMessageSize(collection: string, byShard: ReadonlyMap<number, readonly ShardPoint[]>, maxBytes: number): void {
  for (const [shard, points] of byShard) {
    const bound = changeMessageBound(points);
    if (bound > maxBytes) {
      throw new InvalidArgumentError(
        `points: collection '${collection}' has a change stream, and the ${points.length} points of this write that go to shard ${shard} could make a change message of up to ${bound} bytes, over the NATS max payload of ${maxBytes}: send fewer points per request`,
      );
    }
  }
}
