/**
 * A check of a public CBOR request before it is decoded (PROTOCOL.md, Encoding). It walks the
 * bytes once, without recursion, and refuses what the decoder would otherwise turn into
 * something else or pay too much for:
 *
 * - text strings that are not valid UTF-8 (the decoder would put U+FFFD in their place, so two
 *   different ids could become one; JSON bodies are refused for the same reason);
 * - a map key `__proto__` (the decoder renames it `__proto_` rather than set a prototype);
 * - tags other than RFC 8746 typed arrays (64 to 87, around a byte string) and the
 *   self-describe tag 55799: bignums (whose decoding is quadratic in their length), dates, sets,
 *   regular expressions, errors, shared references (cycles) and unknown tags have no place in
 *   a request;
 * - nesting deeper than {@link CBOR_MAX_DEPTH} arrays and maps;
 * - lengths past the end of the bytes, bytes left over after the value, malformed heads, and
 *   indefinite-length strings (which the decoder does not take either).
 *
 * Each refusal is a {@link DecodeError} (INVALID_ARGUMENT at the edge) that says what and where.
 */
import { isUtf8 } from 'node:buffer';
import { DecodeError } from './errors.js';

/** Arrays and maps nested in a public CBOR request, at most (metadata's 32 levels fit well inside). */
export const CBOR_MAX_DEPTH = 64;

const TYPED_ARRAY_TAGS = { min: 64, max: 87 } as const;
const SELF_DESCRIBE_TAG = 55799;
// '__proto__' as UTF-8
const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f];

/** An open array or map: `left` items still to come (-1 for indefinite length), `read` so far. */
interface Frame {
  left: number;
  map: boolean;
  read: number;
}

/** Malformed CBOR. */
function fail(what: string, at: number): never {
  throw new DecodeError(`bytes are not valid CBOR: ${what} (at byte ${at})`);
}

/** Well-formed CBOR that a request may not hold. */
function refuse(what: string, at: number): never {
  throw new DecodeError(`CBOR request refused: ${what} (at byte ${at})`);
}

/** Throws {@link DecodeError} unless `bytes` is one CBOR value that a public request may be. */
export function checkPublicCbor(bytes: Uint8Array): void {
  const end = bytes.length;
  const stack: Frame[] = [];
  let pos = 0;
  let done = false;
  // true when the item about to be read is a tag's content that must be a byte string
  let wantBytes = false;

  const isKey = (): boolean => {
    const top = stack[stack.length - 1];
    return top !== undefined && top.map && top.read % 2 === 0;
  };
  // One whole item ended: count it in its container, closing the containers it completes.
  const complete = (): void => {
    for (;;) {
      const top = stack[stack.length - 1];
      if (!top) {
        done = true;
        return;
      }
      top.read++;
      if (top.left > 0) top.left--;
      if (top.left !== 0) return;
      stack.pop();
    }
  };

  while (!done) {
    if (pos >= end) fail('the value ends early', pos);
    const start = pos;
    const head = bytes[pos++] as number;
    const major = head >> 5;
    const info = head & 31;
    const top = stack[stack.length - 1];

    if (head === 0xff) {
      if (!top || top.left !== -1) fail('a break (0xff) outside an indefinite-length item', start);
      if (top.map && top.read % 2 === 1) fail('an indefinite-length map ends after a key, without its value', start);
      stack.pop();
      complete();
      continue;
    }
    if (wantBytes && (major !== 2 || info === 31)) refuse('a typed-array tag (64 to 87) must hold a definite-length byte string', start);
    wantBytes = false;

    let arg = 0;
    if (info < 24) arg = info;
    else if (info === 24) arg = readUint(bytes, pos, 1, start);
    else if (info === 25) arg = readUint(bytes, pos, 2, start);
    else if (info === 26) arg = readUint(bytes, pos, 4, start);
    else if (info === 27) arg = readUint(bytes, pos, 8, start);
    else if (info !== 31) fail(`reserved additional information ${info}`, start);
    if (info >= 24 && info <= 27) pos += 1 << (info - 24);
    const indefinite = info === 31;

    switch (major) {
      case 0:
      case 1:
        if (indefinite) fail('an integer of indefinite length', start);
        complete();
        break;
      case 2:
      case 3:
        if (indefinite) refuse('an indefinite-length string (not supported; send its length)', start);
        if (arg > end - pos) fail(`a string of ${arg} bytes where ${end - pos} are left`, start);
        if (major === 3) {
          // Most text (ids, keys, metadata) is short ASCII: checked in place, no view, no native call.
          if (!isAscii(bytes, pos, pos + arg) && !isUtf8(bytes.subarray(pos, pos + arg))) refuse('a text string that is not valid UTF-8', start);
          if (arg === PROTO.length && isKey() && sameAsProto(bytes, pos)) refuse("a map key '__proto__'", start);
        }
        pos += arg;
        complete();
        break;
      case 4:
      case 5: {
        const items = major === 5 ? arg * 2 : arg;
        if (!indefinite && items > end - pos) fail(`${major === 5 ? 'a map' : 'an array'} of ${arg} items where ${end - pos} bytes are left`, start);
        if (!indefinite && items === 0) {
          complete();
          break;
        }
        if (stack.length >= CBOR_MAX_DEPTH) refuse(`nesting deeper than ${CBOR_MAX_DEPTH} levels`, start);
        stack.push({ left: indefinite ? -1 : items, map: major === 5, read: 0 });
        break;
      }
      case 6:
        if (indefinite) fail('a tag of indefinite length', start);
        if (arg >= TYPED_ARRAY_TAGS.min && arg <= TYPED_ARRAY_TAGS.max) wantBytes = true;
        else if (arg !== SELF_DESCRIBE_TAG) refuse(`CBOR tag ${arg} is not accepted (only RFC 8746 typed arrays, tags ${TYPED_ARRAY_TAGS.min} to ${TYPED_ARRAY_TAGS.max})`, start);
        // the tag's content is the next item; the pair counts as one
        break;
      case 7:
        if (indefinite) fail('a break (0xff) outside an indefinite-length item', start);
        if (info === 24 && arg < 32) fail(`a two-byte simple value ${arg} (below 32)`, start);
        complete();
        break;
    }
  }
  if (pos !== end) fail(`${end - pos} bytes left over after the value`, pos);
}

function readUint(bytes: Uint8Array, pos: number, n: number, start: number): number {
  if (pos + n > bytes.length) fail('the value ends early', start);
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + (bytes[pos + i] as number);
  // past 2^53 the value is only approximate, which is fine: it is then far past any length here
  return v;
}

function sameAsProto(bytes: Uint8Array, pos: number): boolean {
  for (let i = 0; i < PROTO.length; i++) if (bytes[pos + i] !== PROTO[i]) return false;
  return true;
}

/** Whether bytes [from, to) are all ASCII (valid UTF-8 then); long strings go to the native check. */
function isAscii(bytes: Uint8Array, from: number, to: number): boolean {
  if (to - from > 64) return false;
  for (let i = from; i < to; i++) if ((bytes[i] as number) >= 0x80) return false;
  return true;
}
