// Creating a value's folder and its missing parents, with a bound. mkdir() of a missing folder
// fails with ENOENT when its parent is missing; the parent is made and the folder tried again. On
// some paths that never ends: under a dangling symlink or in /proc, the parent's mkdir says EEXIST
// and the folder's ENOENT again. So the attempts are counted, and when they run out the path is
// examined to say why it cannot exist.

import { dirname } from 'node:path'
import { StorageConfigError } from '@wf/core'
import type { FileSystem, SyncFileSystem } from './file-system.js'
import { errnoOf, unavailable } from './fs-errors.js'

/**
 * mkdir calls one folder creation may make. A path 20 folders deep that does not exist yet takes
 * 40 (each folder fails once, then succeeds); a concurrent delete that removes a parent again
 * costs a few more. Beyond this the path cannot be created, whatever the reason.
 */
export const MKDIR_ATTEMPTS = 64

/** The mkdir budget shared by one folder creation and the parents it makes. */
interface Budget {
  left: number
}

/**
 * Thrown by `makeFoldersSync` when its attempts run out: a synchronous caller cannot examine the
 * path (that takes asynchronous calls), so its asynchronous caller turns it into the
 * `StorageConfigError` of `cannotCreateFolder`.
 */
export class FolderLoopError extends Error {
  readonly dir: string
  constructor(dir: string) {
    super(`mkdir of ${dir} kept failing with ENOENT after its parent was made`)
    this.name = 'FolderLoopError'
    this.dir = dir
  }
}

/**
 * Creates `dir` and its missing parents; pushes each folder it created onto `created` (parents
 * first). Rejects with `StorageConfigError` when the path cannot exist.
 */
export async function makeFolder(fs: FileSystem, dir: string, created: string[]): Promise<void> {
  try {
    await makeFolderWithin(fs, dir, created, { left: MKDIR_ATTEMPTS })
  } catch (error) {
    // Explained from the folder asked for: the loop may have run out on one of its parents.
    if (error instanceof FolderLoopError) throw await cannotCreateFolder(fs, dir)
    throw error
  }
}

async function makeFolderWithin(
  fs: FileSystem,
  dir: string,
  created: string[],
  budget: Budget,
): Promise<void> {
  for (;;) {
    if (budget.left-- <= 0) throw new FolderLoopError(dir)
    try {
      await fs.mkdir(dir)
      created.push(dir)
      return
    } catch (error) {
      const code = errnoOf(error)
      if (code === 'EEXIST') return
      if (code !== 'ENOENT' || dirname(dir) === dir) throw unavailable(error, 'creating the folder', dir)
    }
    await makeFolderWithin(fs, dirname(dir), created, budget)
  }
}

/**
 * `makeFolder` with synchronous calls (the journal's fast path). Throws `FolderLoopError` when the
 * path cannot exist: pass it to `cannotCreateFolder` for the reason.
 */
export function makeFoldersSync(sync: SyncFileSystem, dir: string): void {
  try {
    makeFoldersSyncWithin(sync, dir, { left: MKDIR_ATTEMPTS })
  } catch (error) {
    if (error instanceof FolderLoopError) throw new FolderLoopError(dir)
    throw error
  }
}

function makeFoldersSyncWithin(sync: SyncFileSystem, dir: string, budget: Budget): void {
  for (;;) {
    if (budget.left-- <= 0) throw new FolderLoopError(dir)
    try {
      sync.mkdirSync(dir)
      return
    } catch (error) {
      const code = errnoOf(error)
      if (code === 'EEXIST') return
      if (code !== 'ENOENT' || dirname(dir) === dir) throw unavailable(error, 'creating the folder', dir)
    }
    makeFoldersSyncWithin(sync, dirname(dir), budget)
  }
}

/**
 * Why folder `dir` cannot be created, as a `StorageConfigError` naming the path: the nearest part
 * of the path that exists is a dangling symlink, or not a folder, or a folder in which mkdir fails
 * anyway (a virtual filesystem such as /proc).
 */
export async function cannotCreateFolder(fs: FileSystem, dir: string): Promise<StorageConfigError> {
  return new StorageConfigError(
    `cannot create the folder ${dir}: ${await whyMissing(fs, dir)}. Point root / WF_STORAGE at a folder that exists or can be created`,
  )
}

/** The reason a path that mkdir cannot create is missing (see `cannotCreateFolder`). */
export async function whyMissing(fs: FileSystem, path: string): Promise<string> {
  let below = path
  for (let at = path; ; below = at, at = dirname(at)) {
    let isLink = false
    try {
      const stats = await fs.lstat(at)
      isLink = stats.isSymbolicLink?.() === true
      if (!isLink && !stats.isDirectory()) return `${at} is a file, not a folder`
    } catch (error) {
      if (dirname(at) === at) return `${at} cannot be read (${errnoOf(error) ?? String(error)})`
      continue // missing (or unreadable): look at its parent
    }
    if (isLink) {
      const target = await fs.readlink(at).catch(() => '?')
      const resolved = await fs.stat(at).then(
        () => undefined,
        (error: unknown) => errnoOf(error) ?? String(error),
      )
      if (resolved === 'ENOENT') return `${at} is a dangling symlink (its target ${target} does not exist)`
      if (resolved !== undefined) return `${at} is a symlink to ${target}, which cannot be used (${resolved})`
    }
    if (at === path) return `${at} exists but cannot be used as a folder`
    return `${at} exists, but mkdir of ${below} in it fails with ENOENT (a virtual filesystem such as /proc or /sys cannot hold new folders)`
  }
}
