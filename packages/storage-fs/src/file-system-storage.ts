// The folder-backed Storage: one file per key, written to a temp file and renamed into place,
// with create-if-absent by link() and compare-and-swap under a per-key lock. See README.md for
// the on-disk layout and what each durability level guarantees.

import { statfs } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import {
  ConditionFailedError,
  CorruptRecordError,
  type ListOptions,
  type ListPage,
  type PutCondition,
  type Storage,
  StorageConfigError,
  type StoredValue,
  validateKey,
  validatePrefix,
} from '@wf/core'
import { currentBoot, NETWORK_FILESYSTEMS, syncFileSystem } from './boot.js'
import { type FileHandleLike, type FileSystem, nodeFileSystem, type SyncFileSystem } from './file-system.js'
import { FolderSyncs } from './folder-sync.js'
import { cannotCreateFolder, FolderLoopError, makeFolder, makeFoldersSync, whyMissing } from './folders.js'
import {
  fsyncFile,
  fsyncFolder,
  linkedAnyway,
  readFileSyncIfAny,
  readVersion,
  readVersionSync,
  unlinkQuiet,
  unlinkQuietSync,
  writeAll,
  writeAllSync,
} from './fs.js'
import { errnoOf, unavailable } from './fs-errors.js'
import {
  type Entry,
  EntryKind,
  JOURNAL_FOLDER,
  listSegments,
  monotonicNow,
  versionOfFile,
} from './journal/format.js'
import { Journal } from './journal/journal.js'
import { isAbandoned, replayOtherBoots } from './journal/replay.js'
import { keyToParts } from './key-path.js'
import { KnownFolders } from './known-folders.js'
import { listKeys } from './list.js'
import { BREAKER_PREFIX, KeyLocks, LOCK_PREFIX, OWNER_LINK_PREFIX } from './lock.js'
import { mapLimit } from './map-limit.js'
import { isOwnerDead, OWNER_STAMP } from './owner.js'
import { decodeRecord, encodeHeader } from './record.js'

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

/** Values bigger than this skip the journal (written twice they would cost more than their own fsync). */
const JOURNAL_MAX_VALUE = 256 * 1024
/** A journal segment is also checkpointed once it holds this many bytes. */
const JOURNAL_SEGMENT_BYTES = 64 * 1024 * 1024
const RECOVERY_LOCK = 'recovery'

const TEMP_PREFIX = '.tmp.'
/**
 * Numbers the temp files of this process. Module-wide, not per storage: two storages opened on
 * one folder in one process must not pick the same temp name.
 */
let tempCounter = 0
/** Temp files of a live process are removed by `cleanup()` only after this long (other hosts). */
const TEMP_STALE_MS = 60 * 60 * 1000
/** Retries when a folder is created and a concurrent delete removes it again before we use it. */
const FOLDER_RETRIES = 16

interface Location {
  /** Folder of the value file. */
  dir: string
  /** Name of the value file in `dir`. */
  name: string
  /** Full path of the value file. */
  file: string
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
  readonly durability: Durability
  readonly #fs: FileSystem
  /** True when each file is synced on its own (`'fsync'`). */
  readonly #sync: boolean
  readonly #journal: Journal | undefined
  readonly #boot: string | undefined
  readonly #locks: KeyLocks
  readonly #folderSyncs = new FolderSyncs((dir) => fsyncFolder(this.#fs, dir))
  /** `'journal'`: folders its synchronous puts wrote to lately. */
  readonly #knownFolders = new KnownFolders()
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
    this.#sync = durability === 'fsync'
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
    this.#boot = options.bootId ?? currentBoot()
    if (durability === 'journal') {
      if (this.#fs.sync === undefined) {
        throw new StorageConfigError(
          "durability 'journal' needs the synchronous calls of `fs.sync` (see SyncFileSystem): the given `fs` has none",
        )
      }
      if (this.#boot === undefined) {
        throw new StorageConfigError(
          `durability 'journal' needs Linux (it tells reboots apart by the kernel's boot id); use durability 'fsync' on ${process.platform}`,
        )
      }
      this.#journal = new Journal({
        fs: this.#fs,
        root: this.root,
        boot: this.#boot,
        syncAll: (keys) => this.#syncAll(keys),
        syncFolder: (dir) => fsyncFolder(this.#fs, dir),
        writeDurably: (path, bytes) => this.#writeDurably(path, bytes),
        rotateMs: positive(options.checkpointMs, 10_000, 'checkpointMs'),
        rotateBytes: JOURNAL_SEGMENT_BYTES,
        // A put in flight may wait for a lock (lockTimeoutMs), then for its disk writes.
        closeTimeoutMs: 2 * lockTimeoutMs,
      })
    }
  }

  /** Creates the storage and checks that `root` is (or can be made) a writable folder. */
  static async open(options: FileSystemStorageOptions): Promise<FileSystemStorage> {
    const storage = new FileSystemStorage(options)
    await storage.#prepareRoot()
    await storage.#checkFilesystem()
    await storage.#recover()
    return storage
  }

  async get(key: string): Promise<StoredValue | undefined> {
    validateKey(key)
    const { file } = this.#locate(key)
    let bytes: Uint8Array | undefined
    try {
      // The journal's disk is local: a synchronous read costs less than a thread-pool round trip.
      const sync = this.#journal !== undefined ? this.#fs.sync : undefined
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
    const at = this.#locate(key)
    const { header, version } = encodeHeader(data)
    if (this.#journal !== undefined) {
      await this.#journaledPut(key, at, header, data, condition)
      return { version }
    }

    if (condition !== undefined && 'ifVersion' in condition) {
      await this.#compareAndSwap(key, at, header, data, condition.ifVersion)
      return { version }
    }

    const temp = (await this.#writeTemp(at, header, data, true)) as string
    if (condition !== undefined && 'ifAbsent' in condition) {
      // link() fails with EEXIST if the key exists, atomically, across processes and on NFS; the
      // temp file is complete, so the key never appears half-written.
      try {
        await this.#fs.link(temp, at.file)
      } catch (error) {
        const won = errnoOf(error) === 'EEXIST' && (await linkedAnyway(this.#fs, temp))
        await unlinkQuiet(this.#fs, temp)
        if (won) {
          await this.#syncFolder(at.dir)
          return { version }
        }
        if (errnoOf(error) === 'EEXIST') throw new ConditionFailedError(key)
        throw unavailable(error, 'creating', at.file)
      }
      await unlinkQuiet(this.#fs, temp)
    } else {
      // The rename is done under the key's lock so that a plain put cannot land between a
      // compare-and-swap's version check and its rename (which would let the swap succeed
      // against a version that is already gone, and lose this put).
      try {
        await this.#withLock(key, at, () => this.#fs.rename(temp, at.file))
      } catch (error) {
        await unlinkQuiet(this.#fs, temp)
        throw unavailable(error, 'replacing', at.file)
      }
    }
    await this.#syncFolder(at.dir)
    return { version }
  }

  async delete(key: string): Promise<void> {
    validateKey(key)
    const at = this.#locate(key)
    if (this.#journal !== undefined) return this.#journaledDelete(key, at, this.#journal)
    try {
      await this.#locks.acquire(at.dir, at.name, key)
    } catch (error) {
      // No folder, no key: deleting a missing key is not an error.
      if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return
      throw unavailable(error, 'locking', at.file)
    }
    let removed = false
    try {
      await this.#fs.unlink(at.file)
      removed = true
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw unavailable(error, 'deleting', at.file)
    } finally {
      await this.#locks.release(at.dir, at.name)
    }
    if (!removed) return
    await this.#syncFolder(at.dir)
    await this.#removeEmptyFolders(at.dir)
  }

  async deleteMany(keys: string[]): Promise<void> {
    // With the journal, deletes made together share its fdatasyncs.
    if (this.#journal !== undefined) await mapLimit(keys, 64, (key) => this.delete(key))
    else for (const key of keys) await this.delete(key)
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    validatePrefix(prefix)
    return listKeys(this.#fs, this.root, prefix, options)
  }

  /** Checkpoints the journal (`'journal'` only; other modes hold nothing open between calls). */
  async close(): Promise<void> {
    await this.#journal?.close()
    if (this.#fs.sync !== undefined) this.#locks.dropOwnerLink(this.#fs.sync)
  }

  /**
   * Removes what crashed writers left behind: temp files and locks of processes that are gone
   * (or older than an hour / `lockStaleMs` when written from another machine), and folders left
   * empty. Safe to run while other processes use the storage. Returns how many files it removed.
   */
  async cleanup(): Promise<number> {
    return this.#cleanFolder(this.root)
  }

  // --- writing --------------------------------------------------------------------------------

  #locate(key: string): Location {
    const parts = keyToParts(key)
    const name = parts.pop() as string
    const dir = join(this.root, ...parts)
    return { dir, name, file: join(dir, name) }
  }

  /**
   * Writes header and data to a new temp file next to the target (same folder, so the rename is
   * atomic) and syncs it. Returns its path, or `undefined` when the folder is missing and
   * `createFolders` is false. On failure nothing is left behind.
   */
  async #writeTemp(
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    createFolders: boolean,
    sync = this.#sync,
  ): Promise<string | undefined> {
    for (let attempt = 0; ; attempt++) {
      // The owner stamp in the name lets cleanup() tell a crashed writer's file from a live one's.
      const temp = join(at.dir, `${TEMP_PREFIX}${OWNER_STAMP}.${tempCounter++}`)
      let handle: FileHandleLike
      try {
        handle = await this.#fs.open(temp, 'wx', 0o666)
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' && attempt < FOLDER_RETRIES) {
          if (!createFolders) return undefined
          await this.#makeFolders(at.dir)
          continue
        }
        throw unavailable(error, 'creating', temp)
      }
      try {
        await writeAll(handle, header, data)
        // fdatasync is enough: it also flushes the file size, which is all the metadata we need.
        if (sync) await handle.datasync()
        await handle.close()
      } catch (error) {
        await handle.close().catch(() => undefined)
        await unlinkQuiet(this.#fs, temp)
        throw unavailable(error, 'writing', temp)
      }
      return temp
    }
  }

  async #compareAndSwap(
    key: string,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    expected: string,
  ): Promise<void> {
    // The value is written and synced before the lock is taken: the lock covers only the version
    // check and the rename, so 20 racing writers wait microseconds, not fsyncs.
    const temp = await this.#writeTemp(at, header, data, false)
    if (temp === undefined) throw new ConditionFailedError(key)
    let swapped = false
    try {
      await this.#withLock(key, at, async () => {
        if ((await readVersion(this.#fs, at.file)) !== expected) return
        await this.#fs.rename(temp, at.file)
        swapped = true
      })
    } catch (error) {
      throw unavailable(error, 'replacing', at.file)
    } finally {
      if (!swapped) await unlinkQuiet(this.#fs, temp)
    }
    if (!swapped) throw new ConditionFailedError(key)
    await this.#syncFolder(at.dir)
  }

  // --- the journal ----------------------------------------------------------------------------

  /**
   * A put in `'journal'` mode: the value file is written and moved into place without fsync, all
   * under the key's lock (so the entry's timestamp orders it among every process's writes of the
   * key), then the entry is appended to the journal and the put resolves once that is synced.
   */
  async #journaledPut(
    key: string,
    at: Location,
    header: Buffer,
    data: Uint8Array,
    condition: PutCondition | undefined,
  ): Promise<void> {
    const journal = this.#journal as Journal
    const sync = this.#fs.sync as SyncFileSystem
    if (header.byteLength + data.byteLength <= JOURNAL_MAX_VALUE) {
      return this.#journaledPutSync(sync, journal, key, at, header, data, condition)
    }
    // A large value is synced in its own file, and only its header journaled (for order).
    const swap = condition !== undefined && 'ifVersion' in condition ? condition.ifVersion : undefined
    const create = condition !== undefined && 'ifAbsent' in condition
    const ticket = await journal.ticket()
    let entry: Entry | undefined
    let temp: string | undefined
    let refused = false
    try {
      temp = await this.#writeTemp(at, header, data, swap === undefined, true)
      if (temp === undefined) throw new ConditionFailedError(key)
      const file = temp
      await this.#withLock(key, at, async () => {
        let prev: string | null = null
        if (create) {
          try {
            await this.#fs.link(file, at.file)
          } catch (error) {
            if (errnoOf(error) !== 'EEXIST') throw error
            refused = true
            return
          }
        } else {
          prev = (await readVersion(this.#fs, at.file)) ?? null
          if (swap !== undefined && prev !== swap) {
            refused = true
            return
          }
          await this.#fs.rename(file, at.file)
          temp = undefined
        }
        entry = { kind: EntryKind.Synced, at: monotonicNow(), key, prev, file: header }
      })
    } catch (error) {
      journal.release(ticket)
      if (error instanceof ConditionFailedError) throw error
      throw unavailable(error, 'writing', at.file)
    } finally {
      if (temp !== undefined) await unlinkQuiet(this.#fs, temp)
    }
    if (refused || entry === undefined) {
      journal.release(ticket)
      throw new ConditionFailedError(key)
    }
    // The file must be in place for good before its entry says so.
    await this.#folderSyncs.sync(at.dir)
    await journal.append(ticket, entry)
  }

  /**
   * The journaled put of a small value with synchronous calls: temp file, lock, link or rename,
   * unlock, all without a round trip through the thread pool (tens of microseconds of the event
   * loop on a local disk). Only the journal's append and fdatasync are asynchronous, shared with
   * every put made meanwhile, and so are a rename over an existing value and the wait for a lock
   * someone else holds.
   */
  async #journaledPutSync(
    sync: SyncFileSystem,
    journal: Journal,
    key: string,
    at: Location,
    header: Buffer,
    data: Uint8Array,
    condition: PutCondition | undefined,
  ): Promise<void> {
    const swap = condition !== undefined && 'ifVersion' in condition ? condition.ifVersion : undefined
    const create = condition !== undefined && 'ifAbsent' in condition
    const ticket = await journal.ticket()
    let appended: Promise<void> | undefined
    let temp: string | undefined
    let refused = false
    try {
      temp = this.#writeTempSync(sync, at, header, data, swap === undefined)
      if (temp === undefined) throw new ConditionFailedError(key)
      if (!this.#locks.tryAcquireSync(sync, at.dir, at.name)) await this.#locks.acquire(at.dir, at.name, key)
      try {
        let prev: string | null | undefined = null
        if (create) {
          try {
            sync.linkSync(temp, at.file)
          } catch (error) {
            if (errnoOf(error) !== 'EEXIST') throw error
            refused = true
          }
        } else {
          // A torn file's version is not known (`undefined`): the entry says so.
          prev = readVersionSync(sync, at.file)
          if (swap !== undefined && prev !== swap) refused = true
          else {
            // A rename over an existing file makes ext4 start writing the new file's data out
            // (auto_da_alloc), within the call: about 0.15 ms, too long for the event loop, so
            // that one goes through the thread pool (the lock is held meanwhile).
            if (prev === null) sync.renameSync(temp, at.file)
            else await this.#fs.rename(temp, at.file)
            temp = undefined
          }
        }
        if (!refused) {
          const file = Buffer.concat([header, data])
          appended = journal.append(ticket, { kind: EntryKind.Put, at: monotonicNow(), key, prev, file })
          appended.catch(() => undefined) // awaited below; this only keeps it from being "unhandled"
        }
      } finally {
        this.#locks.releaseSync(sync, at.dir, at.name)
      }
    } catch (error) {
      if (appended === undefined) journal.release(ticket)
      if (temp !== undefined) unlinkQuietSync(sync, temp)
      if (error instanceof ConditionFailedError) throw error
      if (error instanceof FolderLoopError) throw await cannotCreateFolder(this.#fs, error.dir)
      throw unavailable(error, 'writing', at.file)
    }
    if (temp !== undefined) unlinkQuietSync(sync, temp)
    if (refused || appended === undefined) {
      journal.release(ticket)
      throw new ConditionFailedError(key)
    }
    await appended
  }

  /**
   * `#writeTemp` with synchronous calls and no fsync (the journal's fast path). A folder it has not
   * written to lately is created first (most are new: a workflow's own folders), rather than found
   * missing by a failed open.
   */
  #writeTempSync(
    sync: SyncFileSystem,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    createFolders: boolean,
  ): string | undefined {
    if (createFolders && !this.#knownFolders.has(at.dir)) makeFoldersSync(sync, at.dir)
    for (let attempt = 0; ; attempt++) {
      const temp = join(at.dir, `${TEMP_PREFIX}${OWNER_STAMP}.${tempCounter++}`)
      let fd: number
      try {
        fd = sync.openSync(temp, 'wx', 0o666)
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' && attempt < FOLDER_RETRIES) {
          this.#knownFolders.forget(at.dir)
          if (!createFolders) return undefined
          makeFoldersSync(sync, at.dir)
          continue
        }
        throw unavailable(error, 'creating', temp)
      }
      this.#knownFolders.add(at.dir)
      try {
        writeAllSync(sync, fd, header, data)
      } catch (error) {
        try {
          sync.closeSync(fd)
        } catch {}
        unlinkQuietSync(sync, temp)
        throw unavailable(error, 'writing', temp)
      }
      sync.closeSync(fd)
      return temp
    }
  }

  /**
   * A delete in `'journal'` mode, with synchronous calls like a small put: under the key's lock,
   * the file's version is read and the file removed, and the entry is appended. A file whose
   * version cannot be read (torn or damaged) is removed too, its entry's previous version unknown.
   */
  async #journaledDelete(key: string, at: Location, journal: Journal): Promise<void> {
    const sync = this.#fs.sync as SyncFileSystem
    const ticket = await journal.ticket()
    let appended: Promise<void> | undefined
    try {
      if (!this.#locks.tryAcquireSync(sync, at.dir, at.name)) await this.#locks.acquire(at.dir, at.name, key)
      try {
        const prev = readVersionSync(sync, at.file)
        if (prev !== null) {
          sync.unlinkSync(at.file)
          appended = journal.append(ticket, { kind: EntryKind.Delete, at: monotonicNow(), key, prev })
          appended.catch(() => undefined) // awaited below; this only keeps it from being "unhandled"
        }
      } finally {
        this.#locks.releaseSync(sync, at.dir, at.name)
      }
    } catch (error) {
      if (appended === undefined) journal.release(ticket)
      // No folder, no key: deleting a missing key is not an error.
      if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return
      throw unavailable(error, 'deleting', at.file)
    }
    if (appended === undefined) {
      journal.release(ticket)
      return
    }
    await appended
    removeEmptyFoldersSync(sync, this.root, at.dir, this.#knownFolders)
  }

  /**
   * Makes everything written so far durable, for a checkpoint: one syncfs on the real disk of a
   * Linux machine; elsewhere (or if that fails) an fsync of every file the journal names and of
   * the folders above them, so a failure of the disk surfaces here instead of being skipped.
   */
  async #syncAll(keys: () => Promise<Set<string>>): Promise<void> {
    // With an injected filesystem (memfs in tests) the root is not on the disk and `sync -f` fails.
    if (await syncFileSystem(this.root)) return
    const folders = new Set<string>()
    const files: string[] = []
    for (const key of await keys()) {
      const at = this.#locate(key)
      files.push(at.file)
      for (let dir = at.dir; dir.startsWith(this.root) && !folders.has(dir); dir = dirname(dir)) {
        folders.add(dir)
        if (dir === this.root) break
      }
    }
    await mapLimit(files, 32, (file) => fsyncFile(this.#fs, file))
    await mapLimit([...folders], 32, (dir) => fsyncFolder(this.#fs, dir))
  }

  /** Writes a whole file durably and atomically, whatever the durability of this storage. */
  async #writeDurably(path: string, bytes: Uint8Array): Promise<void> {
    const at: Location = { dir: dirname(path), name: path.slice(dirname(path).length + 1), file: path }
    const temp = (await this.#writeTemp(at, bytes, new Uint8Array(), true, true)) as string
    try {
      await this.#fs.rename(temp, path)
    } catch (error) {
      await unlinkQuiet(this.#fs, temp)
      throw unavailable(error, 'replacing', path)
    }
    await fsyncFolder(this.#fs, at.dir)
  }

  /** The journal's guarantees rest on one machine owning the disk: refuse it on a network filesystem. */
  async #checkFilesystem(): Promise<void> {
    if (this.#journal === undefined || this.#fs !== nodeFileSystem) return
    let type: number
    try {
      type = Number((await statfs(this.root)).type)
    } catch {
      return
    }
    const name = NETWORK_FILESYSTEMS.get(type >>> 0)
    if (name !== undefined) {
      throw new StorageConfigError(
        `durability 'journal' needs a local disk, and ${this.root} is on ${name}: use durability 'fsync' there (it works across machines)`,
      )
    }
  }

  /**
   * Replays what a power loss or an OS crash cut short: journal segments of an earlier boot of
   * this machine. All processes opening the folder wait for the one that replays. Segments of
   * processes that died on this boot need no replay (their files are in the page cache); a
   * checkpoint covers and deletes them.
   */
  async #recover(): Promise<void> {
    const boot = this.#boot
    if (boot === undefined) return
    const dir = join(this.root, JOURNAL_FOLDER)
    const segments = await listSegments(this.#fs, dir)
    if (segments.some((s) => isAbandoned(s, boot) && s.boot !== boot)) {
      await this.#locks.acquire(dir, RECOVERY_LOCK, `${JOURNAL_FOLDER}/${RECOVERY_LOCK}`)
      try {
        await replayOtherBoots(this.#fs, dir, boot, (entry, known) => this.#applyEntry(entry, known))
        await fsyncFolder(this.#fs, dir)
      } finally {
        await this.#locks.release(dir, RECOVERY_LOCK)
      }
    }
    if (this.#journal !== undefined && segments.some((s) => s.boot === boot && isAbandoned(s, boot))) {
      await this.#journal.checkpoint()
    }
  }

  /** Brings one key back to a journaled state after a power loss (see `ApplyEntry`). */
  async #applyEntry(entry: Entry, known: ReadonlySet<string | null>): Promise<void> {
    const at = this.#locate(entry.key)
    let current: string | null | 'torn'
    try {
      current = (await readVersion(this.#fs, at.file)) ?? 'torn'
      if (current !== 'torn') decodeRecord(entry.key, at.file, await this.#fs.readFile(at.file))
    } catch (error) {
      if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') current = null
      else if (error instanceof CorruptRecordError) current = 'torn'
      else throw unavailable(error, 'reading', at.file)
    }
    const target = entry.kind === EntryKind.Delete ? null : versionOfFile(entry.file)
    if (current === target || (current !== 'torn' && !known.has(current))) return
    if (entry.kind === EntryKind.Delete) {
      await unlinkQuiet(this.#fs, at.file)
      await fsyncFolder(this.#fs, at.dir)
    } else if (entry.kind === EntryKind.Put) {
      await makeFolder(this.#fs, at.dir, [])
      await this.#writeDurably(at.file, entry.file as Uint8Array)
      await this.#syncParents(at.dir)
    }
  }

  /** fsyncs every folder from `dir` up to the root (after a replay recreated some of them). */
  async #syncParents(dir: string): Promise<void> {
    for (let folder = dirname(dir); folder.startsWith(this.root); folder = dirname(folder)) {
      await fsyncFolder(this.#fs, folder)
      if (folder === this.root) return
    }
  }

  async #withLock(key: string, at: Location, action: () => Promise<void>): Promise<void> {
    await this.#locks.acquire(at.dir, at.name, key)
    try {
      await action()
    } finally {
      await this.#locks.release(at.dir, at.name)
    }
  }

  /** Creates `dir` and missing parents, then syncs the parents so the new folders survive a crash. */
  async #makeFolders(dir: string): Promise<void> {
    const created: string[] = []
    await makeFolder(this.#fs, dir, created)
    for (const folder of created) await this.#syncFolder(dirname(folder))
  }

  /**
   * fsync of a folder makes the renames and links in it durable. Concurrent callers for one folder
   * share an fsync (group commit), but each waits for one that started after it called.
   */
  async #syncFolder(dir: string): Promise<void> {
    if (!this.#sync) return
    await this.#folderSyncs.sync(dir)
  }

  /** Removes `dir` and its parents while they are empty, never `root`. */
  async #removeEmptyFolders(dir: string): Promise<void> {
    let folder = dir
    while (folder !== this.root && folder.startsWith(this.root)) {
      try {
        await this.#fs.rmdir(folder)
      } catch {
        return // not empty (or already gone): parents are not empty either
      }
      this.#knownFolders.forget(folder)
      folder = dirname(folder)
    }
  }

  // --- opening and cleaning -------------------------------------------------------------------

  async #prepareRoot(): Promise<void> {
    const root = this.root
    try {
      await this.#makeFolders(root)
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
    const probe = join(root, `${TEMP_PREFIX}${OWNER_STAMP}.probe${tempCounter++}`)
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

  async #cleanFolder(dir: string): Promise<number> {
    let names: string[]
    try {
      names = await this.#fs.readdir(dir)
    } catch (error) {
      if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return 0
      throw unavailable(error, 'cleaning', dir)
    }
    let removed = 0
    for (const name of names) {
      const path = join(dir, name)
      if (name.startsWith(TEMP_PREFIX)) {
        if (await this.#isStaleTemp(name.slice(TEMP_PREFIX.length), path)) {
          await unlinkQuiet(this.#fs, path)
          removed++
        }
      } else if (name.startsWith(LOCK_PREFIX)) {
        // removeIfStale also reports a lock released meanwhile; count only what was there before.
        if (await this.#locks.removeIfStale(dir, name.slice(LOCK_PREFIX.length))) removed++
      } else if (name.startsWith(BREAKER_PREFIX)) {
        if (await this.#locks.removeStaleBreaker(dir, name.slice(BREAKER_PREFIX.length))) removed++
      } else if (name.startsWith(OWNER_LINK_PREFIX) && dir === this.root) {
        const maxAgeMs = Math.max(TEMP_STALE_MS, this.#staleMs)
        if (await this.#locks.removeStaleOwnerLink(dir, name, maxAgeMs)) removed++
      } else if (!name.startsWith('.') || (name === JOURNAL_FOLDER && dir === this.root)) {
        // The journal folder holds temp files of checkpoint marks and the recovery lock too.
        removed += await this.#cleanFolder(path)
      }
    }
    if (dir !== this.root) await this.#removeEmptyFolders(dir)
    return removed
  }

  async #isStaleTemp(stamp: string, path: string): Promise<boolean> {
    if (isOwnerDead(stamp)) return true
    try {
      return Date.now() - (await this.#fs.lstat(path)).mtimeMs > Math.max(TEMP_STALE_MS, this.#staleMs)
    } catch {
      return false
    }
  }
}

/** Removes `dir` and its parents while they are empty, never `root`, with synchronous calls. */
function removeEmptyFoldersSync(sync: SyncFileSystem, root: string, dir: string, known: KnownFolders): void {
  for (let folder = dir; folder !== root && folder.startsWith(root); folder = dirname(folder)) {
    try {
      sync.rmdirSync(folder)
    } catch {
      return // not empty (or already gone): parents are not empty either
    }
    known.forget(folder)
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
