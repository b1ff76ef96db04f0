// A storage in front of another that can be frozen, shared by the lease and worker tests: gets,
// puts and deletes made while frozen wait until it thaws (a paused process, or one cut off from
// its storage); listings pass.
import type { Storage } from '../index.js'
import { interceptStorage } from '../testing/intercept.js'

export type FreezableStorage = Storage & { freeze(): void; thaw(): void }

/** `inner` behind a switch: `freeze()` holds back its gets, puts and deletes until `thaw()`. */
export function freezable(inner: Storage): FreezableStorage {
  let thawed: Promise<void> = Promise.resolve()
  let thaw: () => void = () => {}
  return Object.assign(
    interceptStorage(inner, {
      get: async (next, key) => {
        await thawed
        return next(key)
      },
      put: async (next, key, data, condition) => {
        await thawed
        return next(key, data, condition)
      },
      delete: async (next, key) => {
        await thawed
        return next(key)
      },
    }),
    {
      freeze(): void {
        thawed = new Promise((resolve) => {
          thaw = resolve
        })
      },
      thaw(): void {
        thaw()
      },
    },
  )
}
