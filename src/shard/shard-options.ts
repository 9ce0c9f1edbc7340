/**
 * What a shard state machine is opened with (shard-state-machine.ts, ShardStateMachine.open), and
 * the checks `open` makes of it before it touches anything.
 */
import { InvalidArgumentError, type CorruptDataError } from '../runtime/errors.js';
import type { HnswParams, IndexedFields, IndexHost, Metric } from '../index/mod.js';
import type { NodeEnv } from '../storage/node-env.js';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_JOURNAL_BYTES } from './index-checkpoints.js';
import type { OwnerOf, ReshardState } from './reshard-state.js';

export interface ShardStateMachineOptions {
  env: NodeEnv;
  /** The Raft group (shard) this state machine belongs to; keys its LMDB records. */
  group: string;
  /** Directory of this group's index checkpoints (created if missing). */
  dir: string;
  dim: number;
  metric: Metric;
  hnsw: HnswParams;
  /** The collection's declared metadata indexes (PROTOCOL.md, collections.create `indexes`): given to the index at every open. */
  indexes?: IndexedFields | undefined;
  /** hnswlib's level-generator seed; every replica of a group must use the same. */
  seed?: number | undefined;
  checkpointEvery?: number | undefined;
  /** See {@link DEFAULT_CHECKPOINT_JOURNAL_BYTES}. */
  checkpointJournalBytes?: number | undefined;
  /** The worker thread to run the index in; by default the state machine starts its own. */
  host?: IndexHost | undefined;
  /** See `DEFAULT_EXACT_BUDGET` of the index. */
  exactBudget?: number | undefined;
  /** See `DEFAULT_FILTERED_GRAPH_COST` of the index. */
  filteredGraphCost?: number | undefined;
  /** This shard's number, and which shard owns a key under a map: for the shard's reshard decisions (docs/resharding.md). Default shard 0, and no reshard possible. */
  shard?: number | undefined;
  ownerOf?: OwnerOf | undefined;
  /** The reshard state of a group a reshard creates (reshard-state.ts, newShardState), taken when the group has no state yet. */
  initialReshard?: ReshardState | undefined;
  /** Told once when an open state machine finds its stored data damaged (it serves nothing from then on). */
  onCorrupt?: ((err: CorruptDataError) => void) | undefined;
  /** A backup image's bytes, by object name (the backups bucket): what a `restore` entry installs. Absent: such entries fail. */
  images?: ((object: string) => AsyncIterable<Uint8Array>) | undefined;
  /** The collection has a change stream: applied writes leave outbox records (docs/changes.md). Default false. */
  changeStream?: boolean | undefined;
  /** Told after each applied batch of a group with a change stream (its outbox may have grown). */
  onChanges?: (() => void) | undefined;
}

/** Throws InvalidArgumentError naming the first option out of its range. */
export function checkOptions(opts: ShardStateMachineOptions): void {
  if (typeof opts.group !== 'string' || opts.group.length === 0 || opts.group.includes('\u0000')) throw new InvalidArgumentError('group must be a non-empty string without NUL');
  const every = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  if (!Number.isSafeInteger(every) || every < 1) throw new InvalidArgumentError(`checkpointEvery must be a positive integer, got ${every}`);
  const journalLimit = opts.checkpointJournalBytes ?? DEFAULT_CHECKPOINT_JOURNAL_BYTES;
  if (!Number.isSafeInteger(journalLimit) || journalLimit < 1) throw new InvalidArgumentError(`checkpointJournalBytes must be a positive integer, got ${journalLimit}`);
}
