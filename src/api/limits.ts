/** The documented limits of the public API (PROTOCOL.md), with their defaults. */

export const LIMITS = {
  dimMin: 1,
  dimMax: 4096,
  shardsMin: 1,
  shardsMax: 256,
  replicasMin: 1,
  replicasMax: 7,
  pointsPerUpsert: 10_000,
  idsPerRequest: 10_000,
  queriesPerBatch: 100,
  idMaxBytes: 256,
  requestIdMaxBytes: 128,
  shardKeyMaxBytes: 256,
  metadataMaxBytes: 64 * 1024,
  metadataMaxDepth: 32,
  kMin: 1,
  kMax: 1000,
  efMax: 10_000,
  timeoutMsMin: 1,
  timeoutMsMax: 60_000,
  vnodesMin: 1,
  vnodesMax: 1024,
  hnswMMin: 2,
  hnswMMax: 128,
  efConstructionMin: 4,
  efConstructionMax: 4096,
  collectionNameMaxLength: 64,
  /** Declared metadata indexes per collection (collections.create `indexes`). */
  indexesMax: 32,
  /** Dotted segments of an indexed field: the depth the index's postings reach (src/index/field-indexes.ts, POSTING_MAX_DEPTH). */
  indexFieldMaxSegments: 4,
  /** Bytes of a field name, as in filters (src/index/filter-parse.ts, FILTER_LIMITS.maxFieldBytes). */
  fieldNameMaxBytes: 256,
} as const;

export const DEFAULTS = {
  metric: 'cosine',
  shards: 1,
  replicas: 3,
  vnodes: 128,
  hnswM: 16,
  hnswEfConstruction: 200,
  hnswEf: 64,
  k: 10,
  timeoutMs: 5_000,
  consistency: 'leased',
  writeConcern: 'majority',
} as const;
