/**
 * PROTOCOL.md's filter language, parsed once into a {@link Filter} tree. Every error is an
 * `InvalidArgumentError` naming the path of the bad part (`filter.$and[1].year.$gte`), and the
 * tree is bounded in depth and size so that a hostile filter cannot cost unbounded work.
 */
import { InvalidArgumentError } from '../runtime/errors.js';
import { isWellFormedUnicode } from './utf8.js';

export type Scalar = string | number | boolean | null;
export type CompareOp = 'gt' | 'gte' | 'lt' | 'lte';

/** A parsed filter. `field` is the dotted name as written; `path` its segments. */
export type Filter =
  | { op: 'all' }
  | { op: 'and'; children: Filter[] }
  | { op: 'or'; children: Filter[] }
  | { op: 'not'; child: Filter }
  | { op: 'eq' | 'ne'; field: string; path: string[]; value: Scalar }
  | { op: CompareOp; field: string; path: string[]; value: number | string }
  | { op: 'in' | 'nin'; field: string; path: string[]; values: Scalar[] }
  | { op: 'exists'; field: string; path: string[]; value: boolean };

/** Bounds on a filter: nesting of `$and`/`$or`/`$not`, and conditions plus `$in` values in all. */
export const FILTER_LIMITS = {
  maxDepth: 8,
  maxNodes: 1024,
  maxFieldBytes: 256,
} as const;

const COMPARE: Readonly<Record<string, CompareOp>> = { $gt: 'gt', $gte: 'gte', $lt: 'lt', $lte: 'lte' };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isScalar(v: unknown): v is Scalar {
  return v === null || (typeof v === 'string' && isWellFormedUnicode(v)) || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (typeof v === 'string') return 'a string that is not valid Unicode (a lone surrogate)';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

class Parser {
  private nodes = 0;

  private count(path: string, n = 1): void {
    this.nodes += n;
    if (this.nodes > FILTER_LIMITS.maxNodes) {
      throw new InvalidArgumentError(`${path}: filter is too large (more than ${FILTER_LIMITS.maxNodes} conditions and values in all)`);
    }
  }

  parse(input: unknown, path: string, depth: number): Filter {
    if (depth > FILTER_LIMITS.maxDepth) {
      throw new InvalidArgumentError(`${path}: filter is too deep (more than ${FILTER_LIMITS.maxDepth} levels of nesting)`);
    }
    if (!isPlainObject(input)) throw new InvalidArgumentError(`${path} must be an object, got ${describe(input)}`);
    const parts: Filter[] = [];
    for (const [key, value] of Object.entries(input)) {
      const at = `${path}.${key}`;
      if (key === '$and' || key === '$or') {
        if (!Array.isArray(value) || value.length === 0) {
          throw new InvalidArgumentError(`${at} must be a non-empty array of filters, got ${Array.isArray(value) ? 'an empty array' : describe(value)}`);
        }
        this.count(at);
        const children = value.map((child, i) => this.parse(child, `${at}[${i}]`, depth + 1));
        parts.push(key === '$and' ? { op: 'and', children } : { op: 'or', children });
      } else if (key === '$not') {
        this.count(at);
        parts.push({ op: 'not', child: this.parse(value, at, depth + 1) });
      } else if (key.startsWith('$')) {
        throw new InvalidArgumentError(`${at}: unknown operator '${key}' (expected a field name, $and, $or or $not)`);
      } else {
        parts.push(...this.field(key, value, at));
      }
    }
    if (parts.length === 0) return { op: 'all' };
    return parts.length === 1 ? (parts[0] as Filter) : { op: 'and', children: parts };
  }

  private field(field: string, value: unknown, at: string): Filter[] {
    if (field.length === 0 || Buffer.byteLength(field) > FILTER_LIMITS.maxFieldBytes || field.split('.').some((s) => s.length === 0)) {
      throw new InvalidArgumentError(`${at}: field name must be non-empty dotted segments of at most ${FILTER_LIMITS.maxFieldBytes} bytes`);
    }
    if (!isWellFormedUnicode(field) || field.split('.').includes('__proto__')) {
      throw new InvalidArgumentError(`${at}: field name must be valid Unicode and no segment may be '__proto__'`);
    }
    const path = field.split('.');
    if (isScalar(value)) {
      this.count(at);
      return [{ op: 'eq', field, path, value }];
    }
    const keys = isPlainObject(value) ? Object.keys(value) : [];
    if (!isPlainObject(value) || keys.length === 0 || !keys.every((k) => k.startsWith('$'))) {
      throw new InvalidArgumentError(`${at} must be a string, finite number, boolean, null or an object of operators ($eq, $in, ...), got ${describe(value)}`);
    }
    return keys.map((opKey) => this.operator(field, path, opKey, value[opKey], `${at}.${opKey}`));
  }

  private operator(field: string, path: string[], opKey: string, operand: unknown, at: string): Filter {
    this.count(at);
    switch (opKey) {
      case '$eq':
      case '$ne':
        if (!isScalar(operand)) throw new InvalidArgumentError(`${at} takes a string, finite number, boolean or null, got ${describe(operand)}`);
        return { op: opKey === '$eq' ? 'eq' : 'ne', field, path, value: operand };
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        if (!(typeof operand === 'string' || (typeof operand === 'number' && Number.isFinite(operand)))) {
          throw new InvalidArgumentError(`${at} takes a finite number or a string, got ${describe(operand)}`);
        }
        return { op: COMPARE[opKey] as CompareOp, field, path, value: operand };
      case '$in':
      case '$nin': {
        if (!Array.isArray(operand)) throw new InvalidArgumentError(`${at} takes an array, got ${describe(operand)}`);
        this.count(at, operand.length);
        operand.forEach((v, i) => {
          if (!isScalar(v)) throw new InvalidArgumentError(`${at}[${i}] must be a string, finite number, boolean or null, got ${describe(v)}`);
        });
        return { op: opKey === '$in' ? 'in' : 'nin', field, path, values: operand as Scalar[] };
      }
      case '$exists':
        if (typeof operand !== 'boolean') throw new InvalidArgumentError(`${at} takes a boolean, got ${describe(operand)}`);
        return { op: 'exists', field, path, value: operand };
      default:
        throw new InvalidArgumentError(`${at}: unknown operator '${opKey}' (expected $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin or $exists)`);
    }
  }
}

/**
 * Parses and validates a filter given as JSON (PROTOCOL.md, Filters). `path` names the filter in
 * error messages (default `filter`). Throws `InvalidArgumentError` naming the bad part.
 */
export function parseFilter(input: unknown, path = 'filter'): Filter {
  return new Parser().parse(input, path, 1);
}
