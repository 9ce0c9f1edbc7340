/**
 * The commands a shard's Raft log carries, and what applying one returns. A command is applied
 * identically on every replica: everything it depends on (including `at`, the leader's clock
 * reading) is in the command.
 */

export interface CommandPoint {
  id: string;
  vector: Float32Array | number[];
  metadata?: Record<string, unknown> | undefined;
}

export type ShardCommand =
  | { type: 'upsert'; points: CommandPoint[]; requestId?: string | undefined; at: number }
  | { type: 'delete'; ids: string[]; requestId?: string | undefined; at: number }
  /** Raft no-ops and the like: advance the applied index only. */
  | { type: 'noop'; at?: number | undefined };

export type ApplyResult =
  | { upserted: number }
  /** The number of ids that existed. */
  | { deleted: number }
  | { noop: true }
  /** The entry's index was at or below the applied index: it was applied before, and nothing changed now. */
  | { skipped: true }
  /**
   * The command is invalid (a bad point the router should have refused): every replica refuses it
   * alike and nothing of it is applied.
   */
  | { rejected: { code: 'INVALID_ARGUMENT'; message: string } };

export interface LogEntry {
  index: number;
  command: ShardCommand;
}

/** A point read back by `get`. */
export interface Point {
  id: string;
  vector?: Float32Array;
  metadata?: Record<string, unknown>;
}

/** At most this many UTF-8 bytes in a point id (PROTOCOL.md). */
export const MAX_ID_BYTES = 256;
/** At most this many UTF-8 bytes in a requestId (PROTOCOL.md). */
export const MAX_REQUEST_ID_BYTES = 128;
