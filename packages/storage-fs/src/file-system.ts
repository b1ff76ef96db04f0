// The slice of `node:fs/promises` this backend uses. Injecting it lets tests run the backend on
// memfs, or wrap the real one to simulate a full disk.

import * as nodeSyncFs from 'node:fs'
import * as nodeFs from 'node:fs/promises'

/** The file handle operations used while writing and reading values. */
export interface FileHandleLike {
  writev(buffers: Uint8Array[], position?: number): Promise<{ bytesWritten: number }>
  write(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesWritten: number }>
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
  datasync(): Promise<void>
  sync(): Promise<void>
  close(): Promise<void>
}

/** What `stat`/`lstat` must report. */
export interface StatsLike {
  mtimeMs: number
  nlink: number
  isDirectory(): boolean
  /** From `lstat`: true for a symlink. Optional: without it, a dangling symlink is explained less precisely. */
  isSymbolicLink?(): boolean
}

/**
 * The filesystem functions the backend calls, shaped like `node:fs/promises` (pass
 * `memfs().fs.promises` in tests). Paths are strings; `readdir` returns plain names.
 */
export interface FileSystem {
  /** `flags` as in `node:fs`: a string, or `fs.constants` bits (the journal opens its segments with `O_DSYNC`). */
  open(path: string, flags: string | number, mode?: number): Promise<FileHandleLike>
  readFile(path: string): Promise<Uint8Array>
  rename(oldPath: string, newPath: string): Promise<void>
  link(existingPath: string, newPath: string): Promise<void>
  symlink(target: string, path: string): Promise<void>
  readlink(path: string): Promise<string>
  unlink(path: string): Promise<void>
  mkdir(path: string): Promise<unknown>
  rmdir(path: string): Promise<void>
  readdir(path: string): Promise<string[]>
  stat(path: string): Promise<StatsLike>
  lstat(path: string): Promise<StatsLike>
  /**
   * Which filesystem holds `path` (`f_type` of statfs(2), as `node:fs/promises` gives it).
   * Optional: without it, a new folder's durability is not detected and stays `'fsync'`.
   */
  statfs?(path: string): Promise<{ type: number | bigint }>
  /**
   * Synchronous calls, shaped like `node:fs`; required by `durability: 'journal'`, where gets,
   * deletes and puts of small values make their few calls (stat, read; create, write, link, unlock)
   * with these, on a local disk: each takes microseconds in the kernel, far less than a round
   * trip through libuv's thread pool. (memfs has them: `memfs().fs`.)
   */
  sync?: SyncFileSystem
}

/** The synchronous calls of `FileSystem.sync` (file descriptors are numbers, as in `node:fs`). */
export interface SyncFileSystem {
  openSync(path: string, flags: string, mode?: number): number
  writevSync(fd: number, buffers: Uint8Array[], position?: number): number
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number
  closeSync(fd: number): void
  linkSync(existingPath: string, newPath: string): void
  symlinkSync(target: string, path: string): void
  renameSync(oldPath: string, newPath: string): void
  unlinkSync(path: string): void
  mkdirSync(path: string): unknown
  rmdirSync(path: string): void
  /** `undefined` when there is no such file (ENOENT, ENOTDIR); throws on other errors. */
  statSync(path: string, options: { throwIfNoEntry: false }): { size: number } | undefined
}

/** The real filesystem. */
export const nodeFileSystem: FileSystem = {
  open: (path, flags, mode) => nodeFs.open(path, flags, mode),
  readFile: (path) => nodeFs.readFile(path),
  rename: nodeFs.rename,
  link: nodeFs.link,
  symlink: (target, path) => nodeFs.symlink(target, path),
  readlink: (path) => nodeFs.readlink(path),
  unlink: nodeFs.unlink,
  mkdir: (path) => nodeFs.mkdir(path),
  rmdir: (path) => nodeFs.rmdir(path),
  readdir: (path) => nodeFs.readdir(path),
  stat: (path) => nodeFs.stat(path),
  lstat: (path) => nodeFs.lstat(path),
  statfs: (path) => nodeFs.statfs(path),
  // node:fs has every call of SyncFileSystem, with compatible signatures.
  sync: nodeSyncFs,
}
