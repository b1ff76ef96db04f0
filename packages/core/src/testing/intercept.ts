// One storage interceptor for tests: a storage in front of another that counts, holds back or fails
// chosen calls and passes every other call through. wf's own tests (core's and @wf/client's) use it
// instead of a hand-written pass-through class per test, and a backend's or an application's tests
// can too.

import { InvalidOptionsError } from '../errors.js'
import type { Storage } from '../storage/storage.js'

/** The storage calls an interceptor can wrap: the contract's methods with a body (`close` passes through). */
export type InterceptedMethod = 'get' | 'put' | 'delete' | 'deleteMany' | 'list'

type Call<M extends InterceptedMethod> = NonNullable<Storage[M]>

/**
 * For each storage method wrapped, a function called instead of it with `next` (the inner storage's
 * method, bound to it) and then the call's arguments; it returns what the call returns, usually by
 * calling `next` before or after its own work, or throws to fail the call.
 */
export type StorageHooks = {
  [M in InterceptedMethod]?: (next: Call<M>, ...args: Parameters<Call<M>>) => ReturnType<Call<M>>
}

const METHODS: readonly InterceptedMethod[] = ['get', 'put', 'delete', 'deleteMany', 'list']

/**
 * `inner` with the calls `hooks` names wrapped by them, to count, delay, hold back or fail them,
 * and every other call passed through to `inner` unchanged, `close` and the optional `deleteMany`
 * included (the result has `deleteMany` only when `inner` has it).
 *
 * @param inner - The storage the calls go to.
 * @param hooks - One function per method to wrap: `(next, ...args) => …`.
 * @throws InvalidOptionsError when `inner` is not a storage, a hook is not a function, a hook names
 * no storage method, or `deleteMany` is hooked on a storage without it.
 *
 * @example
 * ```ts
 * import { MemoryStorage, StorageUnavailableError } from '@wf/core'
 * import { interceptStorage } from '@wf/core/testing'
 *
 * const reads: string[] = []
 * const storage = interceptStorage(new MemoryStorage(), {
 *   get: (next, key) => {
 *     reads.push(key)
 *     return next(key)
 *   },
 *   put: async (next, key, data, condition) => {
 *     if (key.endsWith('/workflow')) throw new StorageUnavailableError(`injected failure writing ${key}`)
 *     return next(key, data, condition)
 *   },
 * })
 * ```
 */
export function interceptStorage(inner: Storage, hooks: StorageHooks): Storage {
  validate(inner, hooks)
  const wrap = <M extends InterceptedMethod>(method: M): Call<M> => {
    const own = inner[method] as (...args: unknown[]) => unknown
    const next = ((...args: unknown[]) => own.apply(inner, args)) as Call<M>
    const hook = hooks[method] as ((next: Call<M>, ...args: unknown[]) => unknown) | undefined
    return (hook ? (...args: unknown[]) => hook(next, ...args) : next) as Call<M>
  }
  const storage: Storage = {
    get: wrap('get'),
    put: wrap('put'),
    delete: wrap('delete'),
    list: wrap('list'),
    close: async () => {
      await inner.close?.()
    },
  }
  if (typeof inner.deleteMany === 'function') storage.deleteMany = wrap('deleteMany')
  return storage
}

function validate(inner: Storage, hooks: StorageHooks): void {
  const where = 'interceptStorage'
  const missing =
    typeof inner === 'object' && inner !== null
      ? (['get', 'put', 'delete', 'list'] as const).filter((m) => typeof inner[m] !== 'function')
      : ['get', 'put', 'delete', 'list']
  if (missing.length > 0) {
    throw new InvalidOptionsError(
      `${where}: the storage to wrap has no ${missing.join(', ')} method: pass a Storage (a MemoryStorage, or a backend's storage)`,
    )
  }
  if (typeof hooks !== 'object' || hooks === null) {
    throw new InvalidOptionsError(
      `${where}: hooks must be an object of functions keyed by ${METHODS.join(', ')}`,
    )
  }
  for (const [name, hook] of Object.entries(hooks)) {
    if (hook === undefined) continue
    if (!(METHODS as readonly string[]).includes(name)) {
      throw new InvalidOptionsError(
        `${where}: hooks.${name} is not a storage method that can be wrapped: use ${METHODS.join(', ')} (close always passes through)`,
      )
    }
    if (typeof hook !== 'function') {
      throw new InvalidOptionsError(`${where}: hooks.${name} must be a function (next, ...args) => result`)
    }
  }
  if (hooks.deleteMany && typeof inner.deleteMany !== 'function') {
    throw new InvalidOptionsError(
      `${where}: hooks.deleteMany wraps a method the storage does not have: hook delete instead (callers without deleteMany delete keys one by one)`,
    )
  }
}
