/**
 * Cluster metadata in a JetStream KV bucket (`<prefix>-meta`): collections with their shard
 * maps, and the registry of nodes that ever joined. Every change is a compare-and-set on the
 * key's revision, so two admins (or two routers) cannot both win; nodes watch the bucket and
 * move their replicas to match. The epoch is the bucket's revision: it grows with every change.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry, type KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator } from '@nats-io/transport-node';
import type { CollectionSpec } from '../api/types.js';
import { AlreadyExistsError, InternalError, UnavailableError, describeError } from '../runtime/errors.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import type { ShardPlacement } from './placement.js';
import type { ReshardRecord, ShardMap } from './shard-map.js';

/** A collection's running reshard, as its record keeps it (shard-map.ts). */
export type { ReshardPairRecord, ReshardRecord } from './shard-map.js';

/** A collection as the control plane holds it. */
export interface CollectionRecord extends CollectionSpec {
  /**
   * Unique per creation: a dropped and re-created collection of the same name gets a new uid,
   * so its Raft groups and data never mix with the old ones.
   */
  uid: string;
  createdAt: string;
  /**
   * By shard number: the goal for each shard's replicas. While a reshard runs it covers the shard
   * numbers of both maps (a shard number is in one group at a time: see shard-map.ts, groupOf).
   */
  placement: ShardPlacement[];
  /**
   * The active shard map (docs/resharding.md); absent until the collection's first reshard, when
   * it is epoch 0 with `shards` and groups `<uid>-<shard>`. `shards` and `sharding` always
   * describe the active map.
   */
  map?: ShardMap;
  /** The reshard running (the coordinator's record of it), or null/absent. */
  resharding?: ReshardRecord | null;
  /** Set while the collection is being restored from a backup (docs/backups.md): requests are UNAVAILABLE until it is cleared. */
  restoring?: { backup: string; startedAt: string } | null;
}

export interface NodeRecord {
  id: string;
  registeredAt: string;
  /** The node's `--zone` label (null without one): a shard's replicas go to distinct zones first. */
  zone?: string | null;
  /**
   * What an operator made of the node: `active` (the default), `maintenance` (leads nothing,
   * takes no new replicas, never declared dead), `draining` (being removed: its replicas move
   * away), `removed` (gone from cluster.status; a node that starts again with this id joins anew).
   */
  admin?: NodeAdminState;
}

export type NodeAdminState = 'active' | 'maintenance' | 'draining' | 'removed';

/** The phases of a move, in order (PROTOCOL.md, rebalance.status). */
export const MOVE_PHASES = ['prepare', 'copy', 'catch-up', 'switch', 'cleanup'] as const;
export type MovePhase = (typeof MOVE_PHASES)[number];
export type MoveReason = 'repair' | 'decommission' | 'rebalance' | 'reshard';

/**
 * A move in the bucket (`moves.<id>`): one replica of one shard carried from `from` (null: added
 * from nothing) to `to`, phase by phase. Written by the active coordinator only, stamped with its
 * lease epoch; a coordinator that takes over goes on from `phase` (every phase is safe to repeat).
 */
export interface MoveRecord {
  id: string;
  collection: string;
  uid: string;
  shard: number;
  from: string | null;
  to: string;
  reason: MoveReason;
  phase: MovePhase;
  bytesCopied: number;
  bytesTotal: number | null;
  startedAt: string;
  /** The lease epoch of the coordinator that last wrote it. */
  epoch: number;
  /** Targets tried before this one and given up on (they died during the move). */
  failedTargets?: string[];
}

/** The coordinator's lease (`coordinator`): whoever holds it is the one active coordinator. */
export interface CoordinatorLease {
  node: string;
  /** Grows by one with every takeover: the fencing token stamped on everything the holder writes. */
  epoch: number;
  /** How long the lease lasts without a renewal, in ms (measured on each node's own clock from when it saw the last renewal). */
  leaseMs: number;
  renewedAt: string;
}

/** The coordinator's settings and counters (`rebalance`), changed by rebalance.configure/pause/resume. */
export interface RebalanceRecord {
  maxConcurrentMoves: number;
  maxBytesPerSec: number;
  auto: boolean;
  /** null: each node's own `--replace-after-ms` (the active coordinator's) applies. */
  replaceAfterMs: number | null;
  paused: boolean;
  /** rebalance.start asked for a rebalance (with auto off): balance moves are planned until none is left. */
  requested?: boolean;
  done: number;
  failed: number;
  /** Lease epoch of the last writer. */
  epoch: number;
}

export interface Versioned<T> {
  value: T;
  revision: number;
}

export type MetadataEvent =
  | { kind: 'collection'; name: string; record: CollectionRecord | null; revision: number }
  | { kind: 'node'; id: string; record: NodeRecord | null; revision: number }
  | { kind: 'move'; id: string; record: MoveRecord | null; revision: number }
  | { kind: 'control'; key: 'coordinator' | 'rebalance'; value: unknown; revision: number };

/** While a node waits for JetStream at start, it says so this often. */
export const WAIT_LOG_EVERY_MS = 5_000;

export interface MetadataOptions {
  /** Replicas of the KV bucket's stream (3 in a clustered NATS). Default 1. */
  replicas?: number;
  /** Where watch failures are logged. Default: a logger of its own. */
  log?: Logger;
}

export interface WatchOptions {
  /**
   * Told of every failure the watch recovered from: the watch broke (its consumer vanished, it
   * fell behind the bucket, the library ended it) and was re-established, or one change could not
   * be delivered (a record that does not parse, or `onEvent` threw) and was skipped.
   */
  onError?(err: unknown): void;
  /** How often the watch checks that it keeps up with the bucket. Default {@link WATCH_CHECK_MS}. */
  checkEveryMs?: number;
}

/**
 * How often a watch compares the last revision it delivered with the bucket's. A watch that is
 * still short of a revision the bucket had one check earlier is re-established. Without this, a
 * deleted consumer goes unnoticed until the library misses two 30 s heartbeats.
 */
export const WATCH_CHECK_MS = 5_000;
/** Bounds of the wait between two tries to re-establish a broken watch (it doubles). */
export const WATCH_RETRY_MIN_MS = 50;
export const WATCH_RETRY_MAX_MS = 5_000;

/**
 * A compare-and-set lost: the record is no longer at the revision the caller read (another
 * writer changed it since). Re-read and decide again. Internal to the cluster; a client that gets
 * it sees UNAVAILABLE, PROTOCOL.md's code for a change that conflicts with another in progress.
 */
export class RevisionConflictError extends UnavailableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RevisionConflictError';
  }
}

const COLLECTION_PREFIX = 'collections.';
const NODE_PREFIX = 'nodes.';
const MOVE_PREFIX = 'moves.';
const CONTROL_KEYS = new Set(['coordinator', 'rebalance']);

export class MetadataStore {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    readonly bucket: string,
    private readonly log: Logger,
  ) {}

  static bucketName(prefix: string): string {
    return `${prefix}-meta`;
  }

  /** Opens the bucket, creating it when missing. */
  static async open(nc: NatsConnection, prefix: string, opts: MetadataOptions = {}): Promise<MetadataStore> {
    const bucket = MetadataStore.bucketName(prefix);
    try {
      const kv = await new Kvm(nc).create(bucket, { history: 5, replicas: opts.replicas ?? 1, storage: 'file' } as never);
      return new MetadataStore(nc, kv, bucket, opts.log ?? createLogger({ component: 'metadata' }));
    } catch (err) {
      throw new UnavailableError(`cannot open the metadata bucket ${bucket} (is JetStream enabled?): ${describeError(err)}`, { cause: err });
    }
  }

  /**
   * Opens the bucket and registers node `node` in it, waiting as long as it takes for JetStream
   * to answer (a NATS cluster still electing its JetStream leader, a server restarting): it says
   * what it waits for at once and every {@link WAIT_LOG_EVERY_MS} after, and gives up only when
   * the connection closes.
   */
  static async openWhenReady(nc: NatsConnection, prefix: string, node: string, opts: MetadataOptions & { log: Logger; zone?: string | null }): Promise<MetadataStore> {
    const bucket = MetadataStore.bucketName(prefix);
    return whenJetStreamAnswers(nc, 'open the metadata bucket (is JetStream enabled, and does the NATS cluster have a JetStream leader?)', opts.log, { bucket }, async () => {
      const meta = await MetadataStore.open(nc, prefix, opts);
      await meta.registerNode(node, opts.zone ?? null);
      return meta;
    });
  }

  async getCollection(name: string): Promise<Versioned<CollectionRecord> | undefined> {
    return this.read<CollectionRecord>(COLLECTION_PREFIX + name);
  }

  async listCollections(): Promise<Versioned<CollectionRecord>[]> {
    return this.readAll<CollectionRecord>(COLLECTION_PREFIX);
  }

  /** Creates a collection; fails with AlreadyExistsError if the key exists (CAS on "absent"). */
  async createCollection(record: CollectionRecord): Promise<number> {
    try {
      return await this.kv.create(COLLECTION_PREFIX + record.name, JSON.stringify(record));
    } catch (err) {
      if (isWrongRevision(err)) throw new AlreadyExistsError(`collection '${record.name}' was created concurrently`, { cause: err });
      throw new UnavailableError(`metadata write failed: ${describeError(err)}`, { cause: err });
    }
  }

  /** Replaces a collection's record if it is still at `revision`; fails with RevisionConflictError if it is not. */
  async updateCollection(record: CollectionRecord, revision: number): Promise<number> {
    try {
      return await this.kv.update(COLLECTION_PREFIX + record.name, JSON.stringify(record), revision);
    } catch (err) {
      if (isWrongRevision(err)) throw new RevisionConflictError(`collection '${record.name}' changed concurrently (it is no longer at revision ${revision})`, { cause: err });
      throw new UnavailableError(`metadata write failed: ${describeError(err)}`, { cause: err });
    }
  }

  /** Deletes a collection's record if it is still at `revision`. Returns false if it changed meanwhile. */
  async deleteCollection(name: string, revision: number): Promise<boolean> {
    try {
      await this.kv.delete(COLLECTION_PREFIX + name, { previousSeq: revision });
      return true;
    } catch (err) {
      if (isWrongRevision(err)) return false;
      throw new UnavailableError(`metadata write failed: ${describeError(err)}`, { cause: err });
    }
  }

  /**
   * Records a node in the registry, with its zone (idempotent). A node that was removed and
   * starts again joins anew (`active`); a node in maintenance or draining stays so.
   */
  async registerNode(id: string, zone: string | null = null): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.read<NodeRecord>(NODE_PREFIX + id);
      const admin = cur?.value.admin === 'removed' ? 'active' : (cur?.value.admin ?? 'active');
      if (cur && (cur.value.zone ?? null) === zone && (cur.value.admin ?? 'active') === admin) return;
      const rec: NodeRecord = { id, registeredAt: cur?.value.registeredAt ?? new Date().toISOString(), zone, admin };
      try {
        if (cur) await this.kv.update(NODE_PREFIX + id, JSON.stringify(rec), cur.revision);
        else await this.kv.create(NODE_PREFIX + id, JSON.stringify(rec));
        return;
      } catch (err) {
        if (!isWrongRevision(err)) throw new UnavailableError(`node registration failed: ${describeError(err)}`, { cause: err });
      }
    }
    throw new UnavailableError(`node registration of ${id} kept conflicting`);
  }

  async listNodes(): Promise<NodeRecord[]> {
    return (await this.readAll<NodeRecord>(NODE_PREFIX)).map((v) => v.value);
  }

  async getNode(id: string): Promise<Versioned<NodeRecord> | undefined> {
    return this.read<NodeRecord>(NODE_PREFIX + id);
  }

  /** Replaces a node's record if it is still at `revision` (RevisionConflictError if not). */
  async updateNode(rec: NodeRecord, revision: number): Promise<number> {
    return this.casPut(NODE_PREFIX + rec.id, rec, revision);
  }

  async listMoves(): Promise<Versioned<MoveRecord>[]> {
    return this.readAll<MoveRecord>(MOVE_PREFIX);
  }

  async getMove(id: string): Promise<Versioned<MoveRecord> | undefined> {
    return this.read<MoveRecord>(MOVE_PREFIX + id);
  }

  /** Writes a move: created when `revision` is null, else replaced if still at `revision`. */
  async putMove(rec: MoveRecord, revision: number | null): Promise<number> {
    return this.casPut(MOVE_PREFIX + rec.id, rec, revision);
  }

  /** Deletes a move if it is still at `revision`. */
  async deleteMove(id: string, revision: number): Promise<boolean> {
    return this.casDelete(MOVE_PREFIX + id, revision);
  }

  async getControl<T>(key: 'coordinator' | 'rebalance'): Promise<Versioned<T> | undefined> {
    return this.read<T>(key);
  }

  /** Writes `coordinator` or `rebalance`: created when `revision` is null, else replaced if still at `revision`. */
  async putControl(key: 'coordinator' | 'rebalance', value: unknown, revision: number | null): Promise<number> {
    return this.casPut(key, value, revision);
  }

  private async casPut(key: string, value: unknown, revision: number | null): Promise<number> {
    try {
      return revision === null ? await this.kv.create(key, JSON.stringify(value)) : await this.kv.update(key, JSON.stringify(value), revision);
    } catch (err) {
      if (isWrongRevision(err)) throw new RevisionConflictError(`${key} changed concurrently (it is no longer at revision ${String(revision)})`, { cause: err });
      throw new UnavailableError(`metadata write failed: ${describeError(err)}`, { cause: err });
    }
  }

  private async casDelete(key: string, revision: number): Promise<boolean> {
    try {
      await this.kv.delete(key, { previousSeq: revision });
      return true;
    } catch (err) {
      if (isWrongRevision(err)) return false;
      throw new UnavailableError(`metadata write failed: ${describeError(err)}`, { cause: err });
    }
  }

  /** The bucket's latest revision: it grows with every metadata change. */
  async epoch(): Promise<number> {
    const status = await this.kv.status();
    return Number((status as unknown as { streamInfo: { state: { last_seq: number } } }).streamInfo.state.last_seq);
  }

  /**
   * Calls `onEvent` with every current record and then every change, in revision order, until
   * the returned function is called. A watch that breaks is re-established from the revision
   * after the last one delivered, so no change is lost or delivered twice; the failure is logged
   * and passed to `opts.onError`.
   */
  async watch(onEvent: (ev: MetadataEvent) => void, opts: WatchOptions = {}): Promise<() => void> {
    // One filter on every key: several filters need nats-server 2.10, and Debian's is 2.9.
    let iter: QueuedIterator<KvWatchEntry> = await this.kv.watch({ key: '>' });
    let stopped = false;
    // the last revision delivered, of any key: where a re-established watch resumes
    let revision = 0;
    let stuck: Error | undefined;
    const report = (err: unknown, msg: string): void => {
      this.log.warn(msg, { bucket: this.bucket, revision, error: describeError(err) });
      try {
        opts.onError?.(err);
      } catch {
        // the caller's reporter failing must not stop the watch
      }
    };

    // A consumer deleted under the watch makes no error: the watch just goes quiet.
    let bucketWas = 0;
    const checkEveryMs = opts.checkEveryMs ?? WATCH_CHECK_MS;
    const check = setInterval(() => {
      const watched = iter;
      this.epoch().then(
        (now) => {
          if (stopped || watched !== iter) return;
          if (revision < bucketWas) {
            stuck = new UnavailableError(`the metadata watch is at revision ${revision}; the bucket was at ${bucketWas} ${checkEveryMs} ms ago`);
            bucketWas = 0;
            iter.stop();
            return;
          }
          bucketWas = now;
        },
        // the server is unreachable: nothing to compare, and the client reconnects by itself
        () => undefined,
      );
    }, checkEveryMs);
    check.unref();

    let backoff = WATCH_RETRY_MIN_MS;
    const follow = async (): Promise<unknown> => {
      try {
        for await (const e of iter) {
          backoff = WATCH_RETRY_MIN_MS;
          if (e.revision <= revision) continue;
          revision = e.revision;
          try {
            const ev = toEvent(e);
            if (ev) onEvent(ev);
          } catch (err) {
            report(new InternalError(`metadata change ${e.key} at revision ${e.revision} could not be delivered: ${describeError(err)}`, { cause: err }), 'a metadata change could not be delivered; skipped');
          }
        }
        return stuck ?? new UnavailableError('the metadata watch ended');
      } catch (err) {
        return err;
      } finally {
        stuck = undefined;
      }
    };
    const resume = async (): Promise<boolean> => {
      for (;;) {
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, WATCH_RETRY_MAX_MS);
        if (stopped || this.nc.isClosed()) return false;
        try {
          iter = await this.kv.watch(revision > 0 ? { key: '>', resumeFromRevision: revision + 1 } : { key: '>' });
          bucketWas = 0;
          if (stopped) iter.stop();
          return true;
        } catch (err) {
          report(err, 'cannot re-establish the metadata watch; trying again');
        }
      }
    };
    void (async () => {
      do {
        const failure = await follow();
        if (stopped) break;
        if (this.nc.isClosed()) {
          report(new UnavailableError('the NATS connection is closed', { cause: failure }), 'the metadata watch stopped');
          break;
        }
        report(failure, 'the metadata watch broke; re-establishing it');
      } while (await resume());
      clearInterval(check);
    })();
    return () => {
      stopped = true;
      clearInterval(check);
      iter.stop();
    };
  }

  private async read<T>(key: string): Promise<Versioned<T> | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== 'PUT') return undefined;
    return { value: e.json<T>(), revision: e.revision };
  }

  private async readAll<T>(prefix: string): Promise<Versioned<T>[]> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys(`${prefix}>`)) keys.push(k);
    keys.sort();
    const out: Versioned<T>[] = [];
    for (const k of keys) {
      const v = await this.read<T>(k);
      if (v) out.push(v);
    }
    return out;
  }
}

/**
 * Runs `fn` until it succeeds, for a node starting: JetStream may not answer yet (a NATS cluster
 * still electing its JetStream leader, or the bucket's stream its leader: a request then times
 * out). Says what it waits for at once and every {@link WAIT_LOG_EVERY_MS} after, backs off from
 * 100 ms to 2 s between tries, and gives up only when the connection closes.
 */
export async function whenJetStreamAnswers<T>(nc: NatsConnection, what: string, log: Logger, fields: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  let delay = 100;
  let lastLog = -Infinity;
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await fn();
      if (attempt > 1) log.info(`JetStream answers: ${what.replace(/ \(.*\)$/, '')}`, { ...fields, attempts: attempt });
      return result;
    } catch (err) {
      if (nc.isClosed()) throw err;
      if (Date.now() - lastLog >= WAIT_LOG_EVERY_MS) {
        lastLog = Date.now();
        log.warn(`waiting for JetStream to ${what}`, { ...fields, attempts: attempt, error: describeError(err) });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2_000);
    }
  }
}

function toEvent(e: KvEntry): MetadataEvent | undefined {
  const live = e.operation === 'PUT';
  if (e.key.startsWith(COLLECTION_PREFIX)) {
    return { kind: 'collection', name: e.key.slice(COLLECTION_PREFIX.length), record: live ? e.json<CollectionRecord>() : null, revision: e.revision };
  }
  if (e.key.startsWith(NODE_PREFIX)) {
    return { kind: 'node', id: e.key.slice(NODE_PREFIX.length), record: live ? e.json<NodeRecord>() : null, revision: e.revision };
  }
  if (e.key.startsWith(MOVE_PREFIX)) {
    return { kind: 'move', id: e.key.slice(MOVE_PREFIX.length), record: live ? e.json<MoveRecord>() : null, revision: e.revision };
  }
  if (CONTROL_KEYS.has(e.key)) {
    return { kind: 'control', key: e.key as 'coordinator' | 'rebalance', value: live ? e.json<unknown>() : null, revision: e.revision };
  }
  return undefined;
}

/** The server refused a write whose expected last revision of the key was not the key's (JetStream API error 10071, or 10164 on newer servers): how @nats-io/kv itself recognises a lost compare-and-set. */
function isWrongRevision(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}
