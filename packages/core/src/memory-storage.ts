// An in-process storage with the full contract, conditional writes included: for tests, for
// `memory://`, and as the reference a plugin author can read next to the contract.

import { ConditionFailedError } from './errors.js'
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

/** Keeps every value in memory. Nothing survives the process. */
export class MemoryStorage implements Storage {
  readonly #values = new Map<string, StoredValue>()
  #sortedKeys: string[] | undefined
  #counter = 0

  async get(key: string): Promise<StoredValue | undefined> {
    validateKey(key)
    const value = this.#values.get(key)
    // Hand out a copy: a caller mutating the bytes must not change what is stored.
    return value && { data: value.data.slice(), version: value.version }
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
    if (!current) this.#sortedKeys = undefined
    this.#values.set(key, { data: data.slice(), version })
    return { version }
  }

  async delete(key: string): Promise<void> {
    validateKey(key)
    if (this.#values.delete(key)) this.#sortedKeys = undefined
  }

  async deleteMany(keys: string[]): Promise<void> {
    for (const key of keys) await this.delete(key)
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    validatePrefix(prefix)
    this.#sortedKeys ??= [...this.#values.keys()].sort(compareKeys)
    const keys = this.#sortedKeys
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
