// Turns a `list` prefix into a key range SQLite can answer from the primary-key index. SQLite's
// default BINARY collation compares TEXT by its UTF-8 bytes (memcmp), and UTF-8 byte order is
// code point order: exactly `compareKeys` from @wf/core, so `ORDER BY key` needs no collation.
// @wf/core should export this next to `compareKeys`: every range-scanning backend (SQL, LMDB,
// FoundationDB, Redis ZRANGEBYLEX) needs it, and the surrogate and U+10FFFF cases are easy to miss.

/**
 * The smallest string above every string that starts with `prefix`, in code point order, or
 * `undefined` when there is none (the prefix is empty or made only of U+10FFFF).
 *
 * Keys starting with `prefix` are exactly those with `key >= prefix AND key < upperBound`: bump the
 * last code point by one. Surrogate code points are skipped (they cannot be stored as UTF-8), and a
 * trailing U+10FFFF, which has no successor, is dropped before bumping the one before it.
 *
 * @example
 * prefixUpperBound('workflows/') // 'workflows0' ('/' is U+002F, '0' is U+0030)
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const codePoints = Array.from(prefix)
  while (codePoints.length > 0) {
    const last = (codePoints.pop() as string).codePointAt(0) as number
    if (last === 0x10ffff) continue
    const next = last === 0xd7ff ? 0xe000 : last + 1
    return codePoints.join('') + String.fromCodePoint(next)
  }
  return undefined
}
