/** The shard state machine (DESIGN.md: what Raft drives on every replica): the public surface of this folder. */
export type { ApplyResult, CommandPoint, LogEntry, LoggedCommand, Point, ShardCommand } from './commands.js';
export { decodeCommand, encodeCommand, MAX_ID_BYTES, MAX_REQUEST_ID_BYTES } from './commands.js';
export { ShardStateMachine, type ShardSearch } from './shard-state-machine.js';
export { DEFAULT_CHECKPOINT_EVERY } from './index-checkpoints.js';
export type { ShardStateMachineOptions } from './shard-options.js';
export { DEDUP_WINDOW_MS } from '../storage/dedup-store.js';
