// The low-level file calls every part of the storage shares, one copy each: removing a file that
// may be gone, writing a buffer whole (a short write is completed, not taken for success), reading
// a value file or just its version, and syncing a file or a folder. They take the injected
// `FileSystem` (or its synchronous calls) and keep no state.

import type { FileHandleLike, FileSystem, SyncFileSystem } from './file-system.js'
import { errnoOf, unavailable } from './fs-errors.js'
import { HEADER_BYTES, versionOfHeader } from './record.js'

/** Removes a file, ignoring every failure: for temp files and locks whose removal is best effort. */
export async function unlinkQuiet(fs: FileSystem, path: string): Promise<void> {
  await fs.unlink(path).catch(() => undefined)
}

/** `unlinkQuiet` with a synchronous call. */
export function unlinkQuietSync(sync: SyncFileSystem, path: string): void {
  try {
    sync.unlinkSync(path)
  } catch {}
}

/** Removes a file that may already be gone; any other failure is a `StorageUnavailableError`. */
export async function unlinkIfPresent(fs: FileSystem, path: string): Promise<void> {
  await fs.unlink(path).catch((error) => {
    if (errnoOf(error) !== 'ENOENT') throw unavailable(error, 'deleting', path)
  })
}

/**
 * What a value file's first vectored write takes. Without an empty value's empty buffer: libuv
 * writes until every buffer is done, so an empty one would cost a write call of its own.
 */
function buffersOf(header: Uint8Array, data: Uint8Array): Uint8Array[] {
  return data.byteLength === 0 ? [header] : [header, data]
}

/** Writes header then data at the start of a new file, completing a short vectored write with positioned writes. */
export async function writeAll(handle: FileHandleLike, header: Uint8Array, data: Uint8Array): Promise<void> {
  const written = (await handle.writev(buffersOf(header, data))).bytesWritten
  if (written < header.byteLength) {
    await writeFully(handle, header.subarray(written), written)
    await writeFully(handle, data, header.byteLength)
  } else {
    await writeFully(handle, data.subarray(written - header.byteLength), written)
  }
}

/** Writes all of `bytes` at `position`, one positioned write while the filesystem takes them all. */
export async function writeFully(handle: FileHandleLike, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0
  while (written < bytes.byteLength) {
    const { bytesWritten } = await handle.write(
      bytes,
      written,
      bytes.byteLength - written,
      position + written,
    )
    if (bytesWritten === 0) throw new Error('the filesystem accepted no more bytes')
    written += bytesWritten
  }
}

/** `writeAll` with synchronous calls. */
export function writeAllSync(sync: SyncFileSystem, fd: number, header: Uint8Array, data: Uint8Array): void {
  const total = header.byteLength + data.byteLength
  let written = sync.writevSync(fd, buffersOf(header, data), 0)
  while (written < total) {
    const rest =
      written < header.byteLength
        ? [header.subarray(written), data]
        : [data.subarray(written - header.byteLength)]
    const bytes = sync.writevSync(fd, rest, written)
    if (bytes === 0) throw new Error('the filesystem accepted no more bytes')
    written += bytes
  }
}

/**
 * A whole file read with synchronous calls, or `undefined` when there is none. A stat comes first:
 * a missing key is a common read (does this workflow exist yet?), and a failed open costs a thrown
 * error (10-15 µs). The stat's size sizes the buffer; a file replaced since is read to its end.
 */
export function readFileSyncIfAny(sync: SyncFileSystem, file: string): Uint8Array | undefined {
  const stats = sync.statSync(file, { throwIfNoEntry: false })
  if (stats === undefined) return undefined
  const fd = sync.openSync(file, 'r')
  try {
    let buffer = Buffer.allocUnsafe(stats.size + 1)
    let size = 0
    for (;;) {
      const bytesRead = sync.readSync(fd, buffer, size, buffer.byteLength - size, size)
      size += bytesRead
      // A regular file's read returns less than asked only at its end.
      if (size < buffer.byteLength || bytesRead === 0) return buffer.subarray(0, size)
      const grown = Buffer.allocUnsafe(buffer.byteLength * 2)
      buffer.copy(grown)
      buffer = grown
    }
  } finally {
    sync.closeSync(fd)
  }
}

/** The version stored in a value file, read from its header only; `undefined` without a file or a readable header. */
export async function readVersion(fs: FileSystem, file: string): Promise<string | undefined> {
  let handle: FileHandleLike
  try {
    handle = await fs.open(file, 'r')
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined
    throw error
  }
  try {
    const header = new Uint8Array(HEADER_BYTES)
    const { bytesRead } = await handle.read(header, 0, HEADER_BYTES, 0)
    return bytesRead === HEADER_BYTES ? versionOfHeader(header) : undefined
  } finally {
    await handle.close()
  }
}

/**
 * The version in a value file's header, read with synchronous calls: `null` when there is no file,
 * `undefined` when there is one without a readable version (torn or damaged).
 */
export function readVersionSync(sync: SyncFileSystem, file: string): string | null | undefined {
  let fd: number
  try {
    fd = sync.openSync(file, 'r')
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return null
    throw error
  }
  try {
    const header = new Uint8Array(HEADER_BYTES)
    const bytesRead = sync.readSync(fd, header, 0, HEADER_BYTES, 0)
    return bytesRead === HEADER_BYTES ? versionOfHeader(header) : undefined
  } finally {
    sync.closeSync(fd)
  }
}

/** fdatasyncs a file; a file deleted meanwhile needs none. */
export async function fsyncFile(fs: FileSystem, file: string): Promise<void> {
  let handle: FileHandleLike
  try {
    handle = await fs.open(file, 'r')
  } catch (error) {
    if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return // deleted since
    throw unavailable(error, 'syncing', file)
  }
  try {
    await handle.datasync()
  } catch (error) {
    throw unavailable(error, 'syncing', file)
  } finally {
    await handle.close().catch(() => undefined)
  }
}

/** fsync of a folder makes the renames and links in it durable. */
export async function fsyncFolder(fs: FileSystem, dir: string): Promise<void> {
  let handle: FileHandleLike
  try {
    handle = await fs.open(dir, 'r')
  } catch (error) {
    // Windows cannot open a folder as a file; there the rename itself is journaled.
    if (errnoOf(error) === 'EISDIR' || errnoOf(error) === 'EPERM') return
    // A concurrent delete emptied and removed the folder: what we wrote there is gone already.
    if (errnoOf(error) === 'ENOENT') return
    throw unavailable(error, 'syncing the folder', dir)
  }
  try {
    await handle.sync()
  } catch (error) {
    // Some filesystems (old NFS clients, FUSE) do not support syncing a folder.
    if (errnoOf(error) !== 'EINVAL' && errnoOf(error) !== 'ENOTSUP') {
      throw unavailable(error, 'syncing the folder', dir)
    }
  } finally {
    await handle.close().catch(() => undefined)
  }
}

/**
 * NFS may report EEXIST for a link() whose first attempt succeeded but whose reply was lost; the
 * link count of our temp file tells the truth.
 */
export async function linkedAnyway(fs: FileSystem, temp: string): Promise<boolean> {
  try {
    return (await fs.stat(temp)).nlink === 2
  } catch {
    return false
  }
}
