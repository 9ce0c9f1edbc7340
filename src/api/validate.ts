/**
 * Validation of every public request of PROTOCOL.md. Collection-independent checks come first;
 * data requests are then checked against the collection they address (dimension, metric,
 * sharding). A request that fails never reaches a shard.
 */
import { isWellFormedUnicode } from '../index/utf8.js';
import { InvalidArgumentError } from '../runtime/errors.js';
import * as f from './fields.js';
import { DEFAULTS, LIMITS } from './limits.js';
import {
  CONSISTENCIES,
  INDEXED_FIELD_TYPES,
  METRICS,
  SHARDING_STRATEGIES,
  WRITE_CONCERNS,
  type CollectionSpec,
  type CountRequest,
  type DeleteRequest,
  type GetRequest,
  type IndexedFieldType,
  type PointInput,
  type SearchBatchRequest,
  type SearchRequest,
  type ShardingConfig,
  type UpsertRequest,
} from './types.js';

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Whether `name` is a collection name a client may use (not reserved). */
export function isValidCollectionName(name: string): boolean {
  return NAME_RE.test(name) && name !== 'admin' && !name.startsWith('_');
}

export function collectionName(v: unknown, path = 'name'): string {
  if (typeof v !== 'string') throw new InvalidArgumentError(`${path} must be a string, got ${f.describeType(v)}`);
  if (!NAME_RE.test(v)) throw new InvalidArgumentError(`${path} ${f.quoted(v)} must match ^[A-Za-z0-9_-]{1,64}$`);
  if (v === 'admin' || v.startsWith('_')) throw new InvalidArgumentError(`${path} '${v}' is reserved ('admin' and names starting with _)`);
  return v;
}

const CREATE_FIELDS = ['name', 'dim', 'metric', 'shards', 'replicas', 'sharding', 'hnsw', 'changeStream', 'indexes', 'timeoutMs'] as const;

export function validateCreate(raw: unknown): CollectionSpec & { timeoutMs: number } {
  const b = f.body(raw, 'collections.create', CREATE_FIELDS);
  const name = collectionName(b['name']);
  if (b['dim'] === undefined) throw new InvalidArgumentError('dim is required (1 to 4096)');
  const dim = f.integer(b['dim'], 'dim', LIMITS.dimMin, LIMITS.dimMax);
  const metric = f.oneOf(b['metric'], 'metric', METRICS, DEFAULTS.metric);
  const shards = f.optionalInteger(b['shards'], 'shards', LIMITS.shardsMin, LIMITS.shardsMax, DEFAULTS.shards);
  const replicas = f.optionalInteger(b['replicas'], 'replicas', LIMITS.replicasMin, LIMITS.replicasMax, DEFAULTS.replicas);
  const sharding = shardingConfig(b['sharding'], shards);
  const h = b['hnsw'] === undefined ? {} : f.object(b['hnsw'], 'hnsw', ['m', 'efConstruction', 'ef']);
  const hnsw = {
    m: f.optionalInteger(h['m'], 'hnsw.m', LIMITS.hnswMMin, LIMITS.hnswMMax, DEFAULTS.hnswM),
    efConstruction: f.optionalInteger(h['efConstruction'], 'hnsw.efConstruction', LIMITS.efConstructionMin, LIMITS.efConstructionMax, DEFAULTS.hnswEfConstruction),
    ef: f.optionalInteger(h['ef'], 'hnsw.ef', 1, LIMITS.efMax, DEFAULTS.hnswEf),
  };
  const changeStream = f.boolean(b['changeStream'], 'changeStream', false);
  const indexes = indexesConfig(b['indexes']);
  return { name, dim, metric, shards, replicas, sharding, hnsw, changeStream, ...(indexes ? { indexes } : {}), timeoutMs: f.timeoutMs(b['timeoutMs']) };
}

/**
 * `indexes` of collections.create: at most {@link LIMITS.indexesMax} fields, each named as a
 * filter names it (dotted segments reach into nested objects) with at most
 * {@link LIMITS.indexFieldMaxSegments} segments, each typed `keyword`, `integer`, `float` or
 * `bool`. Absent or empty: undefined.
 */
function indexesConfig(v: unknown): Record<string, IndexedFieldType> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!f.isPlainObject(v)) throw new InvalidArgumentError(`indexes must be an object of field: type (${INDEXED_FIELD_TYPES.join(', ')}), got ${f.describeType(v)}`);
  const fields = Object.keys(v);
  if (fields.length > LIMITS.indexesMax) throw new InvalidArgumentError(`indexes has ${fields.length} fields; at most ${LIMITS.indexesMax} may be indexed`);
  if (fields.length === 0) return undefined;
  const out: Record<string, IndexedFieldType> = {};
  for (const field of fields.sort()) {
    const at = `indexes.${field.length > 64 ? f.quoted(field) : field}`;
    const segments = field.split('.');
    if (field.length === 0 || f.utf8Length(field) > LIMITS.fieldNameMaxBytes || segments.some((s) => s.length === 0)) {
      throw new InvalidArgumentError(`${at}: a field name must be non-empty dotted segments of at most ${LIMITS.fieldNameMaxBytes} bytes`);
    }
    if (!isWellFormedUnicode(field) || segments.includes('__proto__')) {
      throw new InvalidArgumentError(`${at}: a field name must be valid Unicode and no segment may be '__proto__'`);
    }
    if (segments.length > LIMITS.indexFieldMaxSegments) {
      throw new InvalidArgumentError(`${at} has ${segments.length} dotted segments; an indexed field has at most ${LIMITS.indexFieldMaxSegments}`);
    }
    const type = (v as Record<string, unknown>)[field];
    if (typeof type !== 'string' || !(INDEXED_FIELD_TYPES as readonly string[]).includes(type)) {
      throw new InvalidArgumentError(`${at} must be one of ${INDEXED_FIELD_TYPES.join(', ')}, got ${typeof type === 'string' ? f.quoted(type) : f.describeType(type)}`);
    }
    out[field] = type as IndexedFieldType;
  }
  return out;
}

function shardingConfig(v: unknown, shards: number): ShardingConfig {
  if (v === undefined) return { strategy: 'consistent-hash', vnodes: DEFAULTS.vnodes };
  const s = f.object(v, 'sharding', ['strategy', 'vnodes', 'boundaries']);
  const strategy = f.oneOf(s['strategy'], 'sharding.strategy', SHARDING_STRATEGIES, 'consistent-hash');
  if (strategy !== 'range' && s['boundaries'] !== undefined) {
    throw new InvalidArgumentError(`sharding.boundaries is only for the 'range' strategy, not '${strategy}'`);
  }
  if ((strategy === 'hash' || strategy === 'range') && s['vnodes'] !== undefined) {
    throw new InvalidArgumentError(`sharding.vnodes is only for 'consistent-hash' and 'custom', not '${strategy}'`);
  }
  switch (strategy) {
    case 'consistent-hash':
    case 'custom':
      return { strategy, vnodes: f.optionalInteger(s['vnodes'], 'sharding.vnodes', LIMITS.vnodesMin, LIMITS.vnodesMax, DEFAULTS.vnodes) };
    case 'hash':
      return { strategy };
    case 'range': {
      const raw = f.list(s['boundaries'] ?? [], 'sharding.boundaries', LIMITS.shardsMax);
      if (raw.length !== shards - 1) {
        throw new InvalidArgumentError(`sharding.boundaries must have exactly shards - 1 = ${shards - 1} strings, got ${raw.length}`);
      }
      const boundaries = raw.map((x, i) => f.string(x, `sharding.boundaries[${i}]`, LIMITS.idMaxBytes));
      for (let i = 1; i < boundaries.length; i++) {
        if (Buffer.compare(Buffer.from(boundaries[i - 1] as string), Buffer.from(boundaries[i] as string)) >= 0) {
          throw new InvalidArgumentError(`sharding.boundaries must be strictly increasing (by UTF-8 bytes): [${i - 1}] '${boundaries[i - 1]}' is not below [${i}] '${boundaries[i]}'`);
        }
      }
      return { strategy, boundaries };
    }
  }
}

/** `{name}` bodies: describe and drop. */
export function validateNamed(raw: unknown, what: string): { name: string; timeoutMs: number } {
  const b = f.body(raw, what, ['name', 'timeoutMs']);
  if (b['name'] === undefined) throw new InvalidArgumentError('name is required');
  return { name: collectionName(b['name']), timeoutMs: f.timeoutMs(b['timeoutMs']) };
}

/** Bodies without fields: list, status, health. */
export function validateEmpty(raw: unknown, what: string): { timeoutMs: number } {
  const b = f.body(raw, what, ['timeoutMs']);
  return { timeoutMs: f.timeoutMs(b['timeoutMs']) };
}

function requestId(v: unknown): string | undefined {
  return v === undefined ? undefined : f.string(v, 'requestId', LIMITS.requestIdMaxBytes);
}

export function validateUpsert(raw: unknown, c: CollectionSpec): UpsertRequest {
  const b = f.body(raw, 'upsert', ['points', 'writeConcern', 'requestId', 'timeoutMs']);
  const rawPoints = f.list(b['points'] ?? [], 'points', LIMITS.pointsPerUpsert);
  const points = rawPoints.map((p, i) => validatePoint(p, `points[${i}]`, c));
  const out: UpsertRequest = {
    points,
    writeConcern: f.oneOf(b['writeConcern'], 'writeConcern', WRITE_CONCERNS, DEFAULTS.writeConcern),
    timeoutMs: f.timeoutMs(b['timeoutMs']),
  };
  const rid = requestId(b['requestId']);
  if (rid !== undefined) out.requestId = rid;
  return out;
}

/**
 * One point of an upsert, checked against its collection exactly as the cluster checks it (the
 * CLI checks each line of a file with this before sending, so it can name the line).
 */
export function validatePoint(v: unknown, path: string, c: CollectionSpec): PointInput {
  const p = f.object(v, path, ['id', 'vector', 'metadata', 'shardKey']);
  const id = f.string(p['id'], `${path}.id`, LIMITS.idMaxBytes);
  const vec = f.vector(p['vector'], `${path}.vector`, c.dim);
  if (c.metric === 'cosine' && vec.every((x) => x === 0)) {
    throw new InvalidArgumentError(`${path}.vector is all zeros, which has no direction under the cosine metric`);
  }
  const out: PointInput = { id, vector: vec };
  if (p['metadata'] !== undefined && p['metadata'] !== null) out.metadata = f.metadata(p['metadata'], `${path}.metadata`);
  if (c.sharding.strategy === 'custom') {
    if (p['shardKey'] === undefined) throw new InvalidArgumentError(`${path}.shardKey is required: collection '${c.name}' uses custom sharding`);
    out.shardKey = f.string(p['shardKey'], `${path}.shardKey`, LIMITS.shardKeyMaxBytes);
  } else if (p['shardKey'] !== undefined) {
    throw new InvalidArgumentError(`${path}.shardKey is only for collections with custom sharding; '${c.name}' uses ${c.sharding.strategy}`);
  }
  return out;
}

function ids(v: unknown): string[] {
  const raw = f.list(v ?? [], 'ids', LIMITS.idsPerRequest);
  return raw.map((x, i) => f.string(x, `ids[${i}]`, LIMITS.idMaxBytes));
}

export function validateDelete(raw: unknown): DeleteRequest {
  const b = f.body(raw, 'delete', ['ids', 'writeConcern', 'requestId', 'timeoutMs']);
  const out: DeleteRequest = {
    ids: ids(b['ids']),
    writeConcern: f.oneOf(b['writeConcern'], 'writeConcern', WRITE_CONCERNS, DEFAULTS.writeConcern),
    timeoutMs: f.timeoutMs(b['timeoutMs']),
  };
  const rid = requestId(b['requestId']);
  if (rid !== undefined) out.requestId = rid;
  return out;
}

export function validateGet(raw: unknown): GetRequest {
  const b = f.body(raw, 'get', ['ids', 'consistency', 'withVector', 'withMetadata', 'timeoutMs']);
  return {
    ids: [...new Set(ids(b['ids']))],
    consistency: f.oneOf(b['consistency'], 'consistency', CONSISTENCIES, DEFAULTS.consistency),
    withVector: f.boolean(b['withVector'], 'withVector', true),
    withMetadata: f.boolean(b['withMetadata'], 'withMetadata', true),
    timeoutMs: f.timeoutMs(b['timeoutMs']),
  };
}

const SEARCH_FIELDS = ['vector', 'k', 'filter', 'ef', 'consistency', 'withVector', 'withMetadata', 'shardKeys', 'explain', 'timeoutMs'] as const;

export function validateSearch(raw: unknown, c: CollectionSpec, path = ''): SearchRequest {
  const b = path ? f.object(raw, path.slice(0, -1), SEARCH_FIELDS) : f.body(raw, 'search', SEARCH_FIELDS);
  if (b['vector'] === undefined) throw new InvalidArgumentError(`${path}vector is required`);
  const vec = f.vector(b['vector'], `${path}vector`, c.dim);
  const k = f.optionalInteger(b['k'], `${path}k`, LIMITS.kMin, LIMITS.kMax, DEFAULTS.k);
  const out: SearchRequest = {
    vector: vec,
    k,
    consistency: f.oneOf(b['consistency'], `${path}consistency`, CONSISTENCIES, DEFAULTS.consistency),
    withVector: f.boolean(b['withVector'], `${path}withVector`, false),
    withMetadata: f.boolean(b['withMetadata'], `${path}withMetadata`, true),
    timeoutMs: f.timeoutMs(b['timeoutMs']),
  };
  if (c.metric === 'cosine' && vec.every((x) => x === 0)) {
    throw new InvalidArgumentError(`${path}vector is all zeros, which has no direction under the cosine metric`);
  }
  if (b['ef'] !== undefined) out.ef = f.integer(b['ef'], `${path}ef`, k, LIMITS.efMax);
  if (f.boolean(b['explain'], `${path}explain`, false)) out.explain = true;
  if (b['filter'] !== undefined && b['filter'] !== null) out.filter = b['filter'];
  if (b['shardKeys'] !== undefined) {
    if (c.sharding.strategy !== 'custom') {
      throw new InvalidArgumentError(`${path}shardKeys is only for collections with custom sharding; '${c.name}' uses ${c.sharding.strategy}`);
    }
    const keys = f.list(b['shardKeys'], `${path}shardKeys`, LIMITS.idsPerRequest);
    if (keys.length === 0) throw new InvalidArgumentError(`${path}shardKeys must not be empty (omit it to search every shard)`);
    out.shardKeys = keys.map((x, i) => f.string(x, `${path}shardKeys[${i}]`, LIMITS.shardKeyMaxBytes));
  }
  return out;
}

export function validateSearchBatch(raw: unknown, c: CollectionSpec): SearchBatchRequest {
  const b = f.body(raw, 'search-batch', ['queries', 'timeoutMs']);
  const queries = f.list(b['queries'] ?? [], 'queries', LIMITS.queriesPerBatch);
  const timeoutMs = f.timeoutMs(b['timeoutMs']);
  return { queries: queries.map((q, i) => validateSearch(q, c, `queries[${i}].`)), timeoutMs };
}

export function validateCount(raw: unknown): CountRequest {
  const b = f.body(raw, 'count', ['consistency', 'timeoutMs']);
  return {
    consistency: f.oneOf(b['consistency'], 'consistency', CONSISTENCIES, DEFAULTS.consistency),
    timeoutMs: f.timeoutMs(b['timeoutMs']),
  };
}

/** Two specs describe the same collection (create is idempotent only for equal settings). */
export function sameSettings(a: CollectionSpec, b: CollectionSpec): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(s: CollectionSpec): unknown {
  const indexes = Object.entries(s.indexes ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return [s.name, s.dim, s.metric, s.shards, s.replicas, s.sharding, s.hnsw.m, s.hnsw.efConstruction, s.hnsw.ef, s.changeStream === true, indexes];
}
