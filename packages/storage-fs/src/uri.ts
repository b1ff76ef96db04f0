// Turns the storage strings core accepts ('/var/lib/app/wf', './data', 'file:///abs/path')
// into a FileSystemStorage. Core's init() dynamic-imports this package and calls `fromUri`.

import { fileURLToPath } from 'node:url'
import { type Storage, StorageConfigError } from '@wf/core'
import { FileSystemStorage, type FileSystemStorageOptions } from './file-system-storage.js'

/**
 * Opens the storage named by a plain path or a `file://` URL, in the folder's recorded durability
 * mode (a new folder records the default: the journal on a local Linux disk, else fsync).
 * `?durability=fsync|journal` (which must match an existing folder's mode) or `?durability=none`
 * (this process does not sync: tests, scratch data) is accepted on a file URL.
 *
 * @example
 * const storage = await fromUri('file:///var/lib/myapp/workflow_data')
 */
export async function fromUri(uri: string): Promise<Storage> {
  if (typeof uri !== 'string' || uri.trim() === '') {
    throw new StorageConfigError('a storage path cannot be empty')
  }
  const options: FileSystemStorageOptions = { root: uri }
  if (/^file:/i.test(uri)) {
    let url: URL
    try {
      url = new URL(uri)
      options.root = fileURLToPath(url)
    } catch (error) {
      throw new StorageConfigError(
        `${uri} is not a usable file URL: ${error instanceof Error ? error.message : String(error)}. Use file:///absolute/path`,
        { cause: error },
      )
    }
    for (const [name, value] of url.searchParams) {
      if (name === 'durability' && (value === 'fsync' || value === 'journal' || value === 'none'))
        options.durability = value
      else {
        throw new StorageConfigError(
          `unknown option ${name}=${value} in ${uri}: the only option is durability=fsync|journal|none`,
        )
      }
    }
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new StorageConfigError(
      `@wf/storage-fs opens plain paths and file:// URLs, not ${uri.slice(0, uri.indexOf(':'))}:// (is another storage package missing?)`,
    )
  }
  return FileSystemStorage.open(options)
}
