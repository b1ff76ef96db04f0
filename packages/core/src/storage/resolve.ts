// Storage URIs: `init('/path')`, `init('file:///path')`, `init('s3://bucket/prefix?…')`,
// `init('memory://')`, and schemes that plugins register. Backends are separate packages loaded on
// demand, so a user installs only the one they use.

import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { StorageConfigError } from '../errors.js'
import { MemoryStorage } from './memory-storage.js'
import type { Storage } from './storage.js'

/** A storage (or a promise of one), or a URI naming one. `undefined` means `WF_STORAGE`, else the default folder. */
export type StorageSpec = Storage | Promise<Storage> | string | undefined

/** Makes a storage from a URI of a registered scheme. */
export type StorageFactory = (uri: string) => Storage | Promise<Storage>

// On globalThis, so a plugin that resolved another copy of @wf/core still registers where init() looks.
const REGISTRY = Symbol.for('@wf/core/storage-schemes')
const holder = globalThis as { [REGISTRY]?: Map<string, StorageFactory> }
holder[REGISTRY] ??= new Map<string, StorageFactory>()
const schemes: Map<string, StorageFactory> = holder[REGISTRY]
const memoryStores = new Map<string, MemoryStorage>()
let defaultNoticeShown = false

/**
 * Registers a URI scheme, so `init('myscheme://…')` and `WF_STORAGE=myscheme://…` use your backend.
 *
 * ```ts
 * registerStorageScheme('sqlite', (uri) => new SqliteStorage(new URL(uri).pathname))
 * ```
 */
export function registerStorageScheme(scheme: string, factory: StorageFactory): void {
  if (!/^[a-z][a-z0-9+.-]*$/.test(scheme)) {
    throw new StorageConfigError(
      `invalid URI scheme "${scheme}": use lowercase letters, digits, "+", "." and "-"`,
    )
  }
  if (typeof factory !== 'function')
    throw new StorageConfigError('registerStorageScheme needs a factory function')
  schemes.set(scheme, factory)
}

function isStorage(value: unknown): value is Storage {
  const s = value as Storage
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.get === 'function' &&
    typeof s.put === 'function' &&
    typeof s.delete === 'function' &&
    typeof s.list === 'function'
  )
}

/** The folder used when no storage is configured. */
export function defaultStoragePath(): string {
  return join(tmpdir(), 'wf', 'workflow_data')
}

/**
 * Loads a backend package. Tries a plain import first, then resolves it from the application's
 * side (the main module's folder and the working directory): under strict installers such as
 * pnpm, `@wf/core` cannot see packages it does not declare, but the application can.
 */
async function importBackend(name: string): Promise<{ fromUri(uri: string): Promise<Storage> }> {
  try {
    return await import(name)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error
  }
  const bases = [process.argv[1], join(process.cwd(), 'index.js')].filter((b): b is string => Boolean(b))
  for (const base of bases) {
    try {
      const resolved = createRequire(base).resolve(name)
      return await import(pathToFileURL(resolved).href)
    } catch {
      // try the next base
    }
  }
  throw new StorageConfigError(`this storage needs the package ${name}: install it (npm install ${name})`)
}

/** Turns a storage spec into a storage. */
export async function resolveStorage(spec: StorageSpec): Promise<Storage> {
  if (spec === undefined) {
    const fromEnv = process.env.WF_STORAGE
    if (fromEnv) return resolveStorage(fromEnv)
    const path = defaultStoragePath()
    if (!defaultNoticeShown) {
      defaultNoticeShown = true
      process.emitWarning(
        `wf stores workflows in ${path}, which only this machine sees: call init() or set WF_STORAGE for anything shared`,
        { code: 'WF_DEFAULT_STORAGE' },
      )
    }
    return resolveStorage(path)
  }
  if (spec instanceof Promise) return resolveStorage(await spec)
  if (isStorage(spec)) return spec
  if (typeof spec !== 'string' || spec.length === 0) {
    throw new StorageConfigError('storage must be a Storage object or a non-empty URI string')
  }
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(spec)
  const scheme = match?.[1]?.toLowerCase()
  if (scheme === undefined || scheme === 'file') {
    if (scheme === undefined && /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(spec) && !/^[a-zA-Z]:[\\/]/.test(spec)) {
      throw new StorageConfigError(`"${spec}" is neither a path nor a URI with "://"`)
    }
    return (await importBackend('@wf/storage-fs')).fromUri(spec)
  }
  const registered = schemes.get(scheme)
  if (registered) {
    const storage = await registered(spec)
    if (!isStorage(storage))
      throw new StorageConfigError(`the "${scheme}" storage factory did not return a Storage`)
    return storage
  }
  if (scheme === 'memory') {
    const name = spec.slice('memory://'.length)
    let storage = memoryStores.get(name)
    if (!storage) {
      storage = new MemoryStorage()
      memoryStores.set(name, storage)
    }
    return storage
  }
  if (scheme === 's3') return (await importBackend('@wf/storage-s3')).fromUri(spec)
  throw new StorageConfigError(
    `no storage for "${scheme}://": import the plugin package that provides it before init() (or WF_STORAGE is read, e.g. node --import <plugin>), or registerStorageScheme("${scheme}", factory); built in: a path, file://, s3:// and memory://`,
  )
}
