/**
 * The operations subjects of PROTOCOL.md ("Operations"): maintenance and removal of nodes,
 * leadership transfer, and the rebalance coordinator. Replies are typed as the protocol gives
 * them; phases and reasons the client does not know yet come through as strings.
 */
import type { CollectionDescription } from '../api/types.js';
import type { ShoalClient } from './client.js';

/** `nodes.maintenance`: the node's state once it leads no shard (or `up` again). */
export interface MaintenanceReply {
  node: string;
  state: string;
  leaders: number;
}

/** `nodes.remove`: the node is `draining`; `moves` take its replicas elsewhere. */
export interface RemoveNodeReply {
  node: string;
  state: string;
  moves: number;
}

/** `shards.transfer-leader`: the shard's leader once it leads. */
export interface TransferLeaderReply {
  collection: string;
  shard: number;
  leader: string;
  term: number;
}

export type MoveReason = 'repair' | 'decommission' | 'rebalance' | 'reshard';
/** In order: `prepare` → `copy` → `catch-up` → `switch` → `cleanup`. */
export type MovePhase = 'prepare' | 'copy' | 'catch-up' | 'switch' | 'cleanup';

/** One replica moving from a node (null: a replica added from nothing) to another. */
export interface Move {
  id: string;
  collection: string;
  shard: number;
  from: string | null;
  to: string;
  reason: MoveReason | (string & {});
  phase: MovePhase | (string & {});
  bytesCopied: number;
  bytesTotal: number;
  /** RFC 3339. */
  startedAt: string;
}

export interface RebalanceThrottle {
  /** 1 to 64. */
  maxConcurrentMoves: number;
  /** The cluster-wide copy rate; 0 means unthrottled. */
  maxBytesPerSec: number;
  replaceAfterMs: number;
}

/** `rebalance.status`, and the reply of every `rebalance.*` request. */
export interface RebalanceStatus {
  coordinator: string | null;
  state: 'idle' | 'running' | 'paused' | (string & {});
  auto: boolean;
  throttle: RebalanceThrottle;
  moves: Move[];
  done: number;
  failed: number;
  pending: number;
}

/** `rebalance.configure`: what is given changes, the rest stays. */
export interface RebalanceSettings {
  maxConcurrentMoves?: number;
  maxBytesPerSec?: number;
  auto?: boolean;
  replaceAfterMs?: number;
}

/** The operations requests, over a {@link ShoalClient}'s connection, prefix and encoding. */
export class OpsClient {
  constructor(private readonly client: ShoalClient) {}

  /** Drains (`on`) or undrains a node; answers once it leads no shard, or `TIMEOUT`. */
  maintenance(node: string, on: boolean, timeoutMs?: number): Promise<MaintenanceReply> {
    return this.call('nodes', 'maintenance', { node, on }, timeoutMs);
  }

  /** Decommissions a node; answers at once, the moves run afterwards. */
  removeNode(node: string, timeoutMs?: number): Promise<RemoveNodeReply> {
    return this.call('nodes', 'remove', { node }, timeoutMs);
  }

  /** Without `to`: to the most caught-up other voter. */
  transferLeader(collection: string, shard: number, to?: string, timeoutMs?: number): Promise<TransferLeaderReply> {
    return this.call('shards', 'transfer-leader', { collection, shard, ...(to !== undefined ? { to } : {}) }, timeoutMs);
  }

  rebalanceStatus(timeoutMs?: number): Promise<RebalanceStatus> {
    return this.call('rebalance', 'status', {}, timeoutMs);
  }

  /** With `dryRun`, the reply's moves are the plan and nothing is applied. */
  startRebalance(opts: { dryRun?: boolean } = {}, timeoutMs?: number): Promise<RebalanceStatus> {
    return this.call('rebalance', 'start', opts.dryRun ? { dryRun: true } : {}, timeoutMs);
  }

  pauseRebalance(timeoutMs?: number): Promise<RebalanceStatus> {
    return this.call('rebalance', 'pause', {}, timeoutMs);
  }

  resumeRebalance(timeoutMs?: number): Promise<RebalanceStatus> {
    return this.call('rebalance', 'resume', {}, timeoutMs);
  }

  configureRebalance(settings: RebalanceSettings, timeoutMs?: number): Promise<RebalanceStatus> {
    const body = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
    return this.call('rebalance', 'configure', body, timeoutMs);
  }

  /** collections.reshard: begins changing the collection's shard count (for `range`, with the new boundaries); the reply is its describe, with `resharding`. */
  reshard(name: string, shards: number, opts: { boundaries?: string[] } = {}, timeoutMs?: number): Promise<CollectionDescription> {
    return this.call<{ collection: CollectionDescription }>('collections', 'reshard', { name, shards, ...(opts.boundaries ? { boundaries: opts.boundaries } : {}) }, timeoutMs).then((r) => r.collection);
  }

  private call<T>(area: string, op: string, body: Record<string, unknown>, timeoutMs: number | undefined): Promise<T> {
    return this.client.request<T>(this.client.adminSubject(area, op), body, timeoutMs);
  }
}
