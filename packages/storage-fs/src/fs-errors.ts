// Turns errno failures of the filesystem into wf errors with a message that says what to do,
// so a full disk or a read-only mount reads as such rather than as a bare "ENOSPC".

import { StorageConfigError, StorageUnavailableError } from '@wf/core'

/** The errno code of a Node filesystem error (`ENOENT`, ...), if it is one. */
export function errnoOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined
  const code = (error as { code: unknown }).code
  return typeof code === 'string' ? code : undefined
}

/** Wraps a failed filesystem call; `action` reads like "writing" and `path` is the file concerned. */
export function unavailable(error: unknown, action: string, path: string): Error {
  // Already explained (a folder that cannot exist is a configuration error, not an outage).
  if (error instanceof StorageUnavailableError || error instanceof StorageConfigError) return error
  const code = errnoOf(error)
  const where = `${action} ${path}`
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new StorageUnavailableError(
        `no space left on the device (${code}) while ${where}: free disk space or raise the quota, then retry. Nothing was committed`,
        { cause: error },
      )
    case 'EACCES':
    case 'EPERM':
      return new StorageUnavailableError(
        `permission denied (${code}) while ${where}: give this process read and write access to the storage folder`,
        { cause: error },
      )
    case 'EROFS':
      return new StorageUnavailableError(
        `the filesystem is read-only (EROFS) while ${where}: mount it read-write or choose another storage folder`,
        { cause: error },
      )
    case 'EMFILE':
    case 'ENFILE':
      return new StorageUnavailableError(
        `too many open files (${code}) while ${where}: raise the file descriptor limit (ulimit -n) or lower concurrency`,
        { cause: error },
      )
    default: {
      const message = error instanceof Error ? error.message : String(error)
      return new StorageUnavailableError(`filesystem error while ${where}: ${message}`, { cause: error })
    }
  }
}
