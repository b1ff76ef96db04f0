// The value files of a storage folder as every writer sees them: where a key's file lives, temp
// files written next to it (same folder, so a rename or link moves them into place atomically),
// the key's lock around a check and a rename, folders made and removed, and folder fsyncs shared
// by the writes that land in one folder at once. Both writers (fsync-writer.ts and
// journal/journaled-writer.ts), recovery and cleanup work through one instance of this class.

import { dirname, join } from 'node:path'
import type { FileHandleLike, FileSystem, SyncFileSystem } from './file-system.js'
import { FolderSyncs } from './folder-sync.js'
import { makeFolder, makeFoldersSync } from './folders.js'
import { fsyncFolder, unlinkQuiet, unlinkQuietSync, writeAll, writeAllSync } from './fs.js'
import { errnoOf, unavailable } from './fs-errors.js'
import { keyToParts } from './key-path.js'
import { KnownFolders } from './known-folders.js'
import type { KeyLocks } from './lock.js'
import { OWNER_STAMP } from './owner.js'

export const TEMP_PREFIX = '.tmp.'
/**
 * Numbers the temp files of this process. Module-wide, not per storage: two storages opened on
 * one folder in one process must not pick the same temp name.
 */
let tempCounter = 0
const DONE = Promise.resolve()
/** Retries when a folder is created and a concurrent delete removes it again before we use it. */
const FOLDER_RETRIES = 16

/**
 * A new temp file name in `dir`: `.tmp.<owner stamp>.<tag><n>`. The owner stamp lets cleanup()
 * tell a crashed writer's file from a live one's.
 */
export function tempPath(dir: string, tag = ''): string {
  return join(dir, `${TEMP_PREFIX}${OWNER_STAMP}.${tag}${tempCounter++}`)
}

export interface Location {
  /** Folder of the value file. */
  dir: string
  /** Name of the value file in `dir`. */
  name: string
  /** Full path of the value file. */
  file: string
}

export interface ValueFilesOptions {
  fs: FileSystem
  /** Absolute path of the storage folder. */
  root: string
  locks: KeyLocks
  /** True when each file and folder change is synced on its own (`'fsync'`). */
  syncEach: boolean
}

export class ValueFiles {
  readonly fs: FileSystem
  readonly root: string
  readonly locks: KeyLocks
  /** True when each file and folder change is synced on its own (`'fsync'`). */
  readonly syncEach: boolean
  /** Folders the journal's synchronous puts wrote to lately. */
  readonly knownFolders = new KnownFolders()
  /**
   * Folders whose entries up to the root this process synced (`writeTemp`): a hint, bounded; a
   * folder it no longer names costs its chain's fsyncs again.
   */
  readonly #durableFolders = new KnownFolders()
  readonly #folderSyncs: FolderSyncs

  constructor(options: ValueFilesOptions) {
    this.fs = options.fs
    this.root = options.root
    this.locks = options.locks
    this.syncEach = options.syncEach
    this.#folderSyncs = new FolderSyncs((dir) => fsyncFolder(this.fs, dir))
  }

  locate(key: string): Location {
    const parts = keyToParts(key)
    const name = parts.pop() as string
    const dir = join(this.root, ...parts)
    return { dir, name, file: join(dir, name) }
  }

  /**
   * Writes header and data to a new temp file next to the target (same folder, so the rename is
   * atomic) and syncs it (when `sync`). Returns its path, or `undefined` when the folder is
   * missing and `createFolders` is false. On failure nothing is left behind.
   *
   * A synced file's folders are made durable too, side by side with the file's write (a
   * workflow's first write in a new folder used to wait for the parent's fsync, then for its own
   * file): with `'fsync'`, the parents of the folders it makes (every folder above was made so);
   * otherwise (the journal's large values, which replay cannot make again, and its marks) every
   * folder from the file's folder's parent up to the root, once per folder (`#durableFolders`),
   * since the journal's own puts make folders without an fsync. The caller syncs the file's folder
   * after moving the file into place.
   */
  async writeTemp(
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    createFolders: boolean,
    sync = this.syncEach,
  ): Promise<string | undefined> {
    let parentsSynced: Promise<void> | undefined
    let madeFolders = false
    for (let attempt = 0; ; attempt++) {
      const temp = tempPath(at.dir)
      let handle: FileHandleLike
      try {
        handle = await this.fs.open(temp, 'wx', 0o666)
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' && attempt < FOLDER_RETRIES) {
          if (!createFolders) return undefined
          const { synced: syncing } = await this.#makeFolders(at.dir, sync && this.syncEach)
          madeFolders = true
          // Awaited below, with the file; only keeps a failure from going unhandled meanwhile.
          syncing.catch(() => undefined)
          parentsSynced =
            parentsSynced === undefined ? syncing : Promise.all([parentsSynced, syncing]).then(() => {})
          continue
        }
        await parentsSynced?.catch(() => undefined)
        throw unavailable(error, 'creating', temp)
      }
      const chain = sync && !this.syncEach && (madeFolders || !this.#durableFolders.has(at.dir))
      if (chain) {
        const syncing = this.syncParents(at.dir)
        syncing.catch(() => undefined) // awaited below, with the file
        parentsSynced = syncing
      }
      try {
        await writeAll(handle, header, data)
        // fdatasync is enough: it also flushes the file size, which is all the metadata we need.
        if (sync) await handle.datasync()
        await handle.close()
      } catch (error) {
        await handle.close().catch(() => undefined)
        await parentsSynced?.catch(() => undefined)
        await unlinkQuiet(this.fs, temp)
        throw unavailable(error, 'writing', temp)
      }
      if (parentsSynced !== undefined) {
        try {
          await parentsSynced
        } catch (error) {
          await unlinkQuiet(this.fs, temp)
          throw error
        }
        if (chain) this.#durableFolders.add(at.dir)
      }
      return temp
    }
  }

  /**
   * `writeTemp` with synchronous calls and no fsync (the journal's fast path). A folder it has not
   * written to lately is created first (most are new: a workflow's own folders), rather than found
   * missing by a failed open.
   */
  writeTempSync(
    sync: SyncFileSystem,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    createFolders: boolean,
  ): string | undefined {
    if (createFolders && !this.knownFolders.has(at.dir)) makeFoldersSync(sync, at.dir)
    for (let attempt = 0; ; attempt++) {
      const temp = tempPath(at.dir)
      let fd: number
      try {
        fd = sync.openSync(temp, 'wx', 0o666)
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' && attempt < FOLDER_RETRIES) {
          this.knownFolders.forget(at.dir)
          if (!createFolders) return undefined
          makeFoldersSync(sync, at.dir)
          continue
        }
        throw unavailable(error, 'creating', temp)
      }
      this.knownFolders.add(at.dir)
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

  /** Writes a whole file durably and atomically, whatever the durability of this storage. */
  async writeDurably(path: string, bytes: Uint8Array): Promise<void> {
    const at: Location = { dir: dirname(path), name: path.slice(dirname(path).length + 1), file: path }
    const temp = (await this.writeTemp(at, bytes, new Uint8Array(), true, true)) as string
    try {
      await this.fs.rename(temp, path)
    } catch (error) {
      await unlinkQuiet(this.fs, temp)
      throw unavailable(error, 'replacing', path)
    }
    await fsyncFolder(this.fs, at.dir)
  }

  async withLock(key: string, at: Location, action: () => Promise<void>): Promise<void> {
    await this.locks.acquire(at.dir, at.name, key)
    try {
      await action()
    } finally {
      await this.locks.release(at.dir, at.name)
    }
  }

  /** Creates `dir` and missing parents, then syncs the parents so the new folders survive a crash. */
  async makeFolders(dir: string): Promise<void> {
    const { synced } = await this.#makeFolders(dir, this.syncEach)
    await synced
  }

  /**
   * Creates `dir` and missing parents; resolves once they exist, with `synced`, the promise of their
   * parents' fsyncs (when `sync`), side by side: each new folder's entry is in its parent.
   */
  async #makeFolders(dir: string, sync: boolean): Promise<{ synced: Promise<void> }> {
    const created: string[] = []
    await makeFolder(this.fs, dir, created)
    if (!sync || created.length === 0) return { synced: DONE }
    return {
      synced: Promise.all(created.map((folder) => this.groupSyncFolder(dirname(folder)))).then(() => {}),
    }
  }

  /** `'fsync'` only: makes the renames and links in `dir` durable (see `groupSyncFolder`). */
  async syncFolder(dir: string): Promise<void> {
    if (!this.syncEach) return
    await this.#folderSyncs.sync(dir)
  }

  /**
   * fsyncs a folder whatever the durability. Concurrent callers for one folder share an fsync
   * (group commit), but each waits for one that started after it called.
   */
  async groupSyncFolder(dir: string): Promise<void> {
    await this.#folderSyncs.sync(dir)
  }

  /**
   * fsyncs every folder from `dir`'s parent up to the root, side by side (group commits): above a
   * file the journal syncs (`writeTemp`), and after a replay made some of them again.
   */
  syncParents(dir: string): Promise<void> {
    const folders: string[] = []
    for (let folder = dirname(dir); folder.startsWith(this.root); folder = dirname(folder)) {
      folders.push(folder)
      if (folder === this.root) break
    }
    return Promise.all(folders.map((folder) => this.groupSyncFolder(folder))).then(() => {})
  }

  /**
   * Removes `dir` and its parents while they are empty, never `root` nor a folder right under it
   * (`keeps`).
   */
  async removeEmptyFolders(dir: string): Promise<void> {
    let folder = dir
    while (!this.keeps(folder)) {
      try {
        await this.fs.rmdir(folder)
      } catch {
        return // not empty (or already gone): parents are not empty either
      }
      this.knownFolders.forget(folder)
      this.#durableFolders.forget(folder)
      folder = dirname(folder)
    }
  }

  /**
   * True for the folders an emptied folder's removal stops at: the root, and the folders right
   * under it. Those hold a key prefix wf uses again and again (`starts/` loses its last batch at
   * each workflow's end when one runs at a time, and comes back at the next start): made again,
   * each would cost a mkdir and an fsync of the root (0.5-1 ms on a local disk) per workflow.
   */
  keeps(folder: string): boolean {
    return folder === this.root || !folder.startsWith(this.root) || dirname(folder) === this.root
  }

  /** `removeEmptyFolders` with synchronous calls. */
  removeEmptyFoldersSync(sync: SyncFileSystem, dir: string): void {
    for (let folder = dir; !this.keeps(folder); folder = dirname(folder)) {
      try {
        sync.rmdirSync(folder)
      } catch {
        return // not empty (or already gone): parents are not empty either
      }
      this.knownFolders.forget(folder)
      this.#durableFolders.forget(folder)
    }
  }
}
