/**
 * Evaluates a parsed {@link Filter} against a point's metadata with MongoDB's semantics
 * (PROTOCOL.md): equality with an array field means "contains"; `null` matches a missing field;
 * `$ne`/`$nin` match a missing field; comparisons across types match nothing.
 */
import type { Filter, Scalar } from './filter-parse.js';
import type { Metadata } from './types.js';
import { compareUtf8 } from './utf8.js';

/** The value at a dotted path, walking plain objects only; `undefined` when missing. */
export function resolvePath(metadata: Metadata | undefined, path: readonly string[]): unknown {
  let v: unknown = metadata;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(v, seg)) return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

function eq(field: unknown, value: Scalar): boolean {
  if (value === null) {
    return field === undefined || field === null || (Array.isArray(field) && field.includes(null));
  }
  if (field === value) return true;
  return Array.isArray(field) && field.includes(value);
}

function compareOne(field: unknown, op: 'gt' | 'gte' | 'lt' | 'lte', value: number | string): boolean {
  let c: number;
  if (typeof value === 'number' && typeof field === 'number') c = field < value ? -1 : field > value ? 1 : 0;
  else if (typeof value === 'string' && typeof field === 'string') c = compareUtf8(field, value);
  else return false;
  switch (op) {
    case 'gt':
      return c > 0;
    case 'gte':
      return c >= 0;
    case 'lt':
      return c < 0;
    case 'lte':
      return c <= 0;
  }
}

/** True when `metadata` satisfies `filter`. */
export function matches(filter: Filter, metadata: Metadata | undefined): boolean {
  switch (filter.op) {
    case 'all':
      return true;
    case 'and':
      return filter.children.every((c) => matches(c, metadata));
    case 'or':
      return filter.children.some((c) => matches(c, metadata));
    case 'not':
      return !matches(filter.child, metadata);
    case 'eq':
      return eq(resolvePath(metadata, filter.path), filter.value);
    case 'ne':
      return !eq(resolvePath(metadata, filter.path), filter.value);
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const f = resolvePath(metadata, filter.path);
      const op = filter.op;
      return Array.isArray(f) ? f.some((e) => compareOne(e, op, filter.value)) : compareOne(f, op, filter.value);
    }
    case 'in': {
      const f = resolvePath(metadata, filter.path);
      return filter.values.some((v) => eq(f, v));
    }
    case 'nin': {
      const f = resolvePath(metadata, filter.path);
      return !filter.values.some((v) => eq(f, v));
    }
    case 'exists':
      return (resolvePath(metadata, filter.path) !== undefined) === filter.value;
    default: {
      const never: never = filter;
      throw new Error(`unknown filter op ${JSON.stringify(never)}`);
    }
  }
}
