// The writer of `durability: 'journal'`. A put writes its value file without fsync and moves it
// into place under the key's lock, takes the entry's timestamp before letting go of the lock (so
// timestamps order every process's writes of the key; see journal.ts), then appends the entry to
// this process's journal and resolves once that append is synced, shared with every put made
// meanwhile. Small values go through synchronous calls (tens of microseconds on a local disk,
// less than a round trip through the thread pool); large ones are synced in their own file.

import { dirname } from 'node:path'
import { ConditionFailedError, type PutCondition, StorageConfigError } from '@wf/core'
import { mapLimit } from '@wf/core/internal'
import { NETWORK_FILESYSTEMS, syncFileSystem } from '../boot.js'
import type { FileSystem, SyncFileSystem } from '../file-system.js'
import { cannotCreateFolder, FolderLoopError } from '../folders.js'
import { fsyncFile, fsyncFolder, readVersion, readVersionSync, unlinkQuiet, unlinkQuietSync } from '../fs.js'
import { errnoOf, unavailable } from '../fs-errors.js'
import type { Location, ValueFiles } from '../value-files.js'
import type { Writer } from '../writer.js'
import { type Entry, EntryKind, monotonicNow } from './format.js'
import { Journal } from './journal.js'
import { recover } from './recovery.js'

const DONE = Promise.resolve()

/** Values bigger than this skip the journal (written twice they would cost more than their own fsync). */
const JOURNAL_MAX_VALUE = 256 * 1024
/** A journal segment is also checkpointed once it holds this many bytes. */
const JOURNAL_SEGMENT_BYTES = 64 * 1024 * 1024

export interface JournaledWriterOptions {
  /** Short id of the current boot (see boot.ts). */
  boot: string
  /** A journal segment is checkpointed once it is this old. */
  checkpointMs: number
  /** How long `close()` waits for journal writes in flight. */
  closeTimeoutMs: number
}

export class JournaledWriter implements Writer {
  /** Deletes made together share the journal's fdatasyncs. */
  readonly deleteWidth = 64
  readonly #files: ValueFiles
  readonly #fs: FileSystem
  readonly #sync: SyncFileSystem
  readonly #boot: string
  readonly #journal: Journal

  /** `files.fs` must have its synchronous calls (`fs.sync`); the front checks that. */
  constructor(files: ValueFiles, options: JournaledWriterOptions) {
    this.#files = files
    this.#fs = files.fs
    this.#sync = files.fs.sync as SyncFileSystem
    this.#boot = options.boot
    this.#journal = new Journal({
      fs: files.fs,
      root: files.root,
      boot: options.boot,
      syncAll: (keys) => this.#syncAll(keys),
      syncFolder: (dir) => fsyncFolder(files.fs, dir),
      writeDurably: (path, bytes) => files.writeDurably(path, bytes),
      rotateMs: options.checkpointMs,
      rotateBytes: JOURNAL_SEGMENT_BYTES,
      closeTimeoutMs: options.closeTimeoutMs,
    })
  }

  /** Refuses a network filesystem, then replays and checkpoints what earlier writers left. */
  async open(): Promise<void> {
    await this.#checkFilesystem()
    await recover(this.#files, this.#boot, this.#journal)
  }

  /** Checkpoints the journal: a closed storage leaves no segment behind. */
  async close(): Promise<void> {
    await this.#journal.close()
  }

  /**
   * The value file is written and moved into place without fsync, all under the key's lock (so
   * the entry's timestamp orders it among every process's writes of the key), then the entry is
   * appended to the journal and the put resolves once that is synced.
   */
  async put(
    key: string,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    condition?: PutCondition,
  ): Promise<void> {
    const { appended } = await this.#stage(key, at, header, data, condition)
    return appended
  }

  /** A small value goes through the journal with synchronous calls, a large one through its own synced file. */
  #stage(
    key: string,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    condition: PutCondition | undefined,
  ): Promise<{ appended: Promise<void> }> {
    return header.byteLength + data.byteLength <= JOURNAL_MAX_VALUE
      ? this.#stageSync(key, at, header, data, condition)
      : this.#stageLarge(key, at, header, data, condition)
  }

  /**
   * The put of a large value: synced in its own file, moved into place under the key's lock, its
   * folder synced, then only its header journaled. Durable without that entry: replay never
   * restores a large value (the entry has no bytes), it only learns the value's version from it,
   * and a file whose version replay does not know is left alone. The entry reaches the disk with
   * the next synced append (entries go in order), which is soon enough: it only matters beside a
   * later entry of the same key, and those come after it. So the put does not wait for a
   * fdatasync of the journal of its own (a step with a large result waited for two).
   */
  async #stageLarge(
    key: string,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    condition: PutCondition | undefined,
  ): Promise<{ appended: Promise<void> }> {
    const files = this.#files
    const journal = this.#journal
    const { swap, create } = conditionOf(condition)
    const ticket = await journal.ticket()
    let entry: Entry | undefined
    let temp: string | undefined
    let refused = false
    try {
      temp = await files.writeTemp(at, header, data, swap === undefined, true)
      if (temp === undefined) throw new ConditionFailedError(key)
      const file = temp
      await files.withLock(key, at, async () => {
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
    try {
      await files.groupSyncFolder(at.dir)
    } catch (error) {
      journal.release(ticket)
      throw unavailable(error, 'syncing the folder of', at.file)
    }
    // A failed append fails the segment, and the puts after this one hear of it.
    journal.append(ticket, entry).catch(() => undefined)
    return { appended: DONE }
  }

  /**
   * A put whose outcome is known before it is durable (`Storage.putStaged`): `accepted` once the
   * file is in place and its entry queued, `durable` once the entry is synced. Entries reach the
   * disk in the order they were queued (journal.ts), so a put accepted before another starts is
   * durable no later than it. A large value is synced in its own file and folder: accepted and
   * durable then (see `#stageLarge`).
   */
  putStaged(
    key: string,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    condition?: PutCondition,
  ): { accepted: Promise<void>; durable: Promise<void> } {
    const staged = this.#stage(key, at, header, data, condition)
    const durable = staged.then(({ appended }) => appended)
    // Refused or failed before acceptance: the caller hears of it from `accepted`.
    durable.catch(() => undefined)
    return { accepted: staged.then(() => undefined), durable }
  }

  /**
   * The put of a small value with synchronous calls: temp file, lock, link or rename, unlock, all
   * without a round trip through the thread pool (tens of microseconds of the event loop on a
   * local disk). Only the journal's append and fdatasync are asynchronous, shared with every put
   * made meanwhile, and so are a rename over an existing value and the wait for a lock someone
   * else holds.
   */
  async #stageSync(
    key: string,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    condition: PutCondition | undefined,
  ): Promise<{ appended: Promise<void> }> {
    const sync = this.#sync
    const journal = this.#journal
    const locks = this.#files.locks
    const { swap, create } = conditionOf(condition)
    const ticket = await journal.ticket()
    let appended: Promise<void> | undefined
    let temp: string | undefined
    let refused = false
    try {
      temp = this.#files.writeTempSync(sync, at, header, data, swap === undefined)
      if (temp === undefined) throw new ConditionFailedError(key)
      if (!locks.tryAcquireSync(sync, at.dir, at.name)) await locks.acquire(at.dir, at.name, key)
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
        locks.releaseSync(sync, at.dir, at.name)
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
    // Resolved once accepted; the append is the caller's to await (wrapped: not flattened).
    return { appended }
  }

  /**
   * A delete, with synchronous calls like a small put: under the key's lock, the file's version is
   * read and the file removed, and the entry is appended. A file whose version cannot be read
   * (torn or damaged) is removed too, its entry's previous version unknown.
   */
  async delete(key: string, at: Location): Promise<void> {
    const sync = this.#sync
    const journal = this.#journal
    const locks = this.#files.locks
    const ticket = await journal.ticket()
    let appended: Promise<void> | undefined
    try {
      if (!locks.tryAcquireSync(sync, at.dir, at.name)) await locks.acquire(at.dir, at.name, key)
      try {
        const prev = readVersionSync(sync, at.file)
        if (prev !== null) {
          sync.unlinkSync(at.file)
          appended = journal.append(ticket, { kind: EntryKind.Delete, at: monotonicNow(), key, prev })
          appended.catch(() => undefined) // awaited below; this only keeps it from being "unhandled"
        }
      } finally {
        locks.releaseSync(sync, at.dir, at.name)
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
    this.#files.removeEmptyFoldersSync(sync, at.dir)
  }

  /**
   * Makes everything written so far durable, for a checkpoint: one syncfs on the real disk of a
   * Linux machine; elsewhere (or if that fails) an fsync of every file the journal names and of
   * the folders above them, so a failure of the disk surfaces here instead of being skipped.
   */
  async #syncAll(keys: () => Promise<Set<string>>): Promise<void> {
    const root = this.#files.root
    // With an injected filesystem (memfs in tests) the root is not on the disk and `sync -f` fails.
    if (await syncFileSystem(root)) return
    const folders = new Set<string>()
    const files: string[] = []
    for (const key of await keys()) {
      const at = this.#files.locate(key)
      files.push(at.file)
      for (let dir = at.dir; dir.startsWith(root) && !folders.has(dir); dir = dirname(dir)) {
        folders.add(dir)
        if (dir === root) break
      }
    }
    await mapLimit(files, 32, (file) => fsyncFile(this.#fs, file))
    await mapLimit([...folders], 32, (dir) => fsyncFolder(this.#fs, dir))
  }

  /** The journal's guarantees rest on one machine owning the disk: refuse it on a network filesystem. */
  async #checkFilesystem(): Promise<void> {
    await refuseNetworkFilesystem(this.#fs, this.#files.root)
  }
}

/**
 * Throws a `StorageConfigError` when `root` is on a network filesystem, where the journal's
 * guarantees do not hold (a machine that reboots must be the only writer of its keys). The front
 * calls it before a new folder records 'journal' too, so such a folder is never recorded so.
 */
export async function refuseNetworkFilesystem(fs: FileSystem, root: string): Promise<void> {
  if (fs.statfs === undefined) return
  let type: number
  try {
    type = Number((await fs.statfs(root)).type)
  } catch {
    return
  }
  const name = NETWORK_FILESYSTEMS.get(type >>> 0)
  if (name !== undefined) {
    throw new StorageConfigError(
      `durability 'journal' needs a local disk, and ${root} is on ${name}: use durability 'fsync' for a new folder there (it works across machines); a folder whose .wf-storage.json records 'journal' must be opened on the machine whose disk holds it (or changed: see "Changing a folder's durability" in the README of @wf/storage-fs)`,
    )
  }
}

/** What a put's condition asks: replace only the version `swap`, or `create` only if absent. */
function conditionOf(condition: PutCondition | undefined): { swap: string | undefined; create: boolean } {
  if (condition === undefined) return { swap: undefined, create: false }
  return 'ifVersion' in condition
    ? { swap: condition.ifVersion, create: false }
    : { swap: undefined, create: 'ifAbsent' in condition }
}
