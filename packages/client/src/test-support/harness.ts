// Test support: the storages every management test runs on (memory, and a real folder through
// @wf/storage-fs), a storage wrapper that fails or counts on demand, and gates.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  type ListOptions,
  type ListPage,
  MemoryStorage,
  type PutCondition,
  type Storage,
  StorageUnavailableError,
  type StoredValue,
} from '@wf/core'
// A devDependency, imported by name: when it is not built, every test file that imports this one
// fails, instead of running without the folder backend.
import { fromUri } from '@wf/storage-fs'

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

/** Wraps a storage: counts reads by key, and fails writes of chosen keys (a storage going down mid-run). */
export class ProbeStorage implements Storage {
  readonly inner: Storage
  readonly gets: string[] = []
  failWrites: (key: string) => boolean = () => false

  constructor(inner: Storage) {
    this.inner = inner
  }
  get(key: string): Promise<StoredValue | undefined> {
    this.gets.push(key)
    return this.inner.get(key)
  }
  async put(key: string, data: Uint8Array, condition?: PutCondition): Promise<{ version: string }> {
    if (this.failWrites(key)) throw new StorageUnavailableError(`injected failure writing ${key}`)
    return this.inner.put(key, data, condition)
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key)
  }
  list(prefix: string, options?: ListOptions): Promise<ListPage> {
    return this.inner.list(prefix, options)
  }
  async close(): Promise<void> {
    await this.inner.close?.()
  }
}

/** A promise with its resolve exposed: a step waits on it until the test opens it. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}
