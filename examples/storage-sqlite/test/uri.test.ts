// The `sqlite://` scheme: importing the plugin registers it, so init('sqlite:///…') and
// WF_STORAGE=sqlite:///… open a SqliteStorage; without the import, core names the missing scheme.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { init, type Runtime } from '@wf/core'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { parseSqliteUri, SqliteStorage } from '../src/index.js'
import { requireBuild, runNode, tempDir } from './support.js'

const temp = tempDir('uri')
const opened: Runtime[] = []
afterEach(async () => {
  for (const runtime of opened.splice(0)) await (await runtime.storage()).close?.()
})
afterAll(temp.remove)

async function storageOf(runtime: Runtime): Promise<SqliteStorage> {
  opened.push(runtime)
  const storage = await runtime.storage()
  expect(storage).toBeInstanceOf(SqliteStorage)
  return storage as SqliteStorage
}

describe('sqlite:// URIs', () => {
  it('init("sqlite:///abs/file.db") opens a SqliteStorage on that file once the plugin is imported', async () => {
    const path = join(temp.dir, 'nested', 'folder', 'init.db')
    const storage = await storageOf(await init(`sqlite://${path}`))
    expect(storage.path).toBe(path)
    await storage.put('hello', new TextEncoder().encode('world'))
    expect(new TextDecoder().decode((await storage.get('hello'))?.data)).toBe('world')
  })

  it('init() without an argument follows WF_STORAGE=sqlite:///…', async () => {
    const path = join(temp.dir, 'from env.db')
    const before = process.env.WF_STORAGE
    process.env.WF_STORAGE = `sqlite://${encodeURI(path)}?busyTimeoutMs=250`
    try {
      expect((await storageOf(await init())).path).toBe(path)
    } finally {
      if (before === undefined) delete process.env.WF_STORAGE
      else process.env.WF_STORAGE = before
    }
  })

  it.each([
    ['a host instead of an absolute path', 'sqlite://relative/wf.db', /names the host "relative"/],
    ['no file', 'sqlite:///tmp/', /names no file/],
    ['an unknown option', 'sqlite:///tmp/wf.db?journal=off', /unknown option journal=off/],
    ['a bad busyTimeoutMs', 'sqlite:///tmp/wf.db?busyTimeoutMs=-1', /unknown option busyTimeoutMs=-1/],
    ['an unencoded "#"', 'sqlite:///tmp/a#b.db', /%23/],
  ])('rejects a URI with %s with StorageConfigError', async (_label, uri, message) => {
    await expect(init(uri)).rejects.toMatchObject({ code: 'WF_STORAGE_CONFIG', message })
  })

  it('percent-decodes the path like a file:// URL', () => {
    expect(parseSqliteUri('sqlite:///data/my%20app/wf%23.db')).toEqual({ path: '/data/my app/wf#.db' })
    expect(parseSqliteUri('sqlite://localhost/data/wf.db?busyTimeoutMs=0')).toEqual({
      path: '/data/wf.db',
      busyTimeoutMs: 0,
    })
  })

  it('rejects a file that is not a SQLite database with StorageConfigError', async () => {
    const path = join(temp.dir, 'not-a-db.db')
    writeFileSync(path, 'plain text, not SQLite '.repeat(100))
    await expect(init(`sqlite://${path}`)).rejects.toMatchObject({
      code: 'WF_STORAGE_CONFIG',
      message: /cannot open .*not-a-db\.db as a SQLite wf store/,
    })
  })
})

describe('registration happens when the plugin is imported', () => {
  it('in a process that never imports the plugin, sqlite:// is an unknown scheme', async () => {
    const script = `import { init } from '@wf/core'; await init(${JSON.stringify(`sqlite://${join(temp.dir, 'x.db')}`)})`
    const exit = await runNode(['--input-type=module', '-e', script])
    expect(exit.code).not.toBe(0)
    expect(exit.stderr).toContain('registerStorageScheme("sqlite", factory)')
  })

  it('node --import @wf/example-storage-sqlite registers it for an app that only reads WF_STORAGE', async () => {
    requireBuild()
    const path = join(temp.dir, 'preloaded.db')
    const script =
      "import { init } from '@wf/core'; const s = await (await init()).storage(); console.log(s.constructor.name, s.path); await s.close()"
    const exit = await runNode(
      ['--import', '@wf/example-storage-sqlite', '--input-type=module', '-e', script],
      {
        WF_STORAGE: `sqlite://${path}`,
      },
    )
    expect(exit.stderr).toBe('')
    expect(exit.stdout.trim()).toBe(`SqliteStorage ${path}`)
  })
})
