// wf's `Storage` contract on one SQLite file, through better-sqlite3. Written only against
// @wf/core's public exports, as a third-party plugin would be: the worked example of
// docs/storage-plugins.md. One row per key in kv(key, value, version).

import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import {
  ConditionFailedError,
  CorruptRecordError,
  compareKeys,
  InvalidOptionsError,
  type ListOptions,
  type ListPage,
  type PutCondition,
  type Storage,
  StorageConfigError,
  StorageUnavailableError,
  type StoredValue,
  validateKey,
  validatePrefix,
  WfError,
} from '@wf/core'
import Database from 'better-sqlite3'
import { prefixUpperBound } from './key-range.js'

/** Options of `SqliteStorage` and `createSqliteStorage`. */
export interface SqliteStorageOptions {
  /** The database file. Created if missing; `createSqliteStorage` also creates its folder. */
  path: string
  /**
   * How long a write waits for another process's write lock, in milliseconds, before it rejects
   * with `StorageUnavailableError`. Default 5 000. better-sqlite3 is synchronous: the wait blocks
   * this thread, which is why write transactions here are kept to a read and a write.
   */
  busyTimeoutMs?: number
}

/** The most keys one `list` call returns, whatever `limit` says (S3 pages by 1 000 too). */
export const MAX_PAGE_SIZE = 1000

const DEFAULT_BUSY_TIMEOUT_MS = 5000

// BINARY (the default collation) compares the UTF-8 bytes of TEXT, i.e. code point order, which
// is the contract's list order (`compareKeys`), so the primary key index serves `list` directly.
const SCHEMA = `CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY NOT NULL,
  value BLOB NOT NULL,
  version TEXT NOT NULL
)`

interface Row {
  value: Buffer
  version: string
}

/** A fresh, never-reused version: random, so a key deleted and written again never gets an old one. */
function newVersion(): string {
  return randomBytes(16).toString('base64url')
}

/**
 * Keeps wf workflows in a SQLite database: WAL mode with `synchronous=FULL` (a `put` that resolved
 * survives power loss), conditional writes in `BEGIN IMMEDIATE` transactions, and a busy timeout so
 * several processes on one machine can share the file. Not for network file systems: SQLite's
 * locks and WAL need a local disk.
 *
 * @example
 * ```ts
 * import { init } from '@wf/core'
 * import { SqliteStorage } from '@wf/example-storage-sqlite'
 *
 * await init({ storage: new SqliteStorage({ path: '/var/lib/my-app/wf.db' }) })
 * ```
 */
export class SqliteStorage implements Storage {
  /** The database file. */
  readonly path: string
  readonly #busyTimeoutMs: number
  readonly #db: Database.Database
  readonly #get: Database.Statement<[string], Row>
  readonly #version: Database.Statement<[string], string>
  readonly #upsert: Database.Statement<[string, Uint8Array, string]>
  readonly #insert: Database.Statement<[string, Uint8Array, string]>
  readonly #update: Database.Statement<[Uint8Array, string, string]>
  readonly #delete: Database.Statement<[string]>
  readonly #lists = new Map<string, Database.Statement<unknown[], string>>()
  readonly #conditionalPut: Database.Transaction<
    (key: string, data: Uint8Array, condition: PutCondition, version: string) => void
  >
  readonly #deleteMany: Database.Transaction<(keys: string[]) => void>

  /** Opens (or creates) the database file. Throws `StorageConfigError` if it cannot be opened as a wf store. */
  constructor(options: SqliteStorageOptions) {
    const { path, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS } = options ?? ({} as SqliteStorageOptions)
    if (typeof path !== 'string' || path.trim() === '') {
      throw new StorageConfigError('SqliteStorage needs { path }: the database file')
    }
    if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw new StorageConfigError(
        `busyTimeoutMs must be a non-negative integer, got ${String(busyTimeoutMs)}`,
      )
    }
    this.path = path
    this.#busyTimeoutMs = busyTimeoutMs
    let db: Database.Database | undefined
    try {
      db = new Database(path)
      // First, so that the pragmas and the schema below wait for a process opening the file too.
      db.pragma(`busy_timeout = ${busyTimeoutMs}`)
      const mode = db.pragma('journal_mode = WAL', { simple: true })
      if (mode !== 'wal') throw new Error(`the database stayed in journal mode "${String(mode)}", not WAL`)
      // FULL: every commit fsyncs the WAL, so a write that resolved survives power loss.
      db.pragma('synchronous = FULL')
      db.exec(SCHEMA)
      this.#get = db.prepare<[string], Row>('SELECT value, version FROM kv WHERE key = ?')
      this.#version = db.prepare<[string], string>('SELECT version FROM kv WHERE key = ?').pluck()
      this.#upsert = db.prepare(
        'INSERT INTO kv (key, value, version) VALUES (?, ?, ?) ' +
          'ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version',
      )
      this.#insert = db.prepare('INSERT INTO kv (key, value, version) VALUES (?, ?, ?)')
      this.#update = db.prepare('UPDATE kv SET value = ?, version = ? WHERE key = ?')
      this.#delete = db.prepare('DELETE FROM kv WHERE key = ?')
    } catch (error) {
      db?.close()
      if (error instanceof WfError) throw error
      throw new StorageConfigError(
        `cannot open ${path} as a SQLite wf store: ${error instanceof Error ? error.message : String(error)}. Check that the folder exists and is writable, and that the file is a SQLite database on a local disk`,
        { cause: error },
      )
    }
    this.#db = db
    // Check and write in one transaction. IMMEDIATE takes the write lock before the read: with a
    // deferred transaction two processes could both read the old version, and the one that then
    // upgrades to a writer fails with SQLITE_BUSY at once instead of waiting out busy_timeout.
    this.#conditionalPut = db.transaction((key, data, condition, version) => {
      const current = this.#version.get(key)
      const holds = 'ifAbsent' in condition ? current === undefined : current === condition.ifVersion
      if (!holds) throw new ConditionFailedError(key)
      if (current === undefined) this.#insert.run(key, data, version)
      else this.#update.run(data, version, key)
    })
    this.#deleteMany = db.transaction((keys) => {
      for (const key of keys) this.#delete.run(key)
    })
  }

  async get(key: string): Promise<StoredValue | undefined> {
    validateKey(key)
    const row = this.#call('get', key, () => this.#get.get(key))
    if (row === undefined) return undefined
    if (!(row.value instanceof Uint8Array) || typeof row.version !== 'string') {
      throw new CorruptRecordError(key, `the row in ${this.path} is not a BLOB value with a TEXT version`)
    }
    // better-sqlite3 hands out a fresh Buffer per read: the caller owns these bytes.
    return {
      data: new Uint8Array(row.value.buffer, row.value.byteOffset, row.value.byteLength),
      version: row.version,
    }
  }

  async put(key: string, data: Uint8Array, condition?: PutCondition): Promise<{ version: string }> {
    validateKey(key)
    if (!(data instanceof Uint8Array)) throw new TypeError('put() takes the value as a Uint8Array')
    const version = newVersion()
    // SQLite copies the bound bytes (and honours a view's offset), so later changes to `data` do not leak in.
    if (condition === undefined) this.#call('put', key, () => this.#upsert.run(key, data, version))
    else {
      checkCondition(condition)
      this.#call('put', key, () => this.#conditionalPut.immediate(key, data, condition, version))
    }
    return { version }
  }

  async delete(key: string): Promise<void> {
    validateKey(key)
    this.#call('delete', key, () => this.#delete.run(key))
  }

  /** Deletes the keys in one transaction: one fsync instead of one per key. */
  async deleteMany(keys: string[]): Promise<void> {
    for (const key of keys) validateKey(key)
    if (keys.length > 0) this.#call('deleteMany', undefined, () => this.#deleteMany.immediate(keys))
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    validatePrefix(prefix)
    const { after, limit } = options
    if (after !== undefined && typeof after !== 'string') {
      throw new InvalidOptionsError('list(): after must be a string (a key from a previous page)')
    }
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) {
      throw new InvalidOptionsError(`list(): limit must be a positive integer, got ${String(limit)}`)
    }
    const pageSize = Math.min(limit ?? MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    // One lower bound, so the index range starts at the right row: `after` when it is past the
    // prefix (exclusive), else the prefix itself (inclusive). Compared as the contract orders keys.
    const fromAfter = after !== undefined && compareKeys(after, prefix) >= 0
    const upper = prefixUpperBound(prefix)
    const params: unknown[] = [fromAfter ? after : prefix]
    if (upper !== undefined) params.push(upper)
    params.push(pageSize + 1) // one more than the page: tells whether another page follows
    const keys = this.#call('list', undefined, () =>
      this.#listStatement(fromAfter, upper !== undefined).all(...params),
    )
    if (keys.length <= pageSize) return { keys }
    keys.length = pageSize
    return { keys, next: keys[pageSize - 1] as string }
  }

  /** Closes the database. Calls after it reject with `StorageUnavailableError`. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#db.open) this.#db.close()
  }

  #listStatement(fromAfter: boolean, bounded: boolean): Database.Statement<unknown[], string> {
    const sql = `SELECT key FROM kv WHERE key ${fromAfter ? '>' : '>='} ?${bounded ? ' AND key < ?' : ''} ORDER BY key LIMIT ?`
    let statement = this.#lists.get(sql)
    if (statement === undefined) {
      statement = this.#db.prepare<unknown[], string>(sql).pluck()
      this.#lists.set(sql, statement)
    }
    return statement
  }

  /** Runs one database call, turning SQLite's failures into the contract's errors. */
  #call<T>(what: string, key: string | undefined, fn: () => T): T {
    if (!this.#db.open)
      throw new StorageUnavailableError(`${what}: the SQLite storage ${this.path} is closed`)
    try {
      return fn()
    } catch (error) {
      throw this.#translate(error, what, key)
    }
  }

  #translate(error: unknown, what: string, key: string | undefined): unknown {
    const code = (error as { code?: unknown }).code
    if (error instanceof WfError || typeof code !== 'string' || !code.startsWith('SQLITE_')) return error
    const where = key === undefined ? `${what} on ${this.path}` : `${what} "${key}" on ${this.path}`
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      return new StorageUnavailableError(
        `${where}: the database is locked by another connection (waited up to ${this.#busyTimeoutMs} ms); nothing was written. Retry, or raise busyTimeoutMs`,
        { cause: error },
      )
    }
    if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
      const detail = `SQLite reports the database file as corrupt (${code})`
      return key === undefined
        ? new StorageUnavailableError(`${where}: ${detail}; restore it from a backup`, { cause: error })
        : new CorruptRecordError(key, detail, { cause: error })
    }
    if (code === 'SQLITE_FULL') {
      return new StorageUnavailableError(`${where}: the disk is full; nothing was written, free some space`, {
        cause: error,
      })
    }
    // I/O errors, a read-only file or folder, a file removed under us: the medium failed.
    return new StorageUnavailableError(`${where} failed: ${(error as Error).message} (${code})`, {
      cause: error,
    })
  }
}

function checkCondition(condition: PutCondition): void {
  const ok =
    typeof condition === 'object' &&
    condition !== null &&
    ('ifAbsent' in condition
      ? condition.ifAbsent === true
      : 'ifVersion' in condition && typeof condition.ifVersion === 'string')
  if (!ok)
    throw new InvalidOptionsError('put(): the condition must be { ifAbsent: true } or { ifVersion: string }')
}

/**
 * Opens a SQLite database file as wf storage, creating the file and its folder if needed.
 * Rejects with `StorageConfigError` if it cannot be opened.
 *
 * @example
 * ```ts
 * import { init } from '@wf/core'
 * import { createSqliteStorage } from '@wf/example-storage-sqlite'
 *
 * await init({ storage: await createSqliteStorage({ path: './workflow_data/wf.db' }) })
 * ```
 */
export async function createSqliteStorage(options: SqliteStorageOptions): Promise<SqliteStorage> {
  if (typeof options?.path === 'string' && options.path !== '' && !options.path.startsWith(':')) {
    try {
      await mkdir(dirname(options.path), { recursive: true })
    } catch (error) {
      throw new StorageConfigError(
        `cannot create the folder of ${options.path}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      )
    }
  }
  return new SqliteStorage(options)
}
