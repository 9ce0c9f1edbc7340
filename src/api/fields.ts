/**
 * Readers for untrusted request fields. Each names the field's path and the limit it broke in
 * its error (`points[3].vector has 3 dimensions; …`), so a client can fix its request.
 */
import { isWellFormedUnicode } from '../index/utf8.js';
import { InvalidArgumentError, PayloadTooLargeError } from '../runtime/errors.js';
import { LIMITS } from './limits.js';

const utf8 = new TextEncoder();

export function utf8Length(s: string): number {
  // fast path: ASCII
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  return ascii ? s.length : utf8.encode(s).length;
}

/** `s` in quotes for an error message, cut to its first 64 characters when longer (the message must stay small). */
export function quoted(s: string): string {
  if (s.length <= 64) return `'${s}'`;
  const cut = s.charCodeAt(63) >= 0xd800 && s.charCodeAt(63) <= 0xdbff ? 63 : 64;
  return `'${s.slice(0, cut)}…' (${utf8Length(s)} bytes)`;
}

export function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v !== 'object') return `a ${typeof v}`;
  if (isPlainObject(v)) return 'an object';
  const name: unknown = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } }).constructor?.name;
  return `a ${typeof name === 'string' && name !== '' ? name : 'non-plain object'}`;
}

/** An object as JSON has them: its prototype is Object's (or none). Not a Map, Set, Date, typed array, RegExp or Error. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The request body as an object, refusing fields the request does not have. */
export function body(v: unknown, what: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isPlainObject(v)) throw new InvalidArgumentError(`${what} body must be an object, got ${describeType(v)}`);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) {
      throw new InvalidArgumentError(`unknown field ${quoted(key)} in ${what} request; expected ${allowed.join(', ')}`);
    }
  }
  return v;
}

export function object(v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isPlainObject(v)) throw new InvalidArgumentError(`${path} must be an object, got ${describeType(v)}`);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) throw new InvalidArgumentError(`unknown field ${path}.${key.length > 64 ? quoted(key) : key}; expected ${allowed.join(', ')}`);
  }
  return v;
}

export function integer(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new InvalidArgumentError(`${path} must be an integer, got ${describeType(v) === 'a number' ? v : describeType(v)}`);
  if (v < min || v > max) throw new InvalidArgumentError(`${path} must be ${min} to ${max}, got ${v}`);
  return v;
}

export function optionalInteger(v: unknown, path: string, min: number, max: number, dflt: number): number {
  return v === undefined ? dflt : integer(v, path, min, max);
}

export function boolean(v: unknown, path: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`${path} must be true or false, got ${describeType(v)}`);
  return v;
}

export function oneOf<T extends string>(v: unknown, path: string, options: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !options.includes(v as T)) {
    throw new InvalidArgumentError(`${path} must be one of ${options.map((o) => `'${o}'`).join(', ')}, got ${typeof v === 'string' ? quoted(v) : describeType(v)}`);
  }
  return v as T;
}

/** A non-empty string of at most `maxBytes` UTF-8 bytes. */
export function string(v: unknown, path: string, maxBytes: number): string {
  if (typeof v !== 'string') throw new InvalidArgumentError(`${path} must be a string, got ${describeType(v)}`);
  if (v.length === 0) throw new InvalidArgumentError(`${path} must not be empty`);
  const n = utf8Length(v);
  if (n > maxBytes) throw new InvalidArgumentError(`${path} is ${n} bytes; the limit is ${maxBytes}`);
  if (!isWellFormedUnicode(v)) throw new InvalidArgumentError(`${path} is not valid Unicode (it has a lone surrogate, which has no UTF-8 form)`);
  return v;
}

export function timeoutMs(v: unknown): number {
  return optionalInteger(v, 'timeoutMs', LIMITS.timeoutMsMin, LIMITS.timeoutMsMax, 5_000);
}

/** An array of at most `max` items; over it is PAYLOAD_TOO_LARGE (PROTOCOL.md). */
export function list(v: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw new InvalidArgumentError(`${path} must be an array, got ${describeType(v)}`);
  if (v.length > max) throw new PayloadTooLargeError(`${path} has ${v.length} items; the limit is ${max}`);
  return v;
}

/**
 * A vector of exactly `dim` finite numbers, as float32: an array of numbers, or (in CBOR) a
 * typed array. A number finite in float64 but out of float32's range is refused too.
 */
export function vector(v: unknown, path: string, dim: number): Float32Array {
  let out: Float32Array;
  if (v instanceof Float32Array) {
    out = new Float32Array(v);
  } else if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)) {
    out = Float32Array.from(v as unknown as ArrayLike<number>);
  } else if (Array.isArray(v)) {
    out = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x !== 'number') throw new InvalidArgumentError(`${path}[${i}] must be a number, got ${describeType(x)}`);
      out[i] = x;
    }
  } else {
    throw new InvalidArgumentError(`${path} must be an array of numbers, got ${describeType(v)}`);
  }
  if (out.length !== dim) throw new InvalidArgumentError(`${path} has ${out.length} dimensions; the collection has ${dim}`);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) {
      const given = Array.isArray(v) ? v[i] : (v as unknown as ArrayLike<number>)[i];
      throw new InvalidArgumentError(`${path}[${i}] must be a finite number within float32 range, got ${String(given)}`);
    }
  }
  return out;
}

/**
 * Metadata: a JSON object (strings, finite numbers, booleans, null, arrays, objects) of at most
 * 64 KiB as JSON and 32 levels deep; strings and keys valid Unicode; no key `__proto__` (which
 * would not survive the cluster's CBOR: its decoder renames it).
 */
export function metadata(v: unknown, path: string): Record<string, unknown> {
  if (!isPlainObject(v)) throw new InvalidArgumentError(`${path} must be a JSON object, got ${describeType(v)}`);
  // The size first: JSON.stringify is native and quick, so an 8 MiB object is refused without a
  // walk of its every key. It overflows the stack on nesting far past the limit; the walk then
  // names the depth.
  let json: string;
  try {
    json = JSON.stringify(v);
  } catch (err) {
    jsonValue(v, path, 0);
    throw err;
  }
  const size = utf8Length(json);
  if (size > LIMITS.metadataMaxBytes) throw new InvalidArgumentError(`${path} is ${size} bytes as JSON; the limit is ${LIMITS.metadataMaxBytes}`);
  jsonValue(v, path, 0);
  return v;
}

function jsonValue(v: unknown, path: string, depth: number): void {
  if (depth > LIMITS.metadataMaxDepth) throw new InvalidArgumentError(`${path} nests deeper than ${LIMITS.metadataMaxDepth} levels`);
  if (v === null || typeof v === 'boolean') return;
  if (typeof v === 'string') {
    if (!isWellFormedUnicode(v)) throw new InvalidArgumentError(`${path} is not valid Unicode (it has a lone surrogate, which has no UTF-8 form)`);
    return;
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new InvalidArgumentError(`${path} must be a finite number, got ${v}`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => jsonValue(x, `${path}[${i}]`, depth + 1));
    return;
  }
  if (isPlainObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (k === '__proto__') throw new InvalidArgumentError(`${path} has the key '__proto__', which is not allowed`);
      if (!isWellFormedUnicode(k)) throw new InvalidArgumentError(`${path} has a key that is not valid Unicode (a lone surrogate, which has no UTF-8 form)`);
      jsonValue(x, `${path}.${k}`, depth + 1);
    }
    return;
  }
  throw new InvalidArgumentError(`${path} must be a JSON value, got ${describeType(v)}`);
}
