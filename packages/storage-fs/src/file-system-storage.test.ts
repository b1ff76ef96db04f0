// Behaviour of FileSystemStorage beyond the shared contract: what it puts on disk, how it refuses
// keys aimed outside its folder, how it reports broken folders, full disks and damaged files, and
// how its per-key lock keeps plain puts, compare-and-swap and dead lock holders apart.

import { spawnSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CorruptRecordError, StorageConfigError, StorageUnavailableError } from '@wf/core'
import { afterAll, describe, expect, it } from 'vitest'
import { MODE_FILE } from './durability.js'
import type { FileSystem } from './file-system.js'
import { nodeFileSystem } from './file-system.js'
import { createFileSystemStorage, FileSystemStorage, fromUri } from './index.js'
import { memoryFileSystem } from './test-support/memory-file-system.js'

const utf8 = (value: string) => new TextEncoder().encode(value)
const text = (data: Uint8Array | undefined) => new TextDecoder().decode(data ?? new Uint8Array())

const roots: string[] = []
async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'wf-storage-fs-unit-'))
  roots.push(root)
  return root
}
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })))
})

/** Every path under `dir`, relative, with '/' separators; not the folders' mode files (see durability.test.ts). */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true })
  return entries
    .map((entry) => entry.split(sep).join('/'))
    .filter((path) => path !== MODE_FILE && !path.endsWith(`/${MODE_FILE}`))
    .sort()
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

/** The real filesystem, with some calls replaced. */
function faultyFileSystem(overrides: Partial<FileSystem>): FileSystem {
  return { ...nodeFileSystem, ...overrides }
}

const errno = (code: string) => Object.assign(new Error(`${code}: simulated`), { code })

describe('on-disk layout', () => {
  it('stores an empty value from an array without a backing store (Node 20 crc32 quirk)', async () => {
    for (const durability of ['fsync', 'journal', 'none'] as const) {
      const storage = await createFileSystemStorage({ root: await tempRoot(), durability })
      await storage.put('k', new Uint8Array(new ArrayBuffer(0)))
      await storage.put('j', new Uint8Array(new ArrayBuffer(0)), { ifAbsent: true })
      expect((await storage.get('k'))?.data.byteLength).toBe(0)
      expect((await storage.get('j'))?.data.byteLength).toBe(0)
      await storage.close()
    }
  })

  it('stores key segments as folders and the value in "<segment>~", with a header and the bytes', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root, durability: 'fsync' })
    await storage.put('workflows/order-1/state', utf8('hello'))
    expect(await tree(root)).toEqual(['workflows', 'workflows/order-1', 'workflows/order-1/state~'])
    const file = await readFile(join(root, 'workflows', 'order-1', 'state~'))
    expect(file.subarray(0, 4).toString()).toBe('WFS1')
    expect(file.subarray(32).toString()).toBe('hello')
  })

  it('percent-encodes characters outside [A-Za-z0-9._-], a leading or trailing ".", and the marker characters, and reads them back', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root, durability: 'fsync' })
    const keys = ['.hidden', 'x~', 'x+', '.lk.x~', '.tmp.1.2.3', 'a:b*c?', 'CON', 'ends.', 'ü/日本', '100%']
    for (const key of keys) await storage.put(key, utf8(key))
    for (const name of await tree(root)) {
      expect(name.split('/').every((part) => !part.startsWith('.'))).toBe(true)
      expect(name).toMatch(/^[A-Za-z0-9._%/+~-]+$/)
    }
    expect(await tree(root)).toContain('%2Ehidden~')
    expect(await tree(root)).toContain('x%7E~')
    for (const key of keys) expect(text((await storage.get(key))?.data)).toBe(key)
    expect((await storage.list('')).keys).toEqual([...keys].sort())
  })

  it('splits a segment too long for one file name over folders and lists it in key order', async () => {
    const storage = await createFileSystemStorage({ root: await tempRoot() })
    const long = 'é'.repeat(300) // 1 800 characters once encoded
    const keys = [`l/${long}`, `l/${long}x`, `l/${long.slice(0, 100)}`, `l/${long}/child`, 'l/z']
    for (const key of keys) await storage.put(key, utf8(key))
    for (const key of keys) expect(text((await storage.get(key))?.data)).toBe(key)
    const sorted = [...keys].sort()
    expect((await storage.list('l/')).keys).toEqual(sorted)
    const from = sorted.indexOf(`l/${long}`) + 1
    expect((await storage.list('l/', { after: `l/${long}`, limit: 2 })).keys).toEqual(
      sorted.slice(from, from + 2),
    )
  })

  it('removes folders left empty by delete, but never the root nor a folder right under it', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root, durability: 'fsync' })
    await storage.put('a/b/c/d', utf8('x'))
    await storage.put('a/other', utf8('y'))
    await storage.delete('a/b/c/d')
    expect(await tree(root)).toEqual(['a', 'a/other~'])
    // A top-level prefix (wf's `starts/`, `index/`…) is used again: its folder stays.
    await storage.delete('a/other')
    expect(await tree(root)).toEqual(['a'])
    expect((await storage.list('a/')).keys).toEqual([])
    await storage.put('again/here', utf8('z'))
    expect(text((await storage.get('again/here'))?.data)).toBe('z')
  })

  it('ignores temp, lock and foreign files in list and get', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root })
    await storage.put('k/one', utf8('1'))
    await writeFile(join(root, 'k', '.tmp.99999999.x.y.0'), 'partial')
    await symlink('99999999.x.y.z', join(root, 'k', '.lk.two~'))
    await writeFile(join(root, 'k', 'README'), 'not ours')
    await writeFile(join(root, 'k', 'lower%c3%bc~'), 'not canonical')
    expect((await storage.list('')).keys).toEqual(['k/one'])
    expect(await storage.get('k/two')).toBeUndefined()
  })
})

describe('keys aimed outside the root', () => {
  it.each(['..', '../escape', 'a/../../escape', './a', '/etc/passwd', 'a\\..\\..\\escape', 'a//b'])(
    'refuses %j with InvalidKeyError and creates nothing',
    async (key) => {
      const parent = await tempRoot()
      const root = join(parent, 'root')
      const storage = await createFileSystemStorage({ root, durability: 'fsync' })
      for (const call of [
        () => storage.put(key, utf8('x')),
        () => storage.put(key, utf8('x'), { ifAbsent: true }),
        () => storage.get(key),
        () => storage.delete(key),
      ]) {
        expect(await rejection(call())).toMatchObject({ code: 'WF_INVALID_KEY' })
      }
      expect(await tree(parent)).toEqual(['root'])
    },
  )

  it('keeps keys made of dots and slashes-lookalikes inside the root', async () => {
    const parent = await tempRoot()
    const root = join(parent, 'root')
    const storage = await createFileSystemStorage({ root })
    for (const key of ['...', '.../...', 'a/..b', '%2E%2E/x', '..%2Fescape']) {
      await storage.put(key, utf8(key))
      expect(text((await storage.get(key))?.data)).toBe(key)
    }
    expect((await tree(parent)).every((path) => path === 'root' || path.startsWith('root/'))).toBe(true)
  })
})

describe('errors', () => {
  it('rejects a root that cannot be created with StorageConfigError naming the folder', async () => {
    const parent = await tempRoot()
    await writeFile(join(parent, 'file'), 'a file, not a folder')
    const root = join(parent, 'file', 'root')
    const error = await rejection(createFileSystemStorage({ root }))
    expect(error).toBeInstanceOf(StorageConfigError)
    expect(String(error)).toContain(root)
  })

  it('rejects a root that is a file with StorageConfigError', async () => {
    const parent = await tempRoot()
    await writeFile(join(parent, 'file'), 'x')
    expect(await rejection(createFileSystemStorage({ root: join(parent, 'file') }))).toBeInstanceOf(
      StorageConfigError,
    )
  })

  it('rejects a root it cannot write to with StorageConfigError saying so', async () => {
    const root = await tempRoot()
    const fs = faultyFileSystem({
      open: (path, flags, mode) =>
        path.includes('.probe') ? Promise.reject(errno('EACCES')) : nodeFileSystem.open(path, flags, mode),
    })
    const error = await rejection(createFileSystemStorage({ root, fs }))
    expect(error).toBeInstanceOf(StorageConfigError)
    expect(String(error)).toMatch(/not writable/)
  })

  it('rejects bad options with StorageConfigError', () => {
    expect(() => new FileSystemStorage({ root: '' })).toThrow(StorageConfigError)
    expect(() => new FileSystemStorage({ root: '/x', durability: 'always' as 'fsync' })).toThrow(
      StorageConfigError,
    )
    expect(() => new FileSystemStorage({ root: '/x', lockStaleMs: -1 })).toThrow(StorageConfigError)
  })

  it('reports a full disk as StorageUnavailableError, keeps the old value and leaves no temp file', async () => {
    const root = await tempRoot()
    let full = false
    const fs = faultyFileSystem({
      open: async (path, flags, mode) => {
        const handle = await nodeFileSystem.open(path, flags, mode)
        if (!full || flags !== 'wx') return handle
        return { ...handle, writev: () => Promise.reject(errno('ENOSPC')), close: () => handle.close() }
      },
    })
    const storage = await createFileSystemStorage({ root, fs, durability: 'fsync' })
    await storage.put('k', utf8('old'))
    full = true
    for (const condition of [undefined, { ifAbsent: true as const }]) {
      const error = await rejection(storage.put(condition ? 'new' : 'k', utf8('new'), condition))
      expect(error).toBeInstanceOf(StorageUnavailableError)
      expect(String(error)).toMatch(/no space left/)
    }
    expect(text((await storage.get('k'))?.data)).toBe('old')
    expect(await tree(root)).toEqual(['k~'])
  })

  it.each([
    ['truncated', (file: string) => truncate(file, 40), /truncated/],
    ['cut inside the header', (file: string) => truncate(file, 10), /shorter than/],
    [
      'damaged',
      async (file: string) => {
        const bytes = await readFile(file)
        bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1)
        await writeFile(file, bytes)
      },
      /checksum/,
    ],
    ['not written by wf', (file: string) => writeFile(file, 'x'.repeat(100)), /header/],
  ])('reports a %s file as CorruptRecordError naming the key and the path', async (_, damage, detail) => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root })
    await storage.put('runs/r1', utf8('a value long enough to cut in the middle'))
    const file = join(root, 'runs', 'r1~')
    await damage(file)
    const error = await rejection(storage.get('runs/r1'))
    expect(error).toBeInstanceOf(CorruptRecordError)
    expect(error).toMatchObject({ key: 'runs/r1' })
    expect(String(error)).toContain(file)
    expect(String(error)).toMatch(detail)
  })

  it('deletes a damaged file, in every durability (the error tells users to delete it)', async () => {
    for (const durability of ['fsync', 'journal', 'none'] as const) {
      const root = await tempRoot()
      const storage = await createFileSystemStorage({ root, durability })
      await storage.put('runs/r1', utf8('a value long enough to cut in the middle'))
      await storage.put('runs/r2', utf8('kept'))
      await truncate(join(root, 'runs', 'r1~'), 10)
      expect(await rejection(storage.get('runs/r1'))).toBeInstanceOf(CorruptRecordError)
      await storage.delete('runs/r1')
      expect(await storage.get('runs/r1')).toBeUndefined()
      await storage.put('runs/r1', utf8('new'), { ifAbsent: true })
      expect(text((await storage.get('runs/r1'))?.data)).toBe('new')
      await storage.close()
    }
  })
})

describe('two storages on one folder in one process', () => {
  it('open at the same time and write the same keys without their temp files colliding', async () => {
    const root = await tempRoot()
    const [a, b] = await Promise.all([createFileSystemStorage({ root }), createFileSystemStorage({ root })])
    const writes = Array.from({ length: 20 }, (_, i) => [
      (a as FileSystemStorage).put(`k/${i % 5}`, utf8(`a${i}`)),
      (b as FileSystemStorage).put(`k/${i % 5}`, utf8(`b${i}`)),
    ]).flat()
    await Promise.all(writes)
    for (let i = 0; i < 5; i++)
      expect(text((await (a as FileSystemStorage).get(`k/${i}`))?.data)).toMatch(/^[ab]\d+$/)
  })
})

describe('locks', () => {
  it('a plain put that arrives while a compare-and-swap holds the key is applied after it, not lost', async () => {
    const base = memoryFileSystem()
    let plainPut: Promise<unknown> | undefined
    let storage!: FileSystemStorage
    // Pause the swap between its version check and its rename, and start a plain put right there.
    const fs: FileSystem = {
      ...base,
      open: async (path, flags, mode) => {
        const handle = await base.open(path, flags, mode)
        if (flags === 'r' && path.endsWith('k~') && plainPut === undefined) {
          plainPut = storage.put('k', utf8('plain'))
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
        return handle
      },
    }
    storage = await createFileSystemStorage({ root: '/r', fs })
    const { version } = await storage.put('k', utf8('start'))
    await storage.put('k', utf8('swapped'), { ifVersion: version })
    await plainPut
    expect(text((await storage.get('k'))?.data)).toBe('plain')
  })

  it('takes over at once a lock whose owner process is dead', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root, lockTimeoutMs: 2_000 })
    await storage.put('k', utf8('v1'))
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])
    const deadPid = dead.stdout.toString()
    // Left by a writer killed while holding the lock: its pid, this host's tag and a token.
    await symlink(`${deadPid}.${await currentHostTag()}.token.nonce`, join(root, '.lk.k~'))
    const started = Date.now()
    await storage.put('k', utf8('v2'))
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(text((await storage.get('k'))?.data)).toBe('v2')
  })

  it('waits for a live lock, and takes it over once it is older than lockStaleMs', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root, lockStaleMs: 300 })
    await storage.put('k', utf8('v1'))
    // Held by a live process on this host (ourselves, with our own token): only age can free it.
    await symlink(`${process.pid}.${await currentHostTag()}.${await currentToken()}.n`, join(root, '.lk.k~'))
    const started = Date.now()
    await storage.put('k', utf8('v2'))
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    expect(text((await storage.get('k'))?.data)).toBe('v2')
  })

  it('gives up on a live lock after lockTimeoutMs with StorageUnavailableError naming the lock', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root, lockTimeoutMs: 200 })
    await storage.put('k', utf8('v1'))
    await symlink(`${process.pid}.${await currentHostTag()}.${await currentToken()}.n`, join(root, '.lk.k~'))
    const error = await rejection(storage.put('k', utf8('v2')))
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect(String(error)).toContain('.lk.k~')
    expect(text((await storage.get('k'))?.data)).toBe('v1')
  })

  it('cleanup() removes temp files and locks of dead processes and keeps values', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root })
    await storage.put('a/b', utf8('kept'))
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])
    const stamp = `${dead.stdout.toString()}.${await currentHostTag()}.t`
    await writeFile(join(root, 'a', `.tmp.${stamp}.0`), 'partial')
    await symlink(`${stamp}.n`, join(root, 'a', '.lk.b~'))
    await writeFile(
      join(root, 'a', `.tmp.${process.pid}.${await currentHostTag()}.${await currentToken()}.7`),
      'live',
    )
    expect(await storage.cleanup()).toBe(2)
    expect((await tree(root)).filter((p) => p.includes('.tmp.') || p.includes('.lk.'))).toHaveLength(1)
    expect(text((await storage.get('a/b'))?.data)).toBe('kept')
  })
})

describe('fromUri and options', () => {
  it('opens a plain path, a relative path and a file:// URL', async () => {
    const root = await tempRoot()
    // A plain path opens a folder in its recorded mode: make 'plain' an fsync folder first.
    await (await createFileSystemStorage({ root: join(root, 'plain'), durability: 'fsync' })).close()
    for (const uri of [join(root, 'plain'), `${pathToFileURL(join(root, 'url')).href}?durability=fsync`]) {
      const storage = await fromUri(uri)
      await storage.put('k', utf8(uri))
      expect(text((await storage.get('k'))?.data)).toBe(uri)
    }
    expect(await tree(root)).toEqual(['plain', 'plain/k~', 'url', 'url/k~'])
    const relative = (await fromUri('./relative-root-for-test')) as FileSystemStorage
    expect(relative.root).toBe(join(process.cwd(), 'relative-root-for-test'))
    await rm(relative.root, { recursive: true })
  })

  it('accepts durability=none and =journal on a file URL and refuses unknown options and other schemes', async () => {
    const root = await tempRoot()
    const storage = (await fromUri(`${pathToFileURL(root).href}?durability=none`)) as FileSystemStorage
    expect(storage.durability).toBe('none')
    await storage.put('k', utf8('v'))
    expect(text((await storage.get('k'))?.data)).toBe('v')
    const journaled = (await fromUri(`${pathToFileURL(root).href}?durability=journal`)) as FileSystemStorage
    expect(journaled.durability).toBe('journal')
    await journaled.close()
    await expect(fromUri(`${pathToFileURL(root).href}?sync=1`)).rejects.toBeInstanceOf(StorageConfigError)
    await expect(fromUri('s3://bucket/prefix')).rejects.toBeInstanceOf(StorageConfigError)
    await expect(fromUri('')).rejects.toBeInstanceOf(StorageConfigError)
  })
})

// The owner stamp the package writes, read from a lock it creates: the tests forge locks with it.
async function currentStamp(): Promise<string[]> {
  const fs = memoryFileSystem()
  let stamp = ''
  const spy: FileSystem = {
    ...fs,
    symlink: (target, path) => {
      stamp = target
      return fs.symlink(target, path)
    },
  }
  const storage = await createFileSystemStorage({ root: '/s', fs: spy })
  await storage.put('k', utf8('x'))
  return stamp.split('.')
}
async function currentHostTag(): Promise<string> {
  return (await currentStamp())[1] as string
}
async function currentToken(): Promise<string> {
  return (await currentStamp())[2] as string
}
