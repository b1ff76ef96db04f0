// The folder-backed Storage: one file per key, written to a temp file and renamed into place,
// with create-if-absent by link() and compare-and-swap under a per-key lock. See README.md for
// the on-disk layout and what each durability level guarantees. This file is the front: it checks
// options and arguments, reads, lists and cleans, and hands every write to the writer of its
// durability mode (fsync-writer.ts for 'fsync' and 'none', journal/journaled-writer.ts for
// 'journal'), chosen once when the folder is opened: the folder's recorded mode (durability.ts).

import { resolve } from 'node:path'
import {
  type ListOptions,
  type ListPage,
  type PutCondition,
  type StagedPut,
  type Storage,
  StorageConfigError,
  type StorageDescription,
  type StoredValue,
  validateKey,
  validatePrefix,
} from '@wf/core'
import { mapLimit } from '@wf/core/internal'
import { currentBoot } from './boot.js'
import { cleanFolder } from './cleanup.js'
import {
  type Durability,
  detectDurability,
  type FolderMode,
  MODE_FILE,
  settleFolderMode,
} from './durability.js'
import { type FileSystem, nodeFileSystem, type SyncFileSystem } from './file-system.js'
import { whyMissing } from './folders.js'
import { readFileSyncIfAny } from './fs.js'
import { errnoOf, unavailable } from './fs-errors.js'
import { FsyncWriter } from './fsync-writer.js'
import { JournaledWriter, refuseNetworkFilesystem } from './journal/journaled-writer.js'
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
   * How a put is made durable. A folder keeps one mode for life, recorded in the folder
   * (`.wf-storage.json`) when it is first opened; leave this out to use that mode, or, in a new
   * folder, the default: `'journal'` on a local disk of a Linux machine (ext2/3/4, xfs, btrfs,
   * tmpfs), `'fsync'` elsewhere (macOS, Windows, NFS, SMB, FUSE, overlayfs, filesystems wf does
   * not know). Given, it is the mode a new folder records, and must match an existing folder's
   * (else `DurabilityMismatchError`).
   * - `'fsync'`: a put that resolved survives a power loss (data synced before the rename, folder
   *   synced after). Works on network filesystems (NFS, SMB), across machines.
   * - `'journal'`: the same guarantee on a local disk of a Linux machine, several times faster:
   *   value files are not synced one by one; instead each put appends its value to this process's
   *   journal segment, and puts made at the same time share one fdatasync. Segments are
   *   checkpointed (one syncfs) in the background and replayed by the next open after a power loss.
   * - `'none'`: this process's writes are not synced: still atomic (a reader and a crashed process
   *   see the old or the new value), but the last writes may be lost on power loss. Fine for tests
   *   and scratch data. A choice of this process only: it opens a folder of either mode and leaves
   *   its record alone (a new folder records the default).
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

/** What a storage needs once its folder's mode is known: files, writer, and how to read. */
interface Engine {
  files: ValueFiles
  writer: Writer
  /** `'journal'`: the journal's disk is local, a synchronous read costs less than a thread-pool round trip. */
  syncReads: SyncFileSystem | undefined
}

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
  readonly #fs: FileSystem
  readonly #locks: KeyLocks
  readonly #staleMs: number
  readonly #lockTimeoutMs: number
  readonly #checkpointMs: number
  readonly #requested: Durability | undefined
  readonly #boot: string | undefined
  /** Set once the folder is open: its mode is known and its writer ready. */
  #engine: Engine | undefined
  #opening: Promise<Engine> | undefined
  #durability: Durability | undefined
  #reason: string | undefined

  /**
   * Creates the storage without touching the disk; prefer `createFileSystemStorage`, which opens
   * the folder at once. A storage made with `new` opens its folder (reads or records its mode, replays
   * what a power loss cut short) on its first call.
   */
  constructor(options: FileSystemStorageOptions) {
    if (typeof options?.root !== 'string' || options.root === '') {
      throw new StorageConfigError('createFileSystemStorage needs `root`: the folder to keep workflows in')
    }
    const durability = options.durability
    if (
      durability !== undefined &&
      durability !== 'fsync' &&
      durability !== 'none' &&
      durability !== 'journal'
    ) {
      throw new StorageConfigError(
        `durability must be 'fsync', 'journal' or 'none' (or left out: the folder's own mode), not ${JSON.stringify(durability)}`,
      )
    }
    this.root = resolve(options.root)
    this.#requested = durability
    this.#fs = options.fs ?? nodeFileSystem
    this.#staleMs = positive(options.lockStaleMs, 10_000, 'lockStaleMs')
    this.#lockTimeoutMs = positive(options.lockTimeoutMs, 30_000, 'lockTimeoutMs')
    this.#checkpointMs = positive(options.checkpointMs, 10_000, 'checkpointMs')
    this.#locks = new KeyLocks(this.#fs, {
      ownerDir: this.root,
      staleMs: this.#staleMs,
      timeoutMs: this.#lockTimeoutMs,
    })
    if (
      options.bootId !== undefined &&
      (typeof options.bootId !== 'string' || !/^[0-9a-z]{1,32}$/.test(options.bootId))
    ) {
      throw new StorageConfigError(
        `bootId must be 1 to 32 lowercase letters and digits, not ${JSON.stringify(options.bootId)}`,
      )
    }
    this.#boot = options.bootId ?? currentBoot()
    if (durability === 'journal') this.#checkJournal(false)
  }

  /** Creates the storage and opens its folder: checks it is (or can be made) a writable folder, and settles its durability mode. */
  static async open(options: FileSystemStorageOptions): Promise<FileSystemStorage> {
    const storage = new FileSystemStorage(options)
    await storage.#ready()
    return storage
  }

  /**
   * The mode this storage writes in: the folder's recorded mode, or `'none'` when asked for.
   * `undefined` only before a storage made with `new` has opened its folder.
   */
  get durability(): Durability | undefined {
    return this.#durability
  }

  /** The backend, the folder and its durability mode with the reason it has it (for `wf info`). */
  describe(): StorageDescription {
    return {
      backend: '@wf/storage-fs',
      location: this.root,
      ...(this.#durability === undefined ? {} : { durability: this.#durability }),
      ...(this.#reason === undefined ? {} : { durabilityReason: this.#reason }),
    }
  }

  async get(key: string): Promise<StoredValue | undefined> {
    validateKey(key)
    const engine = this.#engine ?? (await this.#ready())
    const { file } = engine.files.locate(key)
    let bytes: Uint8Array | undefined
    try {
      const sync = engine.syncReads
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
    const engine = this.#engine ?? (await this.#ready())
    const { header, version } = encodeHeader(data)
    await engine.writer.put(key, engine.files.locate(key), header, data, condition)
    return { version }
  }

  /**
   * `put` in two steps (see `Storage.putStaged`): with `durability: 'journal'`, accepted once the
   * file is in place and its journal entry queued, durable once the entry is synced; in the other
   * modes both at once.
   */
  putStaged(key: string, data: Uint8Array, condition?: PutCondition): StagedPut {
    const engine = this.#engine
    if (engine === undefined) {
      // Not open yet (its first call): a plain put, which opens it.
      const put = this.put(key, data, condition)
      return { accepted: put, durable: quiet(put.then(() => undefined)) }
    }
    try {
      validateKey(key)
      if (!(data instanceof Uint8Array)) throw new TypeError('put() takes the value as a Uint8Array')
      const { header, version } = encodeHeader(data)
      const at = engine.files.locate(key)
      const staged = engine.writer.putStaged?.(key, at, header, data, condition)
      if (staged === undefined) {
        const put = engine.writer.put(key, at, header, data, condition).then(() => ({ version }))
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
    const engine = this.#engine ?? (await this.#ready())
    await engine.writer.delete(key, engine.files.locate(key))
  }

  async deleteMany(keys: string[]): Promise<void> {
    const engine = this.#engine ?? (await this.#ready())
    await mapLimit(keys, engine.writer.deleteWidth, (key) => this.delete(key))
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    validatePrefix(prefix)
    if (this.#engine === undefined) await this.#ready()
    return listKeys(this.#fs, this.root, prefix, options)
  }

  /** Checkpoints the journal (`'journal'` only; other modes hold nothing open between calls). */
  async close(): Promise<void> {
    const engine = this.#engine ?? (await this.#opening?.catch(() => undefined))
    if (engine === undefined) return
    await engine.writer.close()
    if (this.#fs.sync !== undefined) this.#locks.dropOwnerLink(this.#fs.sync)
  }

  /**
   * Removes what crashed writers left behind: temp files and locks of processes that are gone
   * (or older than an hour / `lockStaleMs` when written from another machine), and folders left
   * empty. Safe to run while other processes use the storage. Returns how many files it removed.
   */
  async cleanup(): Promise<number> {
    const engine = this.#engine ?? (await this.#ready())
    return cleanFolder(engine.files, this.#staleMs, this.root)
  }

  /** Opens the folder once (a failed open is tried again by the next call). */
  #ready(): Promise<Engine> {
    this.#opening ??= this.#open().catch((error) => {
      this.#opening = undefined
      throw error
    })
    return this.#opening
  }

  async #open(): Promise<Engine> {
    const root = this.root
    const fs = this.#fs
    // Making the root and recording its mode are synced whatever the mode: a mode record that a
    // power loss could undo would let the folder change modes.
    const setup = new ValueFiles({ fs, root, locks: this.#locks, syncEach: true })
    await this.#prepareRoot(setup)
    // Before a new folder could record 'journal' where the journal cannot work.
    if (this.#requested === 'journal') await refuseNetworkFilesystem(fs, root)
    const folder = await settleFolderMode(setup, this.#requested, () =>
      detectDurability(root, fs, { platform: process.platform, boot: this.#boot }),
    )
    const durability = this.#requested === 'none' ? 'none' : folder.durability
    if (durability === 'journal' && this.#requested === undefined) this.#checkJournal(true)
    const engine = this.#makeEngine(durability)
    await engine.writer.open()
    this.#engine = engine
    this.#durability = durability
    this.#reason = reasonOf(folder, durability)
    return engine
  }

  #makeEngine(durability: Durability): Engine {
    const files = new ValueFiles({
      fs: this.#fs,
      root: this.root,
      locks: this.#locks,
      syncEach: durability === 'fsync',
    })
    if (durability !== 'journal') {
      return { files, writer: new FsyncWriter(files, this.#boot), syncReads: undefined }
    }
    const writer = new JournaledWriter(files, {
      boot: this.#boot as string,
      checkpointMs: this.#checkpointMs,
      // A put in flight may wait for a lock (lockTimeoutMs), then for its disk writes.
      closeTimeoutMs: 2 * this.#lockTimeoutMs,
    })
    return { files, writer, syncReads: this.#fs.sync }
  }

  /**
   * The journal needs the synchronous calls and the kernel's boot id: asked for (`recorded` false)
   * or the folder's recorded mode (true), where 'fsync' is no way out.
   */
  #checkJournal(recorded: boolean): void {
    const what = recorded
      ? `the storage folder ${this.root} keeps durability 'journal' (see its ${MODE_FILE}), which`
      : "durability 'journal'"
    if (this.#fs.sync === undefined) {
      throw new StorageConfigError(
        `${what} needs the synchronous calls of \`fs.sync\` (see SyncFileSystem): the given \`fs\` has none`,
      )
    }
    if (this.#boot === undefined) {
      const fix = recorded
        ? 'open it on the Linux machine that wrote it'
        : `use durability 'fsync' on ${process.platform}`
      throw new StorageConfigError(
        `${what} needs Linux (it tells reboots apart by the kernel's boot id): ${fix}`,
      )
    }
  }

  async #prepareRoot(files: ValueFiles): Promise<void> {
    const root = this.root
    try {
      await files.makeFolders(root)
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

/** Why this process writes in `durability`, for `describe()`. */
function reasonOf(folder: FolderMode, durability: Durability): string {
  const when = folder.created ? 'recorded now, by this process' : `recorded ${folder.recordedAt}`
  const mode = `the folder's mode (${when}): ${folder.reason}`
  return durability === 'none'
    ? `durability 'none' was asked for: this process does not sync its writes; ${folder.durability} is ${mode}`
    : mode
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** A staged put's `durable` that fails when `accepted` does: the caller hears of it there. */
function quiet(durable: Promise<void>): Promise<void> {
  durable.catch(() => undefined)
  return durable
}
