// The writer of `durability: 'fsync'` (and of `'none'`, the same writes without their syncs). A
// put writes a temp file next to the key's file (synced) and moves it into place: link() for
// create-if-absent, rename() under the key's lock otherwise, the version check of a
// compare-and-swap under that lock too; then the folder is synced, shared with the puts that land
// in it at the same time.

import { ConditionFailedError, type PutCondition } from '@wf/core'
import { linkedAnyway, readVersion, unlinkQuiet } from './fs.js'
import { errnoOf, unavailable } from './fs-errors.js'
import { recover } from './journal/recovery.js'
import type { Location, ValueFiles } from './value-files.js'
import type { Writer } from './writer.js'

export class FsyncWriter implements Writer {
  readonly deleteWidth = 1
  readonly #files: ValueFiles
  readonly #boot: string | undefined

  constructor(files: ValueFiles, boot: string | undefined) {
    this.#files = files
    this.#boot = boot
  }

  /** Replays the journals an earlier boot left (a folder may be written in another mode before). */
  async open(): Promise<void> {
    await recover(this.#files, this.#boot)
  }

  async put(
    key: string,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    condition?: PutCondition,
  ): Promise<void> {
    const files = this.#files
    if (condition !== undefined && 'ifVersion' in condition) {
      await this.#compareAndSwap(key, at, header, data, condition.ifVersion)
      return
    }

    const temp = (await files.writeTemp(at, header, data, true)) as string
    if (condition !== undefined && 'ifAbsent' in condition) {
      // link() fails with EEXIST if the key exists, atomically, across processes and on NFS; the
      // temp file is complete, so the key never appears half-written.
      try {
        await files.fs.link(temp, at.file)
      } catch (error) {
        const won = errnoOf(error) === 'EEXIST' && (await linkedAnyway(files.fs, temp))
        await unlinkQuiet(files.fs, temp)
        if (won) {
          await files.syncFolder(at.dir)
          return
        }
        if (errnoOf(error) === 'EEXIST') throw new ConditionFailedError(key)
        throw unavailable(error, 'creating', at.file)
      }
      await unlinkQuiet(files.fs, temp)
    } else {
      // The rename is done under the key's lock so that a plain put cannot land between a
      // compare-and-swap's version check and its rename (which would let the swap succeed
      // against a version that is already gone, and lose this put).
      try {
        await files.withLock(key, at, () => files.fs.rename(temp, at.file))
      } catch (error) {
        await unlinkQuiet(files.fs, temp)
        throw unavailable(error, 'replacing', at.file)
      }
    }
    await files.syncFolder(at.dir)
  }

  async #compareAndSwap(
    key: string,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    expected: string,
  ): Promise<void> {
    const files = this.#files
    // The value is written and synced before the lock is taken: the lock covers only the version
    // check and the rename, so 20 racing writers wait microseconds, not fsyncs.
    const temp = await files.writeTemp(at, header, data, false)
    if (temp === undefined) throw new ConditionFailedError(key)
    let swapped = false
    try {
      await files.withLock(key, at, async () => {
        if ((await readVersion(files.fs, at.file)) !== expected) return
        await files.fs.rename(temp, at.file)
        swapped = true
      })
    } catch (error) {
      throw unavailable(error, 'replacing', at.file)
    } finally {
      if (!swapped) await unlinkQuiet(files.fs, temp)
    }
    if (!swapped) throw new ConditionFailedError(key)
    await files.syncFolder(at.dir)
  }

  async delete(key: string, at: Location): Promise<void> {
    const files = this.#files
    try {
      await files.locks.acquire(at.dir, at.name, key)
    } catch (error) {
      // No folder, no key: deleting a missing key is not an error.
      if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return
      throw unavailable(error, 'locking', at.file)
    }
    let removed = false
    try {
      await files.fs.unlink(at.file)
      removed = true
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw unavailable(error, 'deleting', at.file)
    } finally {
      await files.locks.release(at.dir, at.name)
    }
    if (!removed) return
    await files.syncFolder(at.dir)
    await files.removeEmptyFolders(at.dir)
  }

  /** Holds nothing open between calls. */
  async close(): Promise<void> {}
}
