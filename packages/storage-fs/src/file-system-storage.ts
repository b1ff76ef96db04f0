// The folder-backed Storage: one file per key, written to a temp file and renamed into place,
// with create-if-absent by link() and compare-and-swap under a per-key lock. See README.md for
// the on-disk layout and what each durability level guarantees. This file is the front: it checks
// options and arguments, reads, lists and cleans, and hands every write to the writer of its
// durability mode (fsync-writer.ts for 'fsync' and 'none', journal/journaled-writer.ts for
// 'journal'), chosen once in the constructor.

import { resolve } from 'node:path'
import {
  type ListOptions,
  type ListPage,
  type PutCondition,
  type StagedPut,
  type Storage,
  StorageConfigError,
  type StoredValue,
  validateKey,
  validatePrefix,
} from '@wf/core'
import { mapLimit } from '@wf/core/internal'
import { currentBoot } from './boot.js'
import { cleanFolder } from './cleanup.js'
import { type FileSystem, nodeFileSystem, type SyncFileSystem } from './file-system.js'
import { whyMissing } from './folders.js'
import { readFileSyncIfAny } from './fs.js'
import { errnoOf, unavailable } from './fs-errors.js'
import { FsyncWriter } from './fsync-writer.js'
import { JournaledWriter } from './journal/journaled-writer.js'
import { listKeys } from './list.js'
import { KeyLocks } from './lock.js'
import { decodeRecord, encodeHeader } from './record.js'
import { tempPath, ValueFiles } from './value-files.js'
import type { Writer } from './writer.js'

/** Options of `createFileSystemStorage` and `new FileSystemStorage`. */
export interface FileSystemStorageOptions {
  /** The storage folder. Created (with its parents) if missing. */
  root: string
  /**
   * `'fsync'` (default): a put that resolved survives a power loss (data synced before the rename,
   * folder synced after). `'none'`: still atomic (a reader and a crashed process see the old or
   * the new value), but the last writes may be lost on power loss. Faster; fine for tests.
   * `'journal'`: the same guarantee as `'fsync'` on a local disk of a Linux machine, several times
   * faster: value files are not synced one by one; instead each put appends its value to this
   * process's journal segment, and puts made at the same time share one fdatasync. Segments are
   * checkpointed (one syncfs) in the background and replayed by the next open after a power
   * loss. Not on network filesystems (NFS, SMB): use `'fsync'` there.
   */
  durability?: Durability
  /** The filesystem to use; defaults to `node:fs/promises`. Tests pass `memfs().fs.promises`. */
  fs?: FileSystem
  /** A lock or temp file older than this is stale even if its owner looks alive. Default 10 s. */
  lockStaleMs?: number
  /** How long a write waits for a key's lock before failing. Default 30 s. `close()` waits at most twice this for journal writes in flight. */
  lockTimeoutMs?: number
  /** `'journal'` only: a journal segment is checkpointed once it is this old. Default 10 s. */
  checkpointMs?: number
  /**
   * The id of this machine's current boot, read from the kernel by default. Tests set it to
   * simulate a restart after a power loss (the next open then replays the journal).
   */
  bootId?: string
}

/** How a put is made durable; see `FileSystemStorageOptions.durability`. */
export type Durability = 'fsync' | 'journal' | 'none'

/**
 * Stores each key as a file under `root`, atomically and durably.
 *
 * @example
 * const storage = await createFileSystemStorage({ root: './workflow_data' })
 * await storage.put('greeting', new TextEncoder().encode('hello'))
 */
export class FileSystemStorage implements Storage {
  /** Absolute path of the storage folder. */
  readonly root: string
  readonly durability: Durability
  readonly #fs: FileSystem
  readonly #locks: KeyLocks
  readonly #files: ValueFiles
  readonly #writer: Writer
  /** `'journal'`: the journal's disk is local, a synchronous read costs less than a thread-pool round trip. */
  readonly #syncReads: SyncFileSystem | undefined
  readonly #staleMs: number

  /** Creates the storage without touching the disk; prefer `createFileSystemStorage`, which checks the folder. */
  constructor(options: FileSystemStorageOptions) {
    if (typeof options?.root !== 'string' || options.root === '') {
      throw new StorageConfigError('createFileSystemStorage needs `root`: the folder to keep workflows in')
    }
    const durability = options.durability ?? 'fsync'
    if (durability !== 'fsync' && durability !== 'none' && durability !== 'journal') {
      throw new StorageConfigError(
        `durability must be 'fsync', 'journal' or 'none', not ${JSON.stringify(durability)}`,
      )
    }
    this.root = resolve(options.root)
    this.durability = durability
    this.#fs = options.fs ?? nodeFileSystem
    this.#staleMs = positive(options.lockStaleMs, 10_000, 'lockStaleMs')
    const lockTimeoutMs = positive(options.lockTimeoutMs, 30_000, 'lockTimeoutMs')
    this.#locks = new KeyLocks(this.#fs, {
      ownerDir: this.root,
      staleMs: this.#staleMs,
      timeoutMs: lockTimeoutMs,
    })
    if (
      options.bootId !== undefined &&
      (typeof options.bootId !== 'string' || !/^[0-9a-z]{1,32}$/.test(options.bootId))
    ) {
      throw new StorageConfigError(
        `bootId must be 1 to 32 lowercase letters and digits, not ${JSON.stringify(options.bootId)}`,
      )
    }
    const boot = options.bootId ?? currentBoot()
    this.#files = new ValueFiles({
      fs: this.#fs,
      root: this.root,
      locks: this.#locks,
      syncEach: durability === 'fsync',
    })
    if (durability !== 'journal') {
      this.#writer = new FsyncWriter(this.#files, boot)
      return
    }
    if (this.#fs.sync === undefined) {
      throw new StorageConfigError(
        "durability 'journal' needs the synchronous calls of `fs.sync` (see SyncFileSystem): the given `fs` has none",
      )
    }
    if (boot === undefined) {
      throw new StorageConfigError(
        `durability 'journal' needs Linux (it tells reboots apart by the kernel's boot id); use durability 'fsync' on ${process.platform}`,
      )
    }
    this.#syncReads = this.#fs.sync
    this.#writer = new JournaledWriter(this.#files, {
      boot,
      checkpointMs: positive(options.checkpointMs, 10_000, 'checkpointMs'),
      // A put in flight may wait for a lock (lockTimeoutMs), then for its disk writes.
      closeTimeoutMs: 2 * lockTimeoutMs,
    })
  }

  /** Creates the storage and checks that `root` is (or can be made) a writable folder. */
  static async open(options: FileSystemStorageOptions): Promise<FileSystemStorage> {
    const storage = new FileSystemStorage(options)
    await storage.#prepareRoot()
    await storage.#writer.open()
    return storage
  }

  async get(key: string): Promise<StoredValue | undefined> {
    validateKey(key)
    const { file } = this.#files.locate(key)
    let bytes: Uint8Array | undefined
    try {
      const sync = this.#syncReads
      bytes = sync !== undefined ? readFileSyncIfAny(sync, file) : await this.#fs.readFile(file)
    } catch (error) {
      const code = errnoOf(error)
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
      throw unavailable(error, 'reading', file)
    }
    return bytes === undefined ? undefined : decodeRecord(key, file, bytes)
  }

  async put(key: string, data: Uint8Array, condition?: PutCondition): Promise<{ version: string }> {
    validateKey(key)
    if (!(data instanceof Uint8Array)) throw new TypeError('put() takes the value as a Uint8Array')
    const { header, version } = encodeHeader(data)
    await this.#writer.put(key, this.#files.locate(key), header, data, condition)
    return { version }
  }

  /**
   * `put` in two steps (see `Storage.putStaged`): with `durability: 'journal'`, accepted once the
   * file is in place and its journal entry queued, durable once the entry is synced; in the other
   * modes both at once.
   */
  putStaged(key: string, data: Uint8Array, condition?: PutCondition): StagedPut {
    try {
      validateKey(key)
      if (!(data instanceof Uint8Array)) throw new TypeError('put() takes the value as a Uint8Array')
      const { header, version } = encodeHeader(data)
      const at = this.#files.locate(key)
      const staged = this.#writer.putStaged?.(key, at, header, data, condition)
      if (staged === undefined) {
        const put = this.#writer.put(key, at, header, data, condition).then(() => ({ version }))
        return { accepted: put, durable: quiet(put.then(() => undefined)) }
      }
      return { accepted: staged.accepted.then(() => ({ version })), durable: staged.durable }
    } catch (error) {
      const failed = Promise.reject(error)
      return { accepted: failed, durable: quiet(failed.then(() => undefined)) }
    }
  }

  async delete(key: string): Promise<void> {
    validateKey(key)
    await this.#writer.delete(key, this.#files.locate(key))
  }

  async deleteMany(keys: string[]): Promise<void> {
    await mapLimit(keys, this.#writer.deleteWidth, (key) => this.delete(key))
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    validatePrefix(prefix)
    return listKeys(this.#fs, this.root, prefix, options)
  }

  /** Checkpoints the journal (`'journal'` only; other modes hold nothing open between calls). */
  async close(): Promise<void> {
    await this.#writer.close()
    if (this.#fs.sync !== undefined) this.#locks.dropOwnerLink(this.#fs.sync)
  }

  /**
   * Removes what crashed writers left behind: temp files and locks of processes that are gone
   * (or older than an hour / `lockStaleMs` when written from another machine), and folders left
   * empty. Safe to run while other processes use the storage. Returns how many files it removed.
   */
  async cleanup(): Promise<number> {
    return cleanFolder(this.#files, this.#staleMs, this.root)
  }

  async #prepareRoot(): Promise<void> {
    const root = this.root
    try {
      await this.#files.makeFolders(root)
      if (!(await this.#fs.stat(root)).isDirectory())
        throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' })
    } catch (error) {
      // A root that mkdir reports as existing but that cannot be used: a dangling symlink, say.
      if (errnoOf(error) === 'ENOENT') {
        throw new StorageConfigError(
          `cannot use ${root} as the storage folder: ${await whyMissing(this.#fs, root)}. Point root / WF_STORAGE at a folder that exists or can be created`,
          { cause: error },
        )
      }
      if (error instanceof StorageConfigError) throw error
      throw new StorageConfigError(
        `cannot use ${root} as the storage folder: ${describe(error)}. Create it, or point root / WF_STORAGE at a folder this process can write`,
        { cause: error },
      )
    }
    // Creating a file is the only reliable writability test (access() lies on NFS and for root).
    const probe = tempPath(root, 'probe')
    try {
      const handle = await this.#fs.open(probe, 'w', 0o666)
      await handle.close()
      await this.#fs.unlink(probe)
    } catch (error) {
      const code = errnoOf(error)
      if (code === 'ENOSPC' || code === 'EDQUOT') throw unavailable(error, 'creating a file in', root)
      throw new StorageConfigError(
        `the storage folder ${root} is not writable: ${describe(error)}. Give this process write access or choose another folder`,
        { cause: error },
      )
    }
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0)) {
    throw new StorageConfigError(`${name} must be a positive number of milliseconds, not ${String(value)}`)
  }
  return value
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** A staged put's `durable` that fails when `accepted` does: the caller hears of it there. */
function quiet(durable: Promise<void>): Promise<void> {
  durable.catch(() => undefined)
  return durable
}
