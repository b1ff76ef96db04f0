// A view of a shared MemoryStorage for one simulated process, counting what it reads: gets per
// key, and full listings of the RUNNING index (one a worker poll).
import { MemoryStorage, type PutCondition, type StoredValue, storeKeys } from '../index.js'

/** A view of a shared MemoryStorage that counts this view's gets per key (one process's reads). */
export class CountingView extends MemoryStorage {
  readonly gets = new Map<string, number>()
  lists = 0
  readonly #inner: MemoryStorage
  constructor(inner: MemoryStorage) {
    super()
    this.#inner = inner
  }
  override get(key: string): Promise<StoredValue | undefined> {
    this.gets.set(key, (this.gets.get(key) ?? 0) + 1)
    return this.#inner.get(key)
  }
  override put(key: string, data: Uint8Array, cond?: PutCondition): Promise<{ version: string }> {
    return this.#inner.put(key, data, cond)
  }
  override delete(key: string): Promise<void> {
    return this.#inner.delete(key)
  }
  override list(...args: Parameters<MemoryStorage['list']>): ReturnType<MemoryStorage['list']> {
    if (args[1]?.after === undefined && args[0] === storeKeys.indexPrefix('RUNNING')) this.lists++
    return this.#inner.list(...args)
  }
  count(test: (key: string) => boolean): number {
    let n = 0
    for (const [key, c] of this.gets) if (test(key)) n += c
    return n
  }
}
