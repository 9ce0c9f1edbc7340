/** Orders strings by their UTF-8 bytes (= by code points), as PROTOCOL.md requires for tie-breaks. */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order differs from code point order only when one side is a surrogate (a code
    // point above U+FFFF) and the other a BMP character at U+E000 or above.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs === ys) return x < y ? -1 : 1;
    return xs ? 1 : -1;
  }
  return a.length - b.length;
}

/** Bytes of `s` in UTF-8, without allocating. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Whether `s` is well-formed Unicode: no lone surrogate (JSON's `"\ud800"` makes one). A lone
 * surrogate has no UTF-8 form, so it would be stored as U+FFFD and two different strings would
 * become one.
 */
export function isWellFormedUnicode(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}
