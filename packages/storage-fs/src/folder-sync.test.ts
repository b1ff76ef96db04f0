// Group commit of folder fsyncs: concurrent puts into one folder share fsyncs, and every put
// resolves only after an fsync of its folder that started after its rename or link completed.

import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { StorageUnavailableError } from '@wf/core'
import { afterAll, describe, expect, it } from 'vitest'
import type { FileHandleLike, FileSystem } from './file-system.js'
import { nodeFileSystem } from './file-system.js'
import { FolderSyncs } from './folder-sync.js'
import { createFileSystemStorage } from './index.js'
import { KeyLocks } from './lock.js'
import { ValueFiles } from './value-files.js'

const roots: string[] = []
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })))
})
async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'wf-storage-fs-group-'))
  roots.push(root)
  return root
}

const utf8 = (value: string) => new TextEncoder().encode(value)

interface FolderSyncEvent {
  dir: string
  start: number
  end: number
}

/**
 * The real filesystem, logging on one clock when each rename/link into place completed and when
 * each folder fsync started and ended. Folder fsyncs take at least `syncDelayMs`, so puts pile up.
 */
function loggingFileSystem(syncDelayMs: number) {
  let clock = 0
  const placed = new Map<string, number>()
  const folderSyncs: FolderSyncEvent[] = []
  const fs: FileSystem = {
    ...nodeFileSystem,
    async rename(from, to) {
      await nodeFileSystem.rename(from, to)
      placed.set(to, clock++)
    },
    async link(from, to) {
      await nodeFileSystem.link(from, to)
      placed.set(to, clock++)
    },
    async open(path, flags, mode) {
      const handle = await nodeFileSystem.open(path, flags, mode)
      if (flags !== 'r' || !(await nodeFileSystem.stat(path)).isDirectory()) return handle
      const folder: FileHandleLike = {
        writev: (...a) => handle.writev(...a),
        write: (...a) => handle.write(...a),
        read: (...a) => handle.read(...a),
        datasync: () => handle.datasync(),
        close: () => handle.close(),
        async sync() {
          const event = { dir: path, start: clock++, end: Number.POSITIVE_INFINITY }
          folderSyncs.push(event)
          await sleep(syncDelayMs)
          await handle.sync()
          event.end = clock++
        },
      }
      return folder
    },
  }
  return { fs, placed, folderSyncs, tick: () => clock++ }
}

describe('group commit of folder fsyncs', () => {
  it('shares folder fsyncs among 64 concurrent puts into one folder, each resolving after an fsync that started after its rename or link', async () => {
    const root = await tempRoot()
    const log = loggingFileSystem(5)
    const storage = await createFileSystemStorage({ root, fs: log.fs, durability: 'fsync' })
    await storage.put('steps/warm-up', utf8('x')) // creates the folder outside the measured part
    log.folderSyncs.length = 0

    const n = 64
    const resolved = new Map<string, number>()
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const key = `steps/s${i}`
        // Half create-if-absent (link), half plain puts (rename under the key's lock).
        await storage.put(key, utf8(`value ${i}`), i % 2 === 0 ? { ifAbsent: true } : undefined)
        resolved.set(key, log.tick())
      }),
    )

    const folder = join(root, 'steps')
    const syncs = log.folderSyncs.filter((event) => event.dir === folder)
    expect(syncs.length).toBeGreaterThan(0)
    expect(syncs.length).toBeLessThanOrEqual(n / 4)
    for (let i = 0; i < n; i++) {
      const placedAt = log.placed.get(join(folder, `s${i}~`)) as number
      const resolvedAt = resolved.get(`steps/s${i}`) as number
      expect(placedAt).toBeTypeOf('number')
      const covering = syncs.filter((sync) => sync.start > placedAt && sync.end < resolvedAt)
      expect(
        covering.length,
        `put ${i} resolved without an fsync that started after its rename`,
      ).toBeGreaterThanOrEqual(1)
    }
    // Never two fsyncs of one folder at once.
    for (let i = 1; i < syncs.length; i++)
      expect(syncs[i]?.start).toBeGreaterThan(syncs[i - 1]?.end as number)
    expect((await readdir(folder)).filter((name) => name.startsWith('.'))).toEqual([])
  })

  it('syncs different folders independently and skips folder fsyncs with durability none', async () => {
    const log = loggingFileSystem(1)
    const storage = await createFileSystemStorage({ root: await tempRoot(), fs: log.fs, durability: 'fsync' })
    await Promise.all(['a/1', 'a/2', 'b/1', 'b/2'].map((key) => storage.put(key, utf8(key))))
    expect(new Set(log.folderSyncs.map((event) => event.dir)).size).toBeGreaterThanOrEqual(2)

    const none = loggingFileSystem(1)
    const fast = await createFileSystemStorage({ root: await tempRoot(), fs: none.fs, durability: 'none' })
    none.folderSyncs.length = 0 // opening a new folder records its mode durably, whatever this process's durability
    await Promise.all(['a/1', 'a/2', 'b/1'].map((key) => fast.put(key, utf8(key))))
    expect(none.folderSyncs).toEqual([])
  })

  it('rejects every put of a batch whose folder fsync fails with StorageUnavailableError, and recovers', async () => {
    let failNext = false
    const fs: FileSystem = {
      ...nodeFileSystem,
      async open(path, flags, mode) {
        const handle = await nodeFileSystem.open(path, flags, mode)
        if (flags !== 'r') return handle
        const sync = async () => {
          if (failNext) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' })
          return handle.sync()
        }
        return Object.assign(Object.create(null), {
          writev: handle.writev.bind(handle),
          write: handle.write.bind(handle),
          read: handle.read.bind(handle),
          datasync: handle.datasync.bind(handle),
          close: handle.close.bind(handle),
          sync,
        }) as FileHandleLike
      },
    }
    const storage = await createFileSystemStorage({ root: await tempRoot(), fs, durability: 'fsync' })
    await storage.put('f/warm-up', utf8('x'))
    failNext = true
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => storage.put(`f/k${i}`, utf8('v'), { ifAbsent: true })),
    )
    for (const result of results) {
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StorageUnavailableError)
    }
    failNext = false
    await storage.put('f/after', utf8('ok'))
    expect(new TextDecoder().decode((await storage.get('f/after'))?.data)).toBe('ok')
  })

  it('syncs the parents of the folders a put makes side by side, before the put resolves', async () => {
    const root = await tempRoot()
    const log = loggingFileSystem(20)
    const storage = await createFileSystemStorage({ root, fs: log.fs, durability: 'fsync' })
    log.folderSyncs.length = 0
    await storage.put('a/b/c/k', utf8('v'))
    const resolvedAt = log.tick()
    const parents = [root, join(root, 'a'), join(root, 'a', 'b')].map((dir) =>
      log.folderSyncs.find((event) => event.dir === dir),
    )
    for (const sync of parents) {
      expect(sync, 'a parent of a folder the put made was not synced').toBeDefined()
      expect(sync?.end).toBeLessThan(resolvedAt)
    }
    // Side by side: each of them started before any of them ended (one after another before).
    const firstEnd = Math.min(...parents.map((sync) => sync?.end as number))
    for (const sync of parents) expect(sync?.start).toBeLessThan(firstEnd)
    expect(log.folderSyncs.find((event) => event.dir === join(root, 'a', 'b', 'c'))?.end).toBeLessThan(
      resolvedAt,
    )
  })

  it('makes folders only once their parents are synced (makeFolders, as opening a new root does)', async () => {
    const base = await tempRoot()
    const log = loggingFileSystem(50)
    const files = new ValueFiles({
      fs: log.fs,
      root: base,
      locks: new KeyLocks(log.fs, { staleMs: 60_000, timeoutMs: 5_000, ownerDir: base }),
      syncEach: true,
    })
    await files.makeFolders(join(base, 'x', 'y'))
    const madeAt = log.tick()
    for (const dir of [base, join(base, 'x')]) {
      const sync = log.folderSyncs.find((event) => event.dir === dir)
      expect(sync, `${dir} was not synced`).toBeDefined()
      expect(sync?.end).toBeLessThan(madeAt)
    }
  })

  it('syncs every folder above a large journaled value up to the root, once per folder', async () => {
    const root = await tempRoot()
    const log = loggingFileSystem(1)
    const storage = await createFileSystemStorage({ root, fs: log.fs, durability: 'journal' })
    // The journal's own puts make folders without an fsync (replay makes them again): here
    // workflows/w. A large value is not replayed, so its folders must be durable when it is.
    await storage.put('workflows/w/steps/s', utf8('small'))
    log.folderSyncs.length = 0
    const big = new Uint8Array(300 * 1024).fill(7)
    await storage.put('workflows/w/blobs/one', big)
    const resolvedAt = log.tick()
    const chain = [
      root,
      join(root, 'workflows'),
      join(root, 'workflows', 'w'),
      join(root, 'workflows', 'w', 'blobs'),
    ]
    for (const dir of chain) {
      const sync = log.folderSyncs.find((event) => event.dir === dir)
      expect(sync, `${dir} was not synced before the large put resolved`).toBeDefined()
      expect(sync?.end).toBeLessThan(resolvedAt)
    }
    // The next large value in that folder syncs only the folder itself.
    log.folderSyncs.length = 0
    await storage.put('workflows/w/blobs/two', big)
    expect(log.folderSyncs.map((event) => event.dir)).toEqual([join(root, 'workflows', 'w', 'blobs')])
    expect((await storage.get('workflows/w/blobs/two'))?.data).toEqual(big)
    await storage.close()
  })
})

describe('FolderSyncs', () => {
  /** A sync function whose runs the test finishes by hand. */
  function manualSync() {
    const runs: { dir: string; finish: (error?: unknown) => void }[] = []
    const sync = (dir: string) =>
      new Promise<void>((resolve, reject) => {
        runs.push({ dir, finish: (error) => (error === undefined ? resolve() : reject(error)) })
      })
    return { runs, syncs: new FolderSyncs(sync) }
  }
  const flush = () => new Promise<void>((resolve) => setImmediate(resolve))

  it('does not resolve a caller with the fsync that was already running when it called', async () => {
    const { runs, syncs } = manualSync()
    let firstDone = false
    let secondDone = false
    void syncs.sync('/d').then(() => {
      firstDone = true
    })
    expect(runs.length).toBe(1)
    void syncs.sync('/d').then(() => {
      secondDone = true
    })
    void syncs.sync('/d')
    expect(runs.length).toBe(1) // the second and third wait for the next fsync
    runs[0]?.finish()
    await flush()
    expect(firstDone).toBe(true)
    expect(secondDone).toBe(false)
    expect(runs.length).toBe(2) // one fsync for both waiters
    runs[1]?.finish()
    await flush()
    expect(secondDone).toBe(true)
    expect(runs.length).toBe(2)
  })

  it('passes an fsync error to its batch only, and runs folders in parallel', async () => {
    const { runs, syncs } = manualSync()
    const a = syncs.sync('/a')
    const b = syncs.sync('/b')
    expect(runs.map((run) => run.dir)).toEqual(['/a', '/b'])
    const a2 = syncs.sync('/a')
    runs[0]?.finish(new Error('EIO'))
    await expect(a).rejects.toThrow('EIO')
    await flush()
    runs[2]?.finish()
    await expect(a2).resolves.toBeUndefined()
    runs[1]?.finish()
    await expect(b).resolves.toBeUndefined()
  })
})
