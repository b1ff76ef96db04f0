// Per-key locks for compare-and-swap, delete and the final rename of a plain put. A lock is a
// symlink whose target is the owner stamp: symlink() creates it with its content in one atomic
// step, so there is never a lock without an owner to check for liveness. The journal's synchronous
// path makes the same symlink more cheaply: as a hard link to its process's owner link.

import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { StorageUnavailableError } from '@wf/core'
import type { FileSystem, SyncFileSystem } from './file-system.js'
import { unlinkQuiet, unlinkQuietSync } from './fs.js'
import { errnoOf } from './fs-errors.js'
import { isOwnerDead, OWNER_STAMP } from './owner.js'

/** Prefix of a key's lock in its folder: `.lk.<value file name>`. */
export const LOCK_PREFIX = '.lk.'
/** Prefix of the lock taken to remove a stale lock: `.lb.<value file name>`. */
export const BREAKER_PREFIX = '.lb.'
/** Prefix of a process's owner link in the storage root: `.lo.<stamp>`, a symlink to `<stamp>`. */
export const OWNER_LINK_PREFIX = '.lo.'

export interface LockOptions {
  /** A lock older than this is stale even if its owner looks alive (other hosts, reused pids). */
  staleMs: number
  /** Give up waiting for a live lock after this long. */
  timeoutMs: number
  /** The folder of the owner links (the storage root: every lock is on its filesystem). */
  ownerDir: string
}

interface OwnerLink {
  path: string
  madeAt: number
}

/**
 * The stamp of one holding: the owner, then a number new for every acquisition in this process
 * (the breaker compares stamps, so two holdings must differ; a counter is enough, and unlike
 * random bytes costs nothing on the hot path).
 */
let holdings = 0
const nextStamp = () => `${OWNER_STAMP}.${(holdings++).toString(36)}`

/**
 * Locks are held only around a read of the current version and a rename, never while data is
 * written or synced, so waiting is short and polling with a small backoff is enough.
 */
export class KeyLocks {
  readonly #fs: FileSystem
  readonly #options: LockOptions
  /** The owner link that `tryAcquireSync` links locks to, once made; `'off'` where links fail. */
  #owner: OwnerLink | 'off' | undefined

  constructor(fs: FileSystem, options: LockOptions) {
    this.#fs = fs
    this.#options = options
  }

  /**
   * Takes the lock of value file `name` in `dir`. Rejects with the raw ENOENT error when the
   * folder does not exist (callers decide what a missing folder means).
   */
  async acquire(dir: string, name: string, key: string): Promise<void> {
    const lockPath = join(dir, LOCK_PREFIX + name)
    const stamp = nextStamp()
    const deadline = Date.now() + this.#options.timeoutMs
    let backoff = 1
    for (;;) {
      try {
        await this.#fs.symlink(stamp, lockPath)
        return
      } catch (error) {
        if (errnoOf(error) !== 'EEXIST') throw error
      }
      // The deadline is checked before a stale lock is removed too: a lock that is taken again
      // as soon as it is removed (or a filesystem that keeps saying EEXIST for a lock it cannot
      // show) must not keep a writer here for ever.
      if (Date.now() > deadline) {
        const holder = await this.#fs.readlink(lockPath).catch(() => 'unknown')
        throw new StorageUnavailableError(
          `timed out after ${this.#options.timeoutMs} ms waiting for the lock of "${key}" (${lockPath}, held by ${holder}): if no process holds it, delete the lock file`,
        )
      }
      if (await this.removeIfStale(dir, name)) continue
      await sleep(backoff * (0.5 + Math.random()))
      backoff = Math.min(backoff * 2, 25)
    }
  }

  /**
   * Takes the lock at once with a synchronous call if it is free (the journal's fast path);
   * false if someone holds it (then wait with `acquire`). Rejects with the raw ENOENT error when
   * the folder does not exist.
   *
   * The lock is a hard link to this process's owner link, not a symlink of its own: to every
   * reader the same thing (a symlink to the owner's stamp, aged by its mtime), but link() only adds
   * a name, where symlink() allocates an inode and the unlock frees it again (together about a
   * third of a lock's cost on ext4). The owner link is replaced once it is a quarter of
   * `staleMs` old, so a lock held now never looks older than it is by more than that, and a
   * stamp taken again after one of its locks went stale is a new one (see `removeIfStale`).
   */
  tryAcquireSync(sync: SyncFileSystem, dir: string, name: string): boolean {
    const lockPath = join(dir, LOCK_PREFIX + name)
    const owner = this.#ownerLink(sync)
    let linkError: string | undefined
    if (owner !== undefined) {
      try {
        sync.linkSync(owner, lockPath)
        return true
      } catch (error) {
        linkError = errnoOf(error)
        if (linkError === 'EEXIST') return false
      }
    }
    // No owner link, or it could not be linked here: a symlink of its own, which also tells a
    // missing folder (ENOENT) from a missing owner link.
    try {
      sync.symlinkSync(nextStamp(), lockPath)
    } catch (error) {
      if (errnoOf(error) === 'EEXIST') return false
      throw error
    }
    // The folder exists, so the owner link failed: removed by a cleanup() elsewhere (make another
    // one next time), or not linkable here at all (another filesystem inside the root, no hard
    // links to symlinks): then every lock is a symlink of its own.
    if (owner !== undefined && linkError === 'ENOENT') this.#owner = undefined
    else if (owner !== undefined) {
      unlinkQuietSync(sync, owner)
      this.#owner = 'off'
    }
    return true
  }

  /** The current owner link, made or replaced when due; `undefined` if there is none to use. */
  #ownerLink(sync: SyncFileSystem): string | undefined {
    const current = this.#owner
    if (current === 'off') return undefined
    const now = Date.now()
    if (current !== undefined && now - current.madeAt < this.#options.staleMs / 4) return current.path
    const stamp = nextStamp()
    const path = join(this.#options.ownerDir, OWNER_LINK_PREFIX + stamp)
    try {
      sync.symlinkSync(stamp, path)
    } catch {
      this.#owner = 'off'
      return undefined
    }
    this.#owner = { path, madeAt: now }
    // Locks still linked to the old one keep it (and its age) until they are released.
    if (current !== undefined) unlinkQuietSync(sync, current.path)
    return path
  }

  /** Removes this process's owner link (when its storage closes). */
  dropOwnerLink(sync: SyncFileSystem): void {
    if (this.#owner === undefined || this.#owner === 'off') return
    unlinkQuietSync(sync, this.#owner.path)
    this.#owner = undefined
  }

  /** Removes an owner link left by a process that is gone (or, from another host, not renewed for long). */
  async removeStaleOwnerLink(dir: string, name: string, maxAgeMs: number): Promise<boolean> {
    const path = join(dir, name)
    if (this.#owner !== undefined && this.#owner !== 'off' && path === this.#owner.path) return false
    if (!isOwnerDead(name.slice(OWNER_LINK_PREFIX.length))) {
      try {
        if (Date.now() - (await this.#fs.lstat(path)).mtimeMs <= maxAgeMs) return false
      } catch {
        return false
      }
    }
    await unlinkQuiet(this.#fs, path)
    return true
  }

  /** Releases a lock with a synchronous call. */
  releaseSync(sync: SyncFileSystem, dir: string, name: string): void {
    try {
      sync.unlinkSync(join(dir, LOCK_PREFIX + name))
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error
    }
  }

  /** Releases a lock taken with `acquire`. */
  async release(dir: string, name: string): Promise<void> {
    try {
      await this.#fs.unlink(join(dir, LOCK_PREFIX + name))
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error
    }
  }

  /**
   * Removes the lock of `name` if its owner is dead or it is older than `staleMs`. Returns true
   * when the lock is gone (removed here or by its owner), false when it is live.
   */
  async removeIfStale(dir: string, name: string): Promise<boolean> {
    const lockPath = join(dir, LOCK_PREFIX + name)
    const holder = await this.#staleStamp(lockPath)
    if (holder === 'gone') return true
    if (holder === 'live') return false
    // Two waiters can both see the same dead owner. If each simply unlinked the lock, the slower
    // one could remove the lock the faster one has just taken. So removal happens under a second
    // lock, and only if the lock still carries the stale stamp that was checked.
    const breakerPath = join(dir, BREAKER_PREFIX + name)
    try {
      await this.#fs.symlink(OWNER_STAMP, breakerPath)
    } catch (error) {
      if (errnoOf(error) !== 'EEXIST') throw error
      // A breaker left by a process killed mid-removal: remove it directly. Getting this wrong
      // needs two processes to die in the same few microseconds.
      if ((await this.#staleStamp(breakerPath)) !== 'live') await unlinkQuiet(this.#fs, breakerPath)
      return false
    }
    try {
      const current = await this.#fs.readlink(lockPath).catch(() => undefined)
      if (current === holder) await unlinkQuiet(this.#fs, lockPath)
      return true
    } finally {
      await unlinkQuiet(this.#fs, breakerPath)
    }
  }

  /** Removes a breaker lock left by a process that died while removing a stale lock. */
  async removeStaleBreaker(dir: string, name: string): Promise<boolean> {
    const breakerPath = join(dir, BREAKER_PREFIX + name)
    const state = await this.#staleStamp(breakerPath)
    if (state === 'live' || state === 'gone') return false
    await unlinkQuiet(this.#fs, breakerPath)
    return true
  }

  /** The stamp of a stale lock, 'live' for a lock in use, 'gone' when there is no lock. */
  async #staleStamp(path: string): Promise<string> {
    let stamp: string
    let mtimeMs: number
    try {
      stamp = await this.#fs.readlink(path)
      mtimeMs = (await this.#fs.lstat(path)).mtimeMs
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return 'gone'
      throw error
    }
    return isOwnerDead(stamp) || Date.now() - mtimeMs > this.#options.staleMs ? stamp : 'live'
  }
}
