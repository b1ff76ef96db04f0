// The storage contract: the small async key-value interface every backend implements, and the
// key rules core enforces before a key reaches a backend. Leases and exactly-once commits stand
// on the conditional writes described here.

import { InvalidKeyError, quote, StorageContractError } from '../errors.js'

/** A stored value and its version. */
export interface StoredValue {
  /** The exact bytes last written. */
  data: Uint8Array
  /** Opaque version of this value: changes on every write of the key (an ETag, a counter, a hash). */
  version: string
}

/**
 * Condition on a `put`:
 * - `{ ifAbsent: true }`: write only if the key does not exist (create-if-absent).
 * - `{ ifVersion }`: write only if the key exists with exactly this version (compare-and-swap).
 */
export type PutCondition = { ifAbsent: true } | { ifVersion: string }

/** Options of `Storage.list`. */
export interface ListOptions {
  /** Return only keys strictly greater than this one in `compareKeys` order. */
  after?: string
  /** At most this many keys. A backend may return fewer; `next` says whether there are more. */
  limit?: number
}

/** One page of `Storage.list`. */
export interface ListPage {
  /** Keys that start with the prefix, ascending in `compareKeys` order (UTF-8 bytes), without duplicates. */
  keys: string[]
  /** When set, more keys may follow: pass it as `after` to get the next page. */
  next?: string
}

/**
 * Where wf keeps workflows: a small async key-value store. Implement it to add a backend; run
 * `describeStorageContract` from `@wf/core/testing` to prove the implementation.
 *
 * Keys are `/`-separated strings that core has already checked with `validateKey`; a backend
 * should check them too (with `validateKey`) when it is called directly.
 *
 * Guarantees a backend must give:
 * - `get` returns the last successfully written value (read-after-write), or `undefined`.
 * - `put` is atomic: a concurrent or later reader sees the whole old value or the whole new one,
 *   never a mix, never a truncated value, even after a crash mid-write.
 * - `put` with `{ ifAbsent: true }` succeeds for exactly one of many concurrent writers of an
 *   absent key; the others reject with `ConditionFailedError` and change nothing.
 * - `put` with `{ ifVersion }` succeeds only if the stored version is that one, for exactly one of
 *   many concurrent writers; the others (and a write to a missing key) reject with
 *   `ConditionFailedError` and change nothing.
 * - `version` is returned by `put` and `get`, is the same for both, and changes on every write,
 *   even when the same bytes are written again.
 * - `delete` removes the key; deleting a missing key is not an error.
 * - `list(prefix)` returns the keys that start with `prefix` (a plain string prefix, not a folder),
 *   ascending by their UTF-8 bytes (code point order, as S3 and most file systems list; see
 *   `compareKeys`), paginated with `after` and `limit`; it never shows internal files (temp, locks).
 * - Failures of the medium (network down, disk full) reject with an `Error`, preferably a
 *   `StorageUnavailableError`, and leave no partial value behind.
 */
export interface Storage {
  get(key: string): Promise<StoredValue | undefined>
  put(key: string, data: Uint8Array, condition?: PutCondition): Promise<{ version: string }>
  delete(key: string): Promise<void>
  list(prefix: string, options?: ListOptions): Promise<ListPage>
  /** Optional: delete many keys at once (a backend with a batch delete can be faster). */
  deleteMany?(keys: string[]): Promise<void>
  /** Optional: release connections, timers and file handles. */
  close?(): Promise<void>
  /**
   * Optional: a `put` whose outcome is known before it is durable, for pipelined checkpoints (a
   * step's record is written right after its input's, without waiting for that one's sync).
   * `accepted` settles as `put` would (the version, or `ConditionFailedError`) once the write is
   * decided; `durable` resolves once it is durable as `put`'s result is, and rejects if it cannot
   * be. The promise a backend makes by having it: **a write accepted before another write starts
   * is durable no later than that one**, so that a crash keeps, of the accepted writes, a prefix in
   * order. Without it, core waits for each `put` instead. Example: a write-ahead journal with group
   * commit (`@wf/storage-fs`'s `durability: 'journal'`).
   */
  putStaged?(key: string, data: Uint8Array, condition?: PutCondition): StagedPut
}

/** What `Storage.putStaged` returns: the write's outcome, then its durability. */
export interface StagedPut {
  accepted: Promise<{ version: string }>
  durable: Promise<void>
}

/** Longest key core accepts, in UTF-8 bytes (S3 allows 1024; leave room for a prefix). */
export const MAX_KEY_BYTES = 900

// What `keyFault` finds, most serious first: a key with several faults is reported by the first.
enum KeyFault {
  None,
  ForbiddenChar,
  Backslash,
  EmptySegment,
  DotSegment,
}

/**
 * One pass over the key (it runs for every storage call, so no `split`): C0 and C1 control
 * characters, DEL and lone surrogates cannot be stored safely on every backend; then backslashes;
 * then the first empty, `.` or `..` segment.
 */
function keyFault(key: string): KeyFault {
  let backslash = false
  let segmentFault = KeyFault.None
  let segmentStart = 0
  const n = key.length
  for (let i = 0; i <= n; i++) {
    const c = i < n ? key.charCodeAt(i) : 0x2f // the end closes the last segment, as a '/' would
    if (c === 0x2f) {
      if (segmentFault === KeyFault.None) {
        const length = i - segmentStart
        if (length === 0) segmentFault = KeyFault.EmptySegment
        else if (
          key.charCodeAt(segmentStart) === 0x2e &&
          (length === 1 || (length === 2 && key.charCodeAt(segmentStart + 1) === 0x2e))
        )
          segmentFault = KeyFault.DotSegment
      }
      segmentStart = i + 1
    } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return KeyFault.ForbiddenChar
    else if (c === 0x5c) backslash = true
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = key.charCodeAt(i + 1)
      if (!(next >= 0xdc00 && next <= 0xdfff)) return KeyFault.ForbiddenChar
      i++
    } else if (c >= 0xdc00 && c <= 0xdfff) return KeyFault.ForbiddenChar
  }
  return backslash ? KeyFault.Backslash : segmentFault
}

/**
 * Checks a storage key and throws `InvalidKeyError` when it is not allowed: empty, longer than
 * `MAX_KEY_BYTES`, starting or ending with `/`, with an empty, `.` or `..` segment, with a
 * backslash, or with control characters.
 */
export function validateKey(key: string): void {
  if (typeof key !== 'string') throw new InvalidKeyError(String(key), 'a key must be a string')
  if (key.length === 0) throw new InvalidKeyError(key, 'a key cannot be empty')
  // A UTF-16 code unit is at most 3 bytes of UTF-8: short keys need no count.
  if (key.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new InvalidKeyError(key, `a key is at most ${MAX_KEY_BYTES} bytes of UTF-8`)
  }
  switch (keyFault(key)) {
    case KeyFault.None:
      return
    case KeyFault.ForbiddenChar:
      throw new InvalidKeyError(key, 'control characters and lone surrogates are not allowed')
    case KeyFault.Backslash:
      throw new InvalidKeyError(key, 'backslashes are not allowed')
    case KeyFault.EmptySegment:
      throw new InvalidKeyError(key, 'empty segments (leading, trailing or double "/") are not allowed')
    case KeyFault.DotSegment:
      throw new InvalidKeyError(key, '"." and ".." segments are not allowed')
  }
}

/** Checks a `list` prefix: empty is allowed; otherwise the same rules as a key, except that it may end with `/`. */
export function validatePrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw new InvalidKeyError(String(prefix), 'a prefix must be a string')
  if (prefix === '') return
  validateKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix)
}

/**
 * The order of keys in `list`: by UTF-8 bytes, which is Unicode code point order (S3's order).
 * It differs from JavaScript's `<` (UTF-16 code units) only between characters above U+FFFF and
 * those in U+E000–U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i)
    let cb = b.charCodeAt(i)
    if (ca === cb) continue
    // Surrogates (D800–DFFF) encode code points above FFFF: move them above E000–FFFF.
    if (ca >= 0xd800 && cb >= 0xd800) {
      ca = ca >= 0xe000 ? ca - 0x800 : ca + 0x2000
      cb = cb >= 0xe000 ? cb - 0x800 : cb + 0x2000
    }
    return ca - cb
  }
  return a.length - b.length
}

/**
 * The smallest string above every string that starts with `prefix`, in code point order, or
 * `undefined` when there is none (the prefix is empty or made only of U+10FFFF).
 *
 * Keys starting with `prefix` are exactly those with `key >= prefix AND key < upperBound`: bump the
 * last code point by one. Surrogate code points are skipped (they cannot be stored as UTF-8), and a
 * trailing U+10FFFF, which has no successor, is dropped before bumping the one before it.
 *
 * ```ts
 * prefixUpperBound('workflows/') // 'workflows0' ('/' is U+002F, '0' is U+0030)
 * ```
 * For backends that scan key ranges (SQL, LMDB, Redis ZRANGEBYLEX…).
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

/**
 * The `after` of the page following `page` of a listing of `prefix` (`undefined` at the end).
 * Throws `StorageContractError` when the storage's `next` does not move past `after`, which
 * would make a paging loop run for ever.
 */
export function nextPageAfter(prefix: string, after: string | undefined, page: ListPage): string | undefined {
  if (page.next === undefined || page.keys.length === 0) return undefined
  if (after !== undefined && compareKeys(page.next, after) <= 0) {
    throw new StorageContractError(
      `the storage's list(${quote(prefix)}) returned next ${quote(page.next)}, which is not after ${quote(after)}: its pagination does not move forward (a bug in the storage backend)`,
    )
  }
  return page.next
}
