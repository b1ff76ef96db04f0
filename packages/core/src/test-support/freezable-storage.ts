// A storage in front of another that can be frozen, shared by the lease and worker tests: calls
// made while frozen wait until it thaws (a paused process, or one cut off from its storage).
import { MemoryStorage, type PutCondition, type StoredValue } from '../index.js'

export class FreezableStorage extends MemoryStorage {
  readonly #inner: MemoryStorage
  #thawed: Promise<void> = Promise.resolve()
  #thaw: () => void = () => {}
  constructor(inner: MemoryStorage) {
    super()
    this.#inner = inner
  }
  freeze(): void {
    this.#thawed = new Promise((resolve) => {
      this.#thaw = resolve
    })
  }
  thaw(): void {
    this.#thaw()
  }
  override async get(key: string): Promise<StoredValue | undefined> {
    await this.#thawed
    return this.#inner.get(key)
  }
  override async put(key: string, data: Uint8Array, cond?: PutCondition): Promise<{ version: string }> {
    await this.#thawed
    return this.#inner.put(key, data, cond)
  }
  override async delete(key: string): Promise<void> {
    await this.#thawed
    return this.#inner.delete(key)
  }
  override list(...args: Parameters<MemoryStorage['list']>): ReturnType<MemoryStorage['list']> {
    return this.#inner.list(...args)
  }
}
