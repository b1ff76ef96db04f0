// A view of a shared storage for one simulated process, counting what it reads: gets per key, and
// full listings of the RUNNING index (one a worker poll).
import { type Storage, storeKeys } from '../index.js'
import { interceptStorage } from '../testing/intercept.js'

/** `countingView`'s storage: this view's gets per key (one process's reads) and its polls. */
export type CountingView = Storage & {
  readonly gets: Map<string, number>
  /** Listings of the whole RUNNING index (not a later page of one). */
  lists: number
  /** The gets of the keys `test` picks. */
  count(test: (key: string) => boolean): number
}

/** A view of `inner` (shared with other views) that counts its own gets per key and its polls. */
export function countingView(inner: Storage): CountingView {
  const view: CountingView = Object.assign(
    interceptStorage(inner, {
      get: (next, key) => {
        view.gets.set(key, (view.gets.get(key) ?? 0) + 1)
        return next(key)
      },
      list: (next, prefix, options) => {
        if (options?.after === undefined && prefix === storeKeys.indexPrefix('RUNNING')) view.lists++
        return next(prefix, options)
      },
    }),
    {
      gets: new Map<string, number>(),
      lists: 0,
      count(test: (key: string) => boolean): number {
        let n = 0
        for (const [key, c] of view.gets) if (test(key)) n += c
        return n
      },
    },
  )
  return view
}
