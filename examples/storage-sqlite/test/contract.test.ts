// The storage conformance suite from @wf/core/testing on a fresh SQLite file per test: the one
// call every plugin makes to prove it implements the contract.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describeStorageContract } from '@wf/core/testing'
import { afterAll } from 'vitest'
import { createSqliteStorage } from '../src/index.js'

const dir = mkdtempSync(join(tmpdir(), 'wf-sqlite-contract-'))
let files = 0
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// Each test gets its own file; the suite closes it after the test, and afterAll removes them all.
describeStorageContract('SqliteStorage on a temp file', () =>
  createSqliteStorage({ path: join(dir, `contract-${++files}.db`) }),
)
