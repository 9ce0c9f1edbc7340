/**
 * The write-dedup table: the node env's `dedup` sub-database. `[group, 'r', requestId]` holds the
 * first result of a request and its `at`; `[group, 't', at, requestId]` orders entries by `at`
 * so that expiry is a range removal. Entries expire by the commands' own `at` (a leader-assigned
 * timestamp), never by the local clock, so every replica keeps and expires the same entries.
 *
 * Writes are synchronous and run inside an `env.transaction()` callback.
 */
import type { Database, Transaction } from 'lmdb';
import { DB_NAMES, type NodeEnv } from './node-env.js';
import { decodeValue, encodeValue, groupEnd } from './store-codec.js';

/** How long a requestId is remembered, by `at` (PROTOCOL.md: ten minutes). */
export const DEDUP_WINDOW_MS = 10 * 60_000;

export interface DedupEntry<R> {
  result: R;
  at: number;
  /**
   * The ids the request's writes applied here (or that this shard imported with it). After a
   * reshard the same request can bring this shard ids that another shard applied and this one
   * imported, next to ids nobody applied (docs/resharding.md): a retry at a later epoch applies
   * only the ids not listed. Absent in entries written before it existed: every id counts as applied.
   */
  keys?: string[];
  /** The map epoch the request was applied at (absent: 0). See src/shard/dedup-rule.ts for what a retry applies. */
  epoch?: number;
  /** True for an entry a reshard's import wrote (another shard applied the request): it never stands for this shard's own part. */
  imported?: boolean;
}

type Key = (string | number)[];
const EMPTY = Buffer.alloc(0);

export class DedupStore {
  private readonly db: Database<Buffer, Key>;

  constructor(env: NodeEnv) {
    this.db = env.openDB<Buffer, Key>({ name: DB_NAMES.dedup, encoding: 'binary' });
  }

  get<R>(group: string, requestId: string): DedupEntry<R> | undefined {
    const bytes = this.db.get([group, 'r', requestId]);
    return bytes === undefined ? undefined : decodeValue<DedupEntry<R>>(bytes);
  }

  /** Inside a write transaction. */
  put<R>(group: string, requestId: string, entry: DedupEntry<R>): void {
    this.db.putSync([group, 'r', requestId], encodeValue(entry));
    this.db.putSync([group, 't', entry.at, requestId], EMPTY);
  }

  /** Inside a write transaction: forgets every entry whose `at` is below `before`. */
  expire(group: string, before: number): void {
    for (const key of Array.from(this.db.getKeys({ start: [group, 't'], end: [group, 't', before] }))) {
      this.db.removeSync(key);
      this.db.removeSync([group, 'r', key[3] as string]);
    }
  }

  /** Every entry of the group, as `[requestId, entry]`. */
  *entries<R>(group: string, transaction?: Transaction): Iterable<[string, DedupEntry<R>]> {
    for (const { key, value } of this.db.getRange({ start: [group, 'r'], end: [group, 'r\u0000'], ...(transaction ? { transaction } : {}) })) {
      yield [key[2] as string, decodeValue<DedupEntry<R>>(value)];
    }
  }

  /** Inside a write transaction. */
  clear(group: string): void {
    for (const key of Array.from(this.db.getKeys({ start: [group], end: [groupEnd(group)] }))) this.db.removeSync(key);
  }
}
