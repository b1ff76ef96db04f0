// Adapts memfs to the FileSystem slice the backend takes, so tests run without touching the disk.

import { memfs } from 'memfs'
import type { FileHandleLike, FileSystem } from '../file-system.js'

/** A fresh, empty in-memory filesystem. */
export function memoryFileSystem(): FileSystem {
  const volume = memfs().fs
  const fs = volume.promises
  return {
    sync: volume, // memfs has the synchronous calls of node:fs
    open: async (path, flags, mode) => (await fs.open(path, flags, mode)) as unknown as FileHandleLike,
    readFile: async (path) => {
      const content = await fs.readFile(path)
      return typeof content === 'string' ? new TextEncoder().encode(content) : content
    },
    rename: (from, to) => fs.rename(from, to),
    link: (from, to) => fs.link(from, to),
    symlink: (target, path) => fs.symlink(target, path),
    readlink: async (path) => String(await fs.readlink(path)),
    unlink: (path) => fs.unlink(path),
    mkdir: (path) => fs.mkdir(path),
    rmdir: (path) => fs.rmdir(path),
    readdir: async (path) => (await fs.readdir(path)).map(String),
    stat: async (path) => {
      const stats = await fs.stat(path)
      return {
        mtimeMs: Number(stats.mtimeMs),
        nlink: Number(stats.nlink),
        isDirectory: () => stats.isDirectory(),
      }
    },
    lstat: async (path) => {
      const stats = await fs.lstat(path)
      return {
        mtimeMs: Number(stats.mtimeMs),
        nlink: Number(stats.nlink),
        isDirectory: () => stats.isDirectory(),
        isSymbolicLink: () => stats.isSymbolicLink(),
      }
    },
  }
}
