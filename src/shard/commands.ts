/**
 * The commands a shard's Raft log carries, how they are encoded as an entry's data, and what
 * applying one returns. A command is applied identically on every replica: everything it depends
 * on (including `at`, the leader's clock reading) is in the command.
 */
import { Decoder, Encoder } from 'cbor-x';
import type { ImportCommand } from './reshard-import.js';
import type { ReshardCommand, ReshardState } from './reshard-state.js';
import { DecodeError } from '../runtime/errors.js';

export interface CommandPoint {
  id: string;
  vector: Float32Array | number[];
  metadata?: Record<string, unknown> | undefined;
  /** Custom sharding: the key that places the point (kept with it, so a reshard moves it by its key). */
  shardKey?: string | undefined;
}

/**
 * The data of a `normal` entry in a shard's Raft log: what a leader proposes, encoded by
 * {@link encodeCommand} and read back by {@link decodeCommand}.
 */
export type LoggedCommand =
  /** `mapEpoch`: the shard map the router used (docs/resharding.md); absent in entries written before maps had epochs (epoch 0). */
  | { type: 'upsert'; points: CommandPoint[]; requestId?: string | undefined; at: number; mapEpoch?: number | undefined }
  | { type: 'delete'; ids: string[]; requestId?: string | undefined; at: number; mapEpoch?: number | undefined }
  /** A step of a reshard, from the coordinator. */
  | { type: 'reshard'; step: ReshardCommand; at: number }
  /** What a target imports from a source during a reshard; a value is a point as the points store encodes it. */
  | { type: 'import'; step: ImportCommand<Uint8Array>; at: number }
  /**
   * Replace the shard's state with a backup image (docs/backups.md): every replica downloads the
   * object `object` of the backups bucket and installs it, so all hold the same bytes (and the
   * same HNSW graph); the shard's applied index becomes this entry's.
   */
  | { type: 'restore'; object: string; at: number }
  /** From the leader: its change-stream outbox records up to `upTo` are in the stream (JetStream acknowledged them), so every replica drops them (docs/changes.md). */
  | { type: 'changes-published'; upTo: number; at: number };

/** What the state machine applies: a logged command, or a no-op for an entry that carries none. */
export type ShardCommand =
  | LoggedCommand
  /** Raft no-ops and the like: advance the applied index only. */
  | { type: 'noop'; at?: number | undefined };

// Plain CBOR, typed arrays as RFC 8746 tags: the bytes the runtime's codec writes, so logs
// written before this codec lived here read back the same.
const encoder = new Encoder({ useRecords: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

/** A command as the data of a `normal` log entry. */
export function encodeCommand(command: LoggedCommand): Uint8Array {
  return encoder.encode(command);
}

/**
 * The command in a `normal` entry's data. Only the CBOR is checked here: the fields are checked
 * when the command is applied, so that every replica refuses a malformed command alike.
 * Throws {@link DecodeError} for bytes that are not one CBOR value.
 */
export function decodeCommand(data: Uint8Array): LoggedCommand {
  if (data.length === 0) throw new DecodeError('empty log command');
  try {
    return decoder.decode(data) as LoggedCommand;
  } catch (err) {
    throw new DecodeError(`log command is not valid CBOR: ${(err as Error).message}`, { cause: err });
  }
}

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
  | { rejected: { code: 'INVALID_ARGUMENT'; message: string } }
  /**
   * Not applied, and not remembered under its requestId, because of the shard map
   * (docs/resharding.md): the router's epoch is not the one this shard serves (`STALE_MAP`), a key
   * is moving to another shard (`MOVING`), or a key is not this shard's (`WRONG_SHARD`). The
   * router retries (the first two) inside its deadline.
   */
  | { refused: { code: 'STALE_MAP' | 'MOVING' | 'WRONG_SHARD'; message: string } }
  /** A reshard step: the shard's reshard state after it (`unchanged` says why it did nothing). */
  | { reshard: ReshardState; unchanged?: string }
  /** An import: whether it was applied (`why` when not). */
  | { imported: boolean; why?: string }
  /** A restore: the points the shard holds now, and the Raft index of the backed-up shard its image was at. */
  | { restored: { points: number; from: number } };

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
