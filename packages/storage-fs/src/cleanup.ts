// `FileSystemStorage.cleanup()`: what crashed writers left behind, found by a walk of the folder.
// Temp files and locks name their owner (owner.ts), so one of a process that is gone is removed at
// once; one written from another machine only once it is older than an hour or `staleMs`.

import { join } from 'node:path'
import { unlinkQuiet } from './fs.js'
import { errnoOf, unavailable } from './fs-errors.js'
import { JOURNAL_FOLDER } from './journal/format.js'
import { BREAKER_PREFIX, LOCK_PREFIX, OWNER_LINK_PREFIX } from './lock.js'
import { isOwnerDead } from './owner.js'
import { TEMP_PREFIX, type ValueFiles } from './value-files.js'

/** Temp files of a live process are removed by `cleanup()` only after this long (other hosts). */
const TEMP_STALE_MS = 60 * 60 * 1000

/** Cleans `dir` and the folders under it; returns how many files it removed. */
export async function cleanFolder(files: ValueFiles, staleMs: number, dir: string): Promise<number> {
  const { fs, root, locks } = files
  let names: string[]
  try {
    names = await fs.readdir(dir)
  } catch (error) {
    if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return 0
    throw unavailable(error, 'cleaning', dir)
  }
  const maxAgeMs = Math.max(TEMP_STALE_MS, staleMs)
  let removed = 0
  for (const name of names) {
    const path = join(dir, name)
    if (name.startsWith(TEMP_PREFIX)) {
      if (await isStaleTemp(files, maxAgeMs, name.slice(TEMP_PREFIX.length), path)) {
        await unlinkQuiet(fs, path)
        removed++
      }
    } else if (name.startsWith(LOCK_PREFIX)) {
      // removeIfStale also reports a lock released meanwhile; count only what was there before.
      if (await locks.removeIfStale(dir, name.slice(LOCK_PREFIX.length))) removed++
    } else if (name.startsWith(BREAKER_PREFIX)) {
      if (await locks.removeStaleBreaker(dir, name.slice(BREAKER_PREFIX.length))) removed++
    } else if (name.startsWith(OWNER_LINK_PREFIX) && dir === root) {
      if (await locks.removeStaleOwnerLink(dir, name, maxAgeMs)) removed++
    } else if (!name.startsWith('.') || (name === JOURNAL_FOLDER && dir === root)) {
      // The journal folder holds temp files of checkpoint marks and the recovery lock too.
      removed += await cleanFolder(files, staleMs, path)
    }
  }
  if (dir !== root) await files.removeEmptyFolders(dir)
  return removed
}

async function isStaleTemp(
  files: ValueFiles,
  maxAgeMs: number,
  stamp: string,
  path: string,
): Promise<boolean> {
  if (isOwnerDead(stamp)) return true
  try {
    return Date.now() - (await files.fs.lstat(path)).mtimeMs > maxAgeMs
  } catch {
    return false
  }
}
