// A MemoryStorage that records the key of every put, in order: what a workflow writes.
import { MemoryStorage, type Storage } from '../index.js'
import { interceptStorage } from '../testing/intercept.js'

/** A fresh MemoryStorage behind an interceptor that pushes the key of every put to `puts`. */
export function recordingPuts(): { storage: Storage; puts: string[] } {
  const puts: string[] = []
  const storage = interceptStorage(new MemoryStorage(), {
    put: (next, key, data, condition) => {
      puts.push(key)
      return next(key, data, condition)
    },
  })
  return { storage, puts }
}
