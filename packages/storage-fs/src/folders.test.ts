// Paths that cannot exist, and every retry loop of this package: each ends, with a typed error,
// within its bound. Real paths where the system has them (a dangling symlink, /proc); a wrapped
// filesystem for faults a real disk does not produce on demand.

import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { init, resolveStorage, StorageConfigError, StorageUnavailableError } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FileHandleLike, type FileSystem, nodeFileSystem, type SyncFileSystem } from './file-system.js'
import { createFileSystemStorage, FileSystemStorage, fromUri } from './index.js'
import { JOURNAL_FOLDER } from './journal/format.js'
import { ensureBuilt } from './test-support/build-once.js'

const here = dirname(fileURLToPath(import.meta.url))
const wfBin = join(here, '..', '..', 'client', 'bin', 'wf.js')
const utf8 = (value: string) => new TextEncoder().encode(value)
const errno = (code: string) => Object.assign(new Error(`${code}: simulated`), { code })

const roots: string[] = []
async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'wf-storage-fs-folders-'))
  roots.push(root)
  return root
}
beforeAll(() => ensureBuilt(), 120_000)
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })))
})

/** A folder holding `dangling`, a symlink to a path that does not exist. */
async function danglingLink(): Promise<string> {
  const dir = await tempRoot()
  const link = join(dir, 'dangling')
  await symlink(join(dir, 'nonexistent', 'vol'), link)
  return link
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error('expected a rejection')
}

/** Rejects like `promise`, or fails the test if it takes longer than `ms` (the old code spun for ever). */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

const openers = {
  createFileSystemStorage: (root: string) => createFileSystemStorage({ root }),
  fromUri: (root: string) => fromUri(root),
  'resolveStorage (@wf/core)': (root: string) => resolveStorage(root),
  'init (@wf/core)': async (root: string) => (await init(root)).storage(),
}

describe.each(Object.entries(openers))('a storage path that cannot exist, opened through %s', (_, open) => {
  it('fails at once with StorageConfigError naming a dangling symlink on the path', async () => {
    const link = await danglingLink()
    const error = await rejection(within(5_000, open(join(link, 'wf'))))
    expect(error).toBeInstanceOf(StorageConfigError)
    expect(error.message).toContain(join(link, 'wf'))
    expect(error.message).toContain(`${link} is a dangling symlink`)
  })

  it('fails at once with StorageConfigError when the root itself is a dangling symlink', async () => {
    const link = await danglingLink()
    const error = await rejection(within(5_000, open(link)))
    expect(error).toBeInstanceOf(StorageConfigError)
    expect(error.message).toContain(`${link} is a dangling symlink`)
  })

  it.skipIf(!existsSync('/proc/self'))(
    'fails at once with StorageConfigError for a folder in /proc',
    async () => {
      const error = await rejection(within(5_000, open('/proc/wfdata/x')))
      expect(error).toBeInstanceOf(StorageConfigError)
      expect(error.message).toContain('/proc/wfdata/x')
      expect(error.message).toMatch(/\/proc exists, but mkdir of \/proc\/wfdata in it fails/)
    },
  )
})

describe('a folder below the root that cannot exist', () => {
  it.each(['fsync', 'journal', 'none'] as const)(
    'fails a put in it at once with StorageConfigError (%s: the asynchronous and the synchronous folder maker)',
    async (durability) => {
      const root = await tempRoot()
      const storage = await createFileSystemStorage({ root, durability })
      // Another process (or a careless admin) replaced a workflow's folder by a dangling symlink.
      await symlink(join(root, 'gone'), join(root, 'w'))
      for (const condition of [undefined, { ifAbsent: true } as const]) {
        const error = await rejection(within(5_000, storage.put('w/steps/a', utf8('x'), condition)))
        expect(error).toBeInstanceOf(StorageConfigError)
        expect(error.message).toContain(`${join(root, 'w')} is a dangling symlink`)
      }
      await storage.close()
    },
  )
})

it.skipIf(!existsSync('/proc/self'))(
  '`wf list` with WF_STORAGE on a path that cannot exist exits non-zero at once and says why',
  async () => {
    expect(existsSync(join(wfBin, '..', '..', 'dist', 'cli.js')), 'build @wf/client first (pnpm build)').toBe(
      true,
    )
    const link = await danglingLink()
    for (const [storage, why] of [
      [join(link, 'wf'), `${link} is a dangling symlink`],
      ['/proc/wfdata', '/proc exists, but mkdir'],
    ] as const) {
      const started = Date.now()
      const result = await promisify(execFile)(process.execPath, [wfBin, 'list'], {
        env: { ...process.env, WF_STORAGE: storage },
        cwd: join(here, '..'),
        timeout: 20_000,
      }).then(
        () => ({ code: 0, stderr: '' }),
        (error: { code?: number; stderr?: string; killed?: boolean }) => ({
          code: error.killed ? 'killed' : error.code,
          stderr: error.stderr ?? '',
        }),
      )
      expect(result.code).not.toBe(0)
      expect(result.code).not.toBe('killed')
      expect(result.stderr).toContain(storage)
      expect(result.stderr).toContain(why)
      expect(Date.now() - started).toBeLessThan(10_000)
    }
  },
  60_000,
)

/** The real filesystem with some calls replaced, counting the calls made to each name. */
function faulty(overrides: (real: FileSystem) => Partial<FileSystem>, sync?: Partial<SyncFileSystem>) {
  const fs: FileSystem = { ...nodeFileSystem, ...overrides(nodeFileSystem) }
  if (sync !== undefined) fs.sync = { ...(nodeFileSystem.sync as SyncFileSystem), ...sync }
  return fs
}

describe('every retry loop ends with a typed error', () => {
  it('a temp file whose folder keeps vanishing after it was made: StorageUnavailableError after a bounded number of tries', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root, durability: 'fsync' })
    let opens = 0
    const fs = faulty((real) => ({
      open: async (path, flags, mode) => {
        if (path.includes('.tmp.') && path.includes(`${root}/w/`)) {
          opens++
          throw errno('ENOENT')
        }
        return real.open(path, flags, mode)
      },
    }))
    const flaky = new FileSystemStorage({ root, fs })
    const error = await rejection(within(5_000, flaky.put('w/a', utf8('x'))))
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect(error.message).toMatch(/ENOENT/)
    expect(opens).toBeGreaterThan(1)
    expect(opens).toBeLessThanOrEqual(20)
    await storage.close()
  })

  it('the same with synchronous calls (journal)', async () => {
    const root = await tempRoot()
    let opens = 0
    const sync = nodeFileSystem.sync as SyncFileSystem
    const fs = faulty(() => ({}), {
      openSync: (path, flags, mode) => {
        if (path.includes('.tmp.') && path.includes(`${root}/w/`)) {
          opens++
          throw errno('ENOENT')
        }
        return sync.openSync(path, flags, mode)
      },
    })
    const storage = await createFileSystemStorage({ root, fs, durability: 'journal' })
    const error = await rejection(within(5_000, storage.put('w/a', utf8('x'))))
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect(opens).toBeGreaterThan(1)
    expect(opens).toBeLessThanOrEqual(20)
    await storage.close()
  })

  it('mkdir that keeps saying ENOENT for a folder whose parent it says exists: StorageConfigError after a bounded number of calls', async () => {
    const root = await tempRoot()
    let mkdirs = 0
    const fs = faulty((real) => ({
      mkdir: async (path) => {
        if (!path.startsWith(`${root}/w`)) return real.mkdir(path)
        mkdirs++
        throw errno(path === `${root}/w` ? 'EEXIST' : 'ENOENT')
      },
    }))
    const storage = await createFileSystemStorage({ root, fs, durability: 'fsync' })
    const error = await rejection(within(5_000, storage.put('w/a/b', utf8('x'))))
    expect(error).toBeInstanceOf(StorageConfigError)
    expect(error.message).toContain(`cannot create the folder ${root}/w/a`)
    expect(mkdirs).toBeLessThanOrEqual(64 * 20)
  })

  it('a lock that reads as gone but cannot be taken: StorageUnavailableError after lockTimeoutMs', async () => {
    const root = await tempRoot()
    await mkdir(join(root, 'w'))
    const fs = faulty((real) => ({
      // The filesystem says the lock exists, yet shows none (a broken NFS client could).
      symlink: async (target, path) => {
        if (path.includes('.lk.')) throw errno('EEXIST')
        return real.symlink(target, path)
      },
    }))
    const storage = await createFileSystemStorage({ root, fs, lockTimeoutMs: 200 })
    await storage.put('w/a', utf8('1'), { ifAbsent: true })
    const started = Date.now()
    const error = await rejection(within(5_000, storage.put('w/a', utf8('2'))))
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect(error.message).toMatch(/timed out after 200 ms waiting for the lock of "w\/a"/)
    expect(Date.now() - started).toBeGreaterThanOrEqual(200)
  })

  it('a journal segment that cannot be created though its folder is made: StorageUnavailableError after a few tries', async () => {
    const root = await tempRoot()
    let opens = 0
    const fs = faulty((real) => ({
      open: async (path, flags, mode) => {
        if (path.endsWith('.wal')) {
          opens++
          throw errno('ENOENT')
        }
        return real.open(path, flags, mode)
      },
    }))
    const storage = await createFileSystemStorage({ root, fs, durability: 'journal' })
    const error = await rejection(within(5_000, storage.put('k', utf8('x'))))
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect(error.message).toContain(join(root, JOURNAL_FOLDER))
    expect(opens).toBe(4)
  })

  it('close() with a journal write that never completes: StorageUnavailableError after twice lockTimeoutMs', async () => {
    const root = await tempRoot()
    const fs = faulty((real) => ({
      open: async (path, flags, mode) => {
        const handle = await real.open(path, flags, mode)
        if (!path.endsWith('.wal')) return handle
        let writes = 0
        // The segment's magic is written; the first entry's write hangs (a disk that stopped answering).
        const hanging: FileHandleLike = {
          writev: (buffers, position) => handle.writev(buffers, position),
          write: (buffer, offset, length, position) =>
            writes++ === 0 ? handle.write(buffer, offset, length, position) : new Promise(() => {}),
          read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
          datasync: () => handle.datasync(),
          sync: () => handle.sync(),
          close: () => handle.close(),
        }
        return hanging
      },
    }))
    const storage = await createFileSystemStorage({ root, fs, durability: 'journal', lockTimeoutMs: 100 })
    void storage.put('k', utf8('x')).catch(() => undefined) // never resolves: its write hangs
    await new Promise((resolve) => setTimeout(resolve, 20))
    const started = Date.now()
    const error = await rejection(within(5_000, storage.close()))
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect(error.message).toMatch(/close\(\) waited 200 ms for 1 journal write/)
    expect(Date.now() - started).toBeGreaterThanOrEqual(200)
  })
})
