/** The pure Raft core's public surface. */
export * from './types.js';
export * from './config.js';
export { bootstrapInit, emptyInit, RaftNode } from './raft-node.js';
export type { PeerStatus, ProposeResult, RaftInit, RaftLogView, RaftNodeView, RaftStatus } from './raft-node.js';
export { applyConfChange, quorum } from './membership.js';
export type { ConfChange } from './membership.js';
export { decodeConf, encodeConf, entryCrc, entryIntact, makeEntry, sameConf, EMPTY_CONF, ENTRY_TYPE_CODES } from './entry.js';
export { crc32 } from './crc32.js';
