// @wf/storage-fs: wf storage in a local folder (or an NFS mount). The public API.

import { FileSystemStorage, type FileSystemStorageOptions } from './file-system-storage.js'

export type { Durability } from './durability.js'
export {
  DurabilityMismatchError,
  DurabilityRecordError,
  STORAGE_FS_ERROR_CODES,
  type StorageFsErrorCode,
} from './errors.js'
export type { FileHandleLike, FileSystem, StatsLike, SyncFileSystem } from './file-system.js'
export { FileSystemStorage, type FileSystemStorageOptions } from './file-system-storage.js'
export { fromUri } from './uri.js'

/**
 * Opens a folder as wf storage, creating it if needed, and fails early with a
 * `StorageConfigError` if it cannot be created or written.
 *
 * @example
 * import { createFileSystemStorage } from '@wf/storage-fs'
 * const storage = await createFileSystemStorage({ root: './workflow_data' })
 */
export function createFileSystemStorage(options: FileSystemStorageOptions): Promise<FileSystemStorage> {
  return FileSystemStorage.open(options)
}
