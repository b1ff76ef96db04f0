// A storage with `putStaged`, like the folder journal's: a write is accepted at once (visible, its
// condition decided) and durable when the test says so.
import { MemoryStorage, type PutCondition, type Storage } from '../index.js'

/**
 * A MemoryStorage with `putStaged`: each write is accepted as the memory storage decides it, and
 * durable when `durable(key)` (called once it is accepted) resolves. `put` resolves once the write
 * is durable, as a storage without staging would.
 */
export function stagedStorage(durable: (key: string) => Promise<void>): Storage {
  const inner = new MemoryStorage()
  const putStaged = (key: string, data: Uint8Array, condition?: PutCondition) => {
    const accepted = inner.put(key, data, condition)
    return { accepted, durable: accepted.then(() => durable(key)) }
  }
  return {
    get: (key) => inner.get(key),
    put: (key, data, condition) => {
      const { accepted, durable } = putStaged(key, data, condition)
      return durable.then(() => accepted)
    },
    delete: (key) => inner.delete(key),
    list: (prefix, options) => inner.list(prefix, options),
    putStaged,
  }
}
