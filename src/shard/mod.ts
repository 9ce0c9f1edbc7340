/** The shard state machine (DESIGN.md: what Raft drives on every replica): the public surface of this folder. */
export type { ApplyResult, CommandPoint, LogEntry, LoggedCommand, Point, ShardCommand } from './commands.js';
export { decodeCommand, encodeCommand, MAX_ID_BYTES, MAX_REQUEST_ID_BYTES } from './commands.js';
export { DEFAULT_CHECKPOINT_EVERY, ShardStateMachine, type ShardSearch, type ShardStateMachineOptions } from './shard-state-machine.js';
export { DEDUP_WINDOW_MS } from '../storage/dedup-store.js';
