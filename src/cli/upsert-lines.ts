/**
 * The lines of an `upsert --file`: each parsed and checked against the collection's settings
 * before it is sent (the cluster's own point validation, so what passes here passes there), and a
 * cluster's rejection of a batch (`points[200].vector …`) turned back into the line it came from.
 */
import type { CollectionDescription, UpsertPoint } from '../client/client.js';
import type { CollectionSpec } from '../api/types.js';
import { validatePoint } from '../api/validate.js';
import { InvalidArgumentError, ShoalError, describeError, errorFromCode } from '../runtime/errors.js';

/** The settings a point is checked against, from a collection's describe reply. */
export function specOf(d: CollectionDescription): CollectionSpec {
  return { name: d.name, dim: d.dim, metric: d.metric, shards: d.shards.length, replicas: d.replicas, sharding: d.sharding, hnsw: d.hnsw };
}

/** A bad line of the input: its number and what is wrong with it (`vector has 3 dimensions; …`). */
export class LineError extends InvalidArgumentError {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
    this.name = 'LineError';
  }
}

/** The point of line `line` (1-based), or a {@link LineError} saying what is wrong with it. */
export function parseLine(text: string, line: number, spec: CollectionSpec): UpsertPoint {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new LineError(line, `not valid JSON (${describeError(err)})`);
  }
  try {
    validatePoint(raw, 'point', spec);
  } catch (err) {
    throw new LineError(line, withoutPath(describeError(err), 'point'));
  }
  // sent as read: the vector as the numbers of the line, not the Float32Array validation made
  return raw as UpsertPoint;
}

/** `point.vector has 3 dimensions` → `vector has 3 dimensions`; `point must be an object` stays. */
function withoutPath(message: string, path: string): string {
  return message.startsWith(`${path}.`) ? message.slice(path.length + 1) : message;
}

const POINT_REF = /^points\[(\d+)\]\.?/;

/**
 * A cluster error about one point of a batch, as a {@link LineError} naming its line: `lines[i]` is
 * the line of the batch's point i. Undefined when the error names no point of the batch (it is
 * about the batch as a whole: size, a deadline, an unavailable shard).
 */
export function lineErrorOf(err: unknown, lines: readonly number[]): LineError | undefined {
  if (!(err instanceof ShoalError) || err.code !== 'INVALID_ARGUMENT') return undefined;
  const m = POINT_REF.exec(err.message);
  const line = m ? lines[Number(m[1])] : undefined;
  if (!m || line === undefined) return undefined;
  const rest = err.message.slice(m[0].length);
  return new LineError(line, m[0].endsWith('.') ? rest : `point${rest}`);
}

/** `err` with `suffix` added to its message, keeping its class (and so its code and exit code). */
export function withContext(err: unknown, suffix: string): unknown {
  if (err instanceof ShoalError) return errorFromCode(err.code, `${err.message}${suffix}`, { cause: err });
  if (err instanceof Error) {
    err.message += suffix;
    return err;
  }
  return new Error(`${String(err)}${suffix}`);
}
