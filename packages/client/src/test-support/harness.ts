// Test support: the storages every management test runs on (memory, and a real folder through
// @wf/storage-fs), a fresh one with a client for each test, a storage wrapper that fails or counts
// on demand, and gates.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { MemoryStorage, type Runtime, type Storage, StorageUnavailableError } from '@wf/core'
// A devDependency, imported by name: when it is not built, every test file that imports this one
// fails, instead of running without the folder backend.
import { fromUri } from '@wf/storage-fs'
import { afterEach, beforeEach } from 'vitest'
import { WorkflowClient } from '../client.js'

/** The folder backend on `dir`, without fsync (tests do not survive power cuts). */
export function folderStorage(dir: string): Promise<Storage> {
  return fromUri(`${pathToFileURL(dir).href}?durability=none`)
}

export interface Backend {
  name: string
  open(): Promise<{ storage: Storage; dir?: string; cleanup(): Promise<void> }>
}

const memory: Backend = {
  name: 'memory',
  open: async () => ({ storage: new MemoryStorage(), cleanup: async () => {} }),
}

const folder: Backend = {
  name: 'folder',
  open: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wf-client-'))
    const storage = await folderStorage(dir)
    return {
      storage,
      dir,
      cleanup: async () => {
        await storage.close?.()
        await rm(dir, { recursive: true, force: true, maxRetries: 3 })
      },
    }
  },
}

/** The backends every management test runs on. */
export const backends: Backend[] = [memory, folder]

/** One test's storage and the client on it (`eachTestOn`). */
export interface TestBed {
  /** The backend's storage as opened: what a test reads and writes behind wf's back. */
  storage: Storage
  /** `storage` behind `probeStorage`: what the client and its runtime use, to fail or count calls. */
  probe: Probe
  client: WorkflowClient
  /** `client.runtime`. */
  runtime: Runtime
}

/**
 * Opens `backend` before each test of the enclosing `describe` and hands the test bed to `use`
 * (which keeps what it needs in the file's variables); after each test, and after the file's own
 * `afterEach` hooks, waits for the runtime's runs to end and removes the storage.
 */
export function eachTestOn(backend: Backend, use: (bed: TestBed) => void): void {
  let opened: { runtime: Runtime; cleanup(): Promise<void> } | undefined
  beforeEach(async () => {
    const { storage, cleanup } = await backend.open()
    const probe = probeStorage(storage)
    const client = new WorkflowClient({ storage: probe })
    opened = { runtime: client.runtime, cleanup }
    use({ storage, probe, client, runtime: client.runtime })
  })
  afterEach(async () => {
    await opened?.runtime.idle()
    await opened?.cleanup()
    opened = undefined
  })
}

/** The calls an interceptor can wrap: the storage contract's methods with a body. */
type Method = 'get' | 'put' | 'delete' | 'deleteMany' | 'list'
type Call<M extends Method> = NonNullable<Storage[M]>

/** For each method wrapped: `next` is the inner storage's method, then the call's arguments. */
export type StorageHooks = {
  [M in Method]?: (next: Call<M>, ...args: Parameters<Call<M>>) => ReturnType<Call<M>>
}

/**
 * `inner` with some calls wrapped by `hooks` (to count, hold back or fail them) and every other
 * call passed through, `close` and the optional `deleteMany` included: one wrapper instead of a
 * hand-written pass-through class per test.
 */
export function intercept(inner: Storage, hooks: StorageHooks): Storage {
  const wrap = <M extends Method>(method: M): Call<M> => {
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
  if (inner.deleteMany) storage.deleteMany = wrap('deleteMany')
  return storage
}

/** A storage that records the keys read, and fails writes of the keys `failWrites` picks. */
export type Probe = Storage & { readonly gets: string[]; failWrites: (key: string) => boolean }

/** Wraps a storage in a probe: a storage going down mid-run for chosen keys, and reads by key. */
export function probeStorage(inner: Storage): Probe {
  const probe: Probe = Object.assign(
    intercept(inner, {
      get: (next, key) => {
        probe.gets.push(key)
        return next(key)
      },
      put: async (next, key, data, condition) => {
        if (probe.failWrites(key)) throw new StorageUnavailableError(`injected failure writing ${key}`)
        return next(key, data, condition)
      },
    }),
    { gets: [] as string[], failWrites: (_key: string) => false },
  )
  return probe
}

/** A promise with its resolve exposed: a step waits on it until the test opens it. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}
