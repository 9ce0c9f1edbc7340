/**
 * Where an index reads its vectors when it keeps no copy of its own (issue 21: a point costs what
 * its graph costs). The graph holds every vector too, but hnswlib-node hands one out only as a
 * plain number array (~47 µs for 784 dims, measured), and for `cosine` only normalised; so the
 * exact path, `withVector` and `get` read the stored float32 bytes from the shard's LMDB memory
 * map instead (src/storage/points-reader.ts). This folder does not import LMDB (DESIGN.md,
 * layering): the index worker loads the reader's module by the URL its creator names
 * ({@link VectorReaderSpec}).
 */

/** How a worker builds an index's reader: `module` (a URL) exports `createVectorReader(config, dim)`. */
export interface VectorReaderSpec {
  module: string;
  config: Record<string, unknown>;
}

/**
 * A view of the stored vectors, consistent for one read between {@link begin} and {@link end}.
 * `stamp` is the position (a shard's applied log index) the index's own state is at: the store
 * may be ahead of it for a moment (a shard commits a batch to LMDB, then applies it to the
 * index), and then `begin` says so and nothing is read.
 */
export interface VectorReader {
  /** Opens a consistent read; false when the store is not at `stamp` (the read is not opened). */
  begin(stamp: number): boolean;
  /**
   * The vector stored under `id`, valid until the next call (copy it to keep it). With `verify`,
   * the whole stored value's checksum is checked first. Throws CorruptDataError when the value is
   * missing or damaged.
   */
  vector(id: string, verify: boolean): Float32Array;
  end(): void;
  /** Releases what the reader holds (the last reader of an LMDB environment closes it). */
  close(): void;
}

/** Thrown inside the worker when the store is ahead of the index; the caller retries after the index's next apply. */
export class StaleReadError extends Error {
  constructor() {
    super('the vector store is ahead of the index: retry after its next apply');
    this.name = 'StaleReadError';
  }
}
