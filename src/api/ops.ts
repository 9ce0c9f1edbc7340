/**
 * Requests of PROTOCOL.md's "Operations" subjects (nodes, leadership, rebalance): validated here,
 * each bad field named with its limit.
 */
import { InvalidArgumentError } from '../runtime/errors.js';
import * as f from './fields.js';
import { collectionName } from './validate.js';

const NODE_ID_MAX_BYTES = 128;
/** A node id is one subject token, as `shoal node --id` requires. */
const NODE_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

function nodeId(v: unknown, path: string): string {
  if (v === undefined) throw new InvalidArgumentError(`${path} is required`);
  const s = f.string(v, path, NODE_ID_MAX_BYTES);
  if (!NODE_ID_RE.test(s)) throw new InvalidArgumentError(`${path} ${f.quoted(s)} is not a node id: 1 to 128 of A-Z a-z 0-9 _ -`);
  return s;
}

export function validateMaintenance(raw: unknown): { node: string; on: boolean; timeoutMs: number } {
  const b = f.body(raw, 'nodes.maintenance', ['node', 'on', 'timeoutMs']);
  if (b['on'] === undefined) throw new InvalidArgumentError('on is required (true or false)');
  return { node: nodeId(b['node'], 'node'), on: f.boolean(b['on'], 'on', true), timeoutMs: f.timeoutMs(b['timeoutMs']) };
}

export function validateRemove(raw: unknown): { node: string; timeoutMs: number } {
  const b = f.body(raw, 'nodes.remove', ['node', 'timeoutMs']);
  return { node: nodeId(b['node'], 'node'), timeoutMs: f.timeoutMs(b['timeoutMs']) };
}

export function validateTransferLeader(raw: unknown): { collection: string; shard: number; to?: string; timeoutMs: number } {
  const b = f.body(raw, 'shards.transfer-leader', ['collection', 'shard', 'to', 'timeoutMs']);
  if (b['collection'] === undefined) throw new InvalidArgumentError('collection is required');
  if (b['shard'] === undefined) throw new InvalidArgumentError('shard is required');
  const out: { collection: string; shard: number; to?: string; timeoutMs: number } = {
    collection: collectionName(b['collection'], 'collection'),
    shard: f.integer(b['shard'], 'shard', 0, 255),
    timeoutMs: f.timeoutMs(b['timeoutMs']),
  };
  if (b['to'] !== undefined) out.to = nodeId(b['to'], 'to');
  return out;
}

export function validateRebalanceStart(raw: unknown): { dryRun: boolean; timeoutMs: number } {
  const b = f.body(raw, 'rebalance.start', ['dryRun', 'timeoutMs']);
  return { dryRun: f.boolean(b['dryRun'], 'dryRun', false), timeoutMs: f.timeoutMs(b['timeoutMs']) };
}

export interface RebalanceSettings {
  maxConcurrentMoves?: number;
  maxBytesPerSec?: number;
  auto?: boolean;
  replaceAfterMs?: number;
}

/** Most bytes per second `maxBytesPerSec` may be (1 TiB/s; 0 means unthrottled). */
export const MAX_BYTES_PER_SEC = 2 ** 40;
/** `replaceAfterMs` bounds: a second to a week. */
export const REPLACE_AFTER_MS_MIN = 1_000;
export const REPLACE_AFTER_MS_MAX = 7 * 24 * 3_600_000;

export function validateConfigure(raw: unknown): RebalanceSettings & { timeoutMs: number } {
  const b = f.body(raw, 'rebalance.configure', ['maxConcurrentMoves', 'maxBytesPerSec', 'auto', 'replaceAfterMs', 'timeoutMs']);
  const out: RebalanceSettings & { timeoutMs: number } = { timeoutMs: f.timeoutMs(b['timeoutMs']) };
  if (b['maxConcurrentMoves'] !== undefined) out.maxConcurrentMoves = f.integer(b['maxConcurrentMoves'], 'maxConcurrentMoves', 1, 64);
  if (b['maxBytesPerSec'] !== undefined) out.maxBytesPerSec = f.integer(b['maxBytesPerSec'], 'maxBytesPerSec', 0, MAX_BYTES_PER_SEC);
  if (b['auto'] !== undefined) out.auto = f.boolean(b['auto'], 'auto', true);
  if (b['replaceAfterMs'] !== undefined) out.replaceAfterMs = f.integer(b['replaceAfterMs'], 'replaceAfterMs', REPLACE_AFTER_MS_MIN, REPLACE_AFTER_MS_MAX);
  return out;
}

/** collections.reshard (PROTOCOL.md): the new shard count, 1 to 256, and for `range` the new boundaries (checked against the collection by the coordinator). */
export function validateReshard(raw: unknown): { name: string; shards: number; boundaries?: string[]; timeoutMs: number } {
  const b = f.body(raw, 'collections.reshard', ['name', 'shards', 'boundaries', 'timeoutMs']);
  if (b['name'] === undefined) throw new InvalidArgumentError('name is required');
  if (b['shards'] === undefined) throw new InvalidArgumentError('shards is required (1 to 256)');
  const out: { name: string; shards: number; boundaries?: string[]; timeoutMs: number } = {
    name: collectionName(b['name'], 'name'),
    shards: f.integer(b['shards'], 'shards', 1, 256),
    timeoutMs: f.timeoutMs(b['timeoutMs']),
  };
  if (b['boundaries'] !== undefined) out.boundaries = f.list(b['boundaries'], 'boundaries', 255).map((x, i) => f.string(x, `boundaries[${i}]`, 256));
  return out;
}
