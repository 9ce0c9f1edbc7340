/**
 * The public API's requests and replies (PROTOCOL.md), as validated values. Validation
 * (validate-*.ts) turns untrusted bodies into these or throws an error naming the field.
 */
export type Metric = 'cosine' | 'l2' | 'ip';
export type Consistency = 'strong' | 'leased' | 'eventual';
export type WriteConcern = 'majority' | 'all' | 'leader';

export const METRICS: readonly Metric[] = ['cosine', 'l2', 'ip'];
export const CONSISTENCIES: readonly Consistency[] = ['strong', 'leased', 'eventual'];
export const WRITE_CONCERNS: readonly WriteConcern[] = ['majority', 'all', 'leader'];

export type ShardingStrategy = 'consistent-hash' | 'hash' | 'range' | 'custom';
export const SHARDING_STRATEGIES: readonly ShardingStrategy[] = ['consistent-hash', 'hash', 'range', 'custom'];

export type ShardingConfig =
  | { strategy: 'consistent-hash'; vnodes: number }
  | { strategy: 'hash' }
  | { strategy: 'range'; boundaries: string[] }
  | { strategy: 'custom'; vnodes: number };

/** The types a declared metadata index may have (PROTOCOL.md, collections.create `indexes`). */
export type IndexedFieldType = 'keyword' | 'integer' | 'float' | 'bool';
export const INDEXED_FIELD_TYPES: readonly IndexedFieldType[] = ['keyword', 'integer', 'float', 'bool'];

export interface HnswParams {
  m: number;
  efConstruction: number;
  ef: number;
}

/** A collection's settings, as given at create (defaults filled in). */
export interface CollectionSpec {
  name: string;
  dim: number;
  metric: Metric;
  shards: number;
  replicas: number;
  sharding: ShardingConfig;
  hnsw: HnswParams;
  /** Publish every committed write to the JetStream stream `SHOAL_CHANGES_<name>` (docs/changes.md). Absent in records written before change streams: false. */
  changeStream?: boolean;
  /** Declared metadata indexes, dotted field → type; absent when none (and in records written before indexes existed). */
  indexes?: Record<string, IndexedFieldType>;
}

export type Metadata = Record<string, unknown>;

export interface PointInput {
  id: string;
  vector: Float32Array;
  metadata?: Metadata;
  shardKey?: string;
}

export interface UpsertRequest {
  points: PointInput[];
  writeConcern: WriteConcern;
  requestId?: string;
  timeoutMs: number;
}

export interface DeleteRequest {
  ids: string[];
  writeConcern: WriteConcern;
  requestId?: string;
  timeoutMs: number;
}

export interface GetRequest {
  /** Distinct ids, in request order (a repeated id is kept at its first position). */
  ids: string[];
  consistency: Consistency;
  withVector: boolean;
  withMetadata: boolean;
  timeoutMs: number;
}

export interface SearchRequest {
  vector: Float32Array;
  k: number;
  ef?: number;
  /** The filter as given; the index layer parses and validates it. */
  filter?: unknown;
  consistency: Consistency;
  withVector: boolean;
  withMetadata: boolean;
  shardKeys?: string[];
  /** Reply with what each shard's index chose (docs/protocol.md, search `explain`). */
  explain?: boolean;
  timeoutMs: number;
}

export interface SearchBatchRequest {
  queries: SearchRequest[];
  timeoutMs: number;
}

export interface CountRequest {
  consistency: Consistency;
  timeoutMs: number;
}

export interface Hit {
  id: string;
  distance: number;
  vector?: Float32Array | number[];
  metadata?: Metadata;
}

export interface Point {
  id: string;
  vector?: Float32Array | number[];
  metadata?: Metadata;
}

export interface Coverage {
  shards: number;
  answered: number;
  failed: { shard: number; reason: 'TIMEOUT' | 'UNAVAILABLE' | 'INTERNAL' }[];
}

export interface SearchReply {
  hits: Hit[];
  coverage: Coverage;
  partial: boolean;
  /** With `explain`: per shard that answered, in shard order, what its index chose (docs/protocol.md). */
  explain?: SearchExplainEntry[];
}

/** One shard's plan for a search (docs/protocol.md, search `explain`). */
export interface SearchExplainEntry {
  shard: number;
  /** `exact`: the matches (or every point of a small shard) scored one by one; `hnsw`: the graph; `hnsw-postfilter`: the graph without the filter, for enough nearest points that ~2k match, k kept; `hnsw-filtered`: the graph, keeping only matches. */
  plan: 'exact' | 'hnsw' | 'hnsw-filtered' | 'hnsw-postfilter';
  /** The shard's points that match the filter (all of them without one). */
  matches: number;
  /** The shard's points. */
  points: number;
  /** The shard counted the matches from its field indexes (postings, declared numeric fields) without reading every point; true without a filter. */
  indexed: boolean;
  /** Present (true) when the shard first tried `hnsw-postfilter`, found fewer than k matches among its candidates, and planned again: `plan` is the plan it answered with. */
  fellBack?: true;
}

/** One shard in a describe reply. */
export interface ShardDescription {
  shard: number;
  /** null while the shard elects a leader */
  leader: string | null;
  term: number;
  commitIndex: number;
  count: number;
  replicas: { node: string; role: 'leader' | 'follower' | 'learner' | 'down'; matchIndex: number; lagMs: number | null }[];
}

/** The describe reply's `collection` (also create's reply). */
export interface CollectionDescription extends Omit<CollectionSpec, 'shards'> {
  count: number;
  shards: ShardDescription[];
  /** The reshard running (PROTOCOL.md, collections.reshard), or null. */
  resharding?: { from: number; to: number; phase: string; progress: number } | null;
}
