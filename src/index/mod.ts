/** The vector index (DESIGN.md, `src/index/`): the public surface of this folder. */
export type { Hit, HnswParams, IndexedFields, IndexedFieldType, IndexPoint, Metadata, Metric, SearchExplain, SearchPlan, SearchQuery, VectorIndex } from './types.js';
export { INDEXED_FIELD_TYPES, METRICS } from './types.js';
export { distance } from './distance.js';
export { compareUtf8 } from './utf8.js';
export { FILTER_LIMITS, parseFilter, type Filter, type Scalar } from './filter-parse.js';
export { matches } from './filter-match.js';
export { FlatIndex } from './flat-index.js';
export { DEFAULT_EXACT_BUDGET, DEFAULT_FILTERED_GRAPH_COST, DEFAULT_SEED, GRAPH_FILE, HnswIndex, TABLE_FILE, type HnswIndexOptions } from './hnsw-index.js';
export { checkSums, SUMS_FILE } from './file-sums.js';
export { DEFAULT_WORKER_NICE, IndexHost, POINTS_PER_MESSAGE, SEARCHES_PER_MESSAGE, WorkerIndex, type IndexHostOptions } from './index-host.js';
export type { ExplainedHits, IndexKind, IndexStep, WorkerMemory } from './index-protocol.js';
export { checkVector, MAX_DIM, MAX_K } from './validate.js';
