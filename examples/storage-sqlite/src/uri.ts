// `sqlite:///abs/path/to/file.db` URIs: what `init('sqlite://…')` and `WF_STORAGE=sqlite://…` open
// once this package is imported (index.ts registers the scheme with @wf/core).

import { fileURLToPath } from 'node:url'
import { StorageConfigError } from '@wf/core'
import { createSqliteStorage, type SqliteStorage, type SqliteStorageOptions } from './sqlite-storage.js'

const USAGE = 'use sqlite:///absolute/path/to/file.db (three slashes), optionally ?busyTimeoutMs=5000'

/**
 * Reads the options out of a `sqlite://` URI. The path is percent-decoded like a `file://` URL
 * (`%20` is a space, `%23` a `#`); the only parameter is `busyTimeoutMs`.
 *
 * @example
 * parseSqliteUri('sqlite:///var/lib/app/wf.db?busyTimeoutMs=10000')
 * // { path: '/var/lib/app/wf.db', busyTimeoutMs: 10000 }
 */
export function parseSqliteUri(uri: string): SqliteStorageOptions {
  let url: URL
  try {
    url = new URL(uri)
  } catch (error) {
    throw new StorageConfigError(`"${uri}" is not a URI: ${USAGE}`, { cause: error })
  }
  if (url.protocol !== 'sqlite:') throw new StorageConfigError(`"${uri}" is not a sqlite:// URI: ${USAGE}`)
  if (url.host !== '' && url.host !== 'localhost') {
    throw new StorageConfigError(
      `"${uri}" names the host "${url.host}": a SQLite file must be on this machine and its path absolute; ${USAGE}`,
    )
  }
  if (url.hash !== '') {
    throw new StorageConfigError(`"${uri}" has a "#": write it as %23 in the path; ${USAGE}`)
  }
  if (url.pathname === '' || url.pathname.endsWith('/')) {
    throw new StorageConfigError(`"${uri}" names no file: ${USAGE}`)
  }
  let path: string
  try {
    // A file URL with the same path: fileURLToPath percent-decodes it, and handles drive letters.
    path = fileURLToPath(`file://${url.pathname}`)
  } catch (error) {
    throw new StorageConfigError(`"${uri}" has an unusable path: ${USAGE}`, { cause: error })
  }
  const options: SqliteStorageOptions = { path }
  for (const [name, value] of url.searchParams) {
    if (name === 'busyTimeoutMs' && /^\d+$/.test(value)) options.busyTimeoutMs = Number(value)
    else throw new StorageConfigError(`unknown option ${name}=${value} in "${uri}": ${USAGE}`)
  }
  return options
}

/**
 * Opens the SQLite storage a `sqlite://` URI names, creating the file and its folder if needed.
 * This is the factory registered for the `sqlite` scheme.
 */
export function fromUri(uri: string): Promise<SqliteStorage> {
  return createSqliteStorage(parseSqliteUri(uri))
}
