// @wf/example-storage-sqlite: a wf storage plugin on SQLite, built only on @wf/core's public API.
// Importing it registers the `sqlite://` scheme, so `init('sqlite:///path/to/wf.db')` and
// `WF_STORAGE=sqlite:///path/to/wf.db` work: import it before either is resolved.

import { registerStorageScheme } from '@wf/core'
import { fromUri } from './uri.js'

export {
  createSqliteStorage,
  MAX_PAGE_SIZE,
  SqliteStorage,
  type SqliteStorageOptions,
} from './sqlite-storage.js'
export { fromUri, parseSqliteUri } from './uri.js'

// The side effect this package exists for (package.json lists this file in `sideEffects`).
registerStorageScheme('sqlite', fromUri)
