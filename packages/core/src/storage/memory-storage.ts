// An in-process storage with the full contract, conditional writes included: for tests, for
// `memory://`, and as the reference a plugin author can read next to the contract.

import { constants } from 'node:buffer'
import { ConditionFailedError } from '../errors.js'
import {
  compareKeys,
  type ListOptions,
  type ListPage,
  type PutCondition,
  type Storage,
  type StoredValue,
  validateKey,
  validatePrefix,
} from './storage.js'

const MAX_STRING_LENGTH = constants.MAX_STRING_LENGTH
/** Up to this many keys created since the last listing are put in place one by one (see `#keysInOrder`). */
const FEW_NEW_KEYS = 16

/**
 * A stored value. Bytes are kept as a Latin-1 string (one character per byte, the exact bytes):
 * a string lives on the JS heap, where an `Uint8Array` would also cost an `ArrayBuffer`, its
 * backing store and their bookkeeping, twice the memory for the small records a workflow writes.
 * Large values (blobs) stay bytes.
 */
interface Entry {
  bytes: string | Uint8Array
  version: string
}

/** Values from this size on are kept as bytes: copying bytes is 5× faster than making a Latin-1 string. */
const KEEP_AS_BYTES = 64 * 1024

function keep(data: Uint8Array): string | Uint8Array {
  // An empty marker (the index entries, a few per workflow): no Buffer view over it to make.
  if (data.byteLength === 0) return ''
  // A copy either way: a caller mutating its bytes later must not change what is stored.
  if (data.byteLength >= KEEP_AS_BYTES || data.byteLength > MAX_STRING_LENGTH) {
    // Not `data.slice()`: a Buffer's `slice` is a view, not a copy.
    return new Uint8Array(data)
  }
  // A Buffer (what wf's records are) is read as it is: a view over it costs an object per write.
  return Buffer.isBuffer(data)
    ? data.toString('latin1')
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1')
}

function bytesOf(bytes: string | Uint8Array): Uint8Array {
  if (typeof bytes !== 'string') return bytes.slice()
  // Its own buffer, not a view into Buffer's shared pool: the caller may keep and change it.
  const out = new Uint8Array(bytes.length)
  Buffer.from(out.buffer, 0, out.byteLength).write(bytes, 'latin1')
  return out
}

/** Keeps every value in memory. Nothing survives the process. */
export class MemoryStorage implements Storage {
  readonly #values = new Map<string, Entry>()
  /** Every key in `compareKeys` order as of the last listing, or `undefined` (none yet, or a delete since). */
  #sortedKeys: string[] | undefined
  /**
   * Keys created since `#sortedKeys` was made, merged in by the next listing: a listing after a
   * few new keys (a runner record among a workflow's 10,000 steps) does not sort every key again.
   */
  #newKeys: string[] = []
  #counter = 0

  async get(key: string): Promise<StoredValue | undefined> {
    validateKey(key)
    const entry = this.#values.get(key)
    // Hand out a copy: a caller mutating the bytes must not change what is stored.
    return entry && { data: bytesOf(entry.bytes), version: entry.version }
  }

  async put(key: string, data: Uint8Array, condition?: PutCondition): Promise<{ version: string }> {
    validateKey(key)
    if (!(data instanceof Uint8Array)) throw new TypeError('put() takes the value as a Uint8Array')
    const current = this.#values.get(key)
    if (condition && 'ifAbsent' in condition && current) throw new ConditionFailedError(key)
    if (condition && 'ifVersion' in condition && current?.version !== condition.ifVersion) {
      throw new ConditionFailedError(key)
    }
    const version = String(++this.#counter)
    if (current === undefined) {
      this.#added(key)
      this.#values.set(key, { bytes: keep(data), version })
    } else {
      current.bytes = keep(data)
      current.version = version
    }
    return { version }
  }

  async delete(key: string): Promise<void> {
    validateKey(key)
    if (this.#values.delete(key)) {
      this.#sortedKeys = undefined
      this.#newKeys = []
    }
  }

  async deleteMany(keys: string[]): Promise<void> {
    for (const key of keys) await this.delete(key)
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    validatePrefix(prefix)
    const keys = this.#keysInOrder()
    const start = lowerBound(
      keys,
      options.after !== undefined && compareKeys(options.after, prefix) >= 0 ? options.after : prefix,
    )
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    const page: string[] = []
    let i = start
    for (; i < keys.length && page.length < limit; i++) {
      const key = keys[i] as string
      if (!key.startsWith(prefix)) break
      if (options.after !== undefined && compareKeys(key, options.after) <= 0) continue
      page.push(key)
    }
    const more = i < keys.length && (keys[i] as string).startsWith(prefix)
    return more && page.length > 0 ? { keys: page, next: page[page.length - 1] as string } : { keys: page }
  }

  #added(key: string): void {
    if (this.#sortedKeys === undefined) return
    // Past as many new keys as sorted ones, a sort of them all costs no more than the merge.
    if (this.#newKeys.length < this.#sortedKeys.length) this.#newKeys.push(key)
    else {
      this.#sortedKeys = undefined
      this.#newKeys = []
    }
  }

  /** Every key in `compareKeys` order: sorted once, then kept so by merging the keys created since. */
  #keysInOrder(): string[] {
    const sorted = this.#sortedKeys
    const added = this.#newKeys
    if (sorted === undefined) {
      this.#newKeys = []
      this.#sortedKeys = [...this.#values.keys()].sort(compareKeys)
    } else if (added.length > 0) {
      this.#newKeys = []
      added.sort(compareKeys)
      // A few keys go in by binary search (a native move of the rest); many, by one merge pass.
      if (added.length <= FEW_NEW_KEYS)
        for (const key of added) sorted.splice(lowerBound(sorted, key), 0, key)
      else this.#sortedKeys = mergeSorted(sorted, added)
    }
    return this.#sortedKeys as string[]
  }

  /** Number of keys stored (for tests and benchmarks). */
  get size(): number {
    return this.#values.size
  }
}

function lowerBound(sorted: string[], target: string): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compareKeys(sorted[mid] as string, target) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The keys of two sorted lists without common keys, in order. */
function mergeSorted(a: string[], b: string[]): string[] {
  const out: string[] = []
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    out.push(compareKeys(a[i] as string, b[j] as string) < 0 ? (a[i++] as string) : (b[j++] as string))
  }
  while (i < a.length) out.push(a[i++] as string)
  while (j < b.length) out.push(b[j++] as string)
  return out
}
