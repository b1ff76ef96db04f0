// The journaled writer's file calls (journaled-writer.ts): which synchronous calls a put, get or
// delete makes on its fast path, recorded on memfs, and how it takes its locks. Crash and replay
// tests of the journal are in journal.test.ts.

import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import type { FileSystem, SyncFileSystem } from '../file-system.js'
import { createFileSystemStorage, type FileSystemStorage } from '../index.js'
import { keyToParts } from '../key-path.js'
import { OWNER_LINK_PREFIX } from '../lock.js'
import { HOST_TAG } from '../owner.js'
import { memoryFileSystem } from '../test-support/memory-file-system.js'

const text = (data: Uint8Array) => new TextDecoder().decode(data)
const encode = (value: string) => new TextEncoder().encode(value)
const fileOf = (root: string, key: string) => join(root, ...keyToParts(key))

/** What a key holds on disk, as the writer prints it: `-` for absent. */
async function stateOf(storage: FileSystemStorage, key: string): Promise<string> {
  const found = await storage.get(key)
  return found === undefined ? '-' : text(found.data)
}

interface SyncCall {
  name: string
  args: unknown[]
  /** The errno code, when the call threw. */
  failed?: string
}

/** memfs whose synchronous calls (the journal's fast path) are recorded, failed ones with their code. */
function recordingFileSystem(): { fs: FileSystem; base: FileSystem; calls: SyncCall[] } {
  const base = memoryFileSystem()
  const sync = base.sync as SyncFileSystem
  const calls: SyncCall[] = []
  const recorded: Record<string, unknown> = {}
  for (const name of Object.keys(sync) as (keyof SyncFileSystem)[]) {
    const call = sync[name]
    if (typeof call !== 'function') continue
    recorded[name] = (...args: unknown[]) => {
      const entry: SyncCall = { name, args }
      calls.push(entry)
      try {
        return (call as (...a: unknown[]) => unknown).apply(sync, args)
      } catch (error) {
        entry.failed = (error as { code?: string }).code ?? 'unknown'
        throw error
      }
    }
  }
  return { fs: { ...base, sync: recorded as unknown as SyncFileSystem }, base, calls }
}

describe('journal: the file calls of a put', () => {
  const root = '/data/wf'

  it('creates a folder new to it before writing there, and writes straight into one it wrote to: no call fails', async () => {
    const { fs, calls } = recordingFileSystem()
    const storage = await createFileSystemStorage({ root, fs, durability: 'journal', bootId: 'b1' })
    await storage.put('w/record', encode('1'), { ifAbsent: true })
    await storage.put('w/steps/a', encode('2'), { ifAbsent: true })
    await storage.put('w/steps/b', encode('3'), { ifAbsent: true })
    await storage.put('w/steps/b', encode('4'))
    expect(calls.filter((call) => call.failed !== undefined)).toEqual([])
    const made = calls.filter((call) => call.name === 'mkdirSync').map((call) => call.args[0])
    expect(made).toEqual([dirname(fileOf(root, 'w/record')), dirname(fileOf(root, 'w/steps/a'))])
    expect(await stateOf(storage, 'w/steps/b')).toBe('4')
  })

  it('lands a put in a folder it knows that another process removed meanwhile (a workflow deleted), by creating it again', async () => {
    const { fs, base } = recordingFileSystem()
    const storage = await createFileSystemStorage({ root, fs, durability: 'journal', bootId: 'b1' })
    await storage.put('w/steps/a', encode('1'), { ifAbsent: true })
    await base.unlink(fileOf(root, 'w/steps/a'))
    await base.rmdir(dirname(fileOf(root, 'w/steps/a')))
    await base.rmdir(dirname(fileOf(root, 'w/record')))
    await storage.put('w/steps/b', encode('2'), { ifAbsent: true })
    expect(await stateOf(storage, 'w/steps/b')).toBe('2')
    // A swap finds no folder, hence no value: it fails, and creates nothing.
    await base.unlink(fileOf(root, 'w/steps/b'))
    await base.rmdir(dirname(fileOf(root, 'w/steps/b')))
    await expect(storage.put('w/steps/b', encode('3'), { ifVersion: 'x' })).rejects.toThrow(/condition/i)
    expect(await stateOf(storage, 'w/steps/b')).toBe('-')
  })

  it('reads a missing key without a failed call, and an existing one whole', async () => {
    const { fs, calls } = recordingFileSystem()
    const storage = await createFileSystemStorage({ root, fs, durability: 'journal', bootId: 'b1' })
    const long = 'x'.repeat(100_000)
    await storage.put('w/record', encode(long))
    calls.length = 0
    expect(await storage.get('w/none')).toBeUndefined()
    expect(await storage.get('other/none')).toBeUndefined()
    expect(calls.filter((call) => call.failed !== undefined)).toEqual([])
    expect(await stateOf(storage, 'w/record')).toBe(long)
    // A file replaced by a bigger one between the stat and the read is read to its end.
    const sync = fs.sync as SyncFileSystem
    const stale: FileSystem = { ...fs, sync: { ...sync, statSync: () => ({ size: 10 }) } }
    const staleStat = await createFileSystemStorage({ root, fs: stale, durability: 'journal', bootId: 'b1' })
    expect(await stateOf(staleStat, 'w/record')).toBe(long)
  })

  it('writes an empty value with one write call (no empty buffer, which would cost a call of its own)', async () => {
    const { fs, calls } = recordingFileSystem()
    const storage = await createFileSystemStorage({ root, fs, durability: 'journal', bootId: 'b1' })
    await storage.put('index/RUNNING/w', new Uint8Array(), { ifAbsent: true })
    const writes = calls.filter((call) => call.name === 'writevSync')
    expect(writes).toHaveLength(1)
    const buffers = (writes[0] as SyncCall).args[1] as Uint8Array[]
    expect(buffers.every((buffer) => buffer.byteLength > 0)).toBe(true)
    expect((await storage.get('index/RUNNING/w'))?.data).toEqual(new Uint8Array())
  })

  it('renames over an existing value through the thread pool, holding the lock meanwhile; a new key with a synchronous call', async () => {
    const base = memoryFileSystem()
    const renamed: string[] = []
    let storage!: FileSystemStorage
    let racing: Promise<unknown> | undefined
    const fs: FileSystem = {
      ...base,
      rename: async (from, to) => {
        renamed.push(to)
        // A plain put arriving while the swap holds the key waits for it, and is applied after it.
        if (racing === undefined) {
          racing = storage.put('k', encode('later'))
          await sleep(30)
        }
        return base.rename(from, to)
      },
    }
    storage = await createFileSystemStorage({ root, fs, durability: 'journal', bootId: 'b1' })
    const { version } = await storage.put('k', encode('1'))
    expect(renamed).toEqual([])
    await storage.put('k', encode('2'), { ifVersion: version })
    await racing
    expect(renamed).toEqual([fileOf(root, 'k'), fileOf(root, 'k')])
    expect(await stateOf(storage, 'k')).toBe('later')
  })

  it('takes its locks as hard links to one owner link, renewed once a quarter of lockStaleMs old and removed by close()', async () => {
    const { fs, base, calls } = recordingFileSystem()
    const storage = await createFileSystemStorage({
      root,
      fs,
      durability: 'journal',
      bootId: 'b1',
      lockStaleMs: 200,
    })
    const owners = async () => (await base.readdir(root)).filter((name) => name.startsWith(OWNER_LINK_PREFIX))
    for (let i = 0; i < 10; i++) await storage.put(`k${i}`, encode('v'))
    expect(calls.filter((call) => call.name === 'symlinkSync')).toHaveLength(1)
    const [first] = await owners()
    expect(await owners()).toHaveLength(1)
    // To every reader the owner link is what a lock is: a symlink to the owner's stamp.
    expect(await base.readlink(join(root, first as string))).toBe(
      (first as string).slice(OWNER_LINK_PREFIX.length),
    )
    await sleep(80)
    await storage.put('k0', encode('w'))
    const renewed = await owners()
    expect(renewed).toHaveLength(1)
    expect(renewed[0]).not.toBe(first)
    await storage.close()
    expect(await owners()).toEqual([])
  })

  it('takes its locks as symlinks of their own where the owner link cannot be linked, or again if it was removed', async () => {
    const { fs, base, calls } = recordingFileSystem()
    const sync = fs.sync as SyncFileSystem
    let refuse = 'ENOENT'
    const refusing: FileSystem = {
      ...fs,
      sync: {
        ...sync,
        linkSync: (from, to) => {
          if (from.includes(OWNER_LINK_PREFIX) && refuse !== '') {
            calls.push({ name: 'linkSync', args: [from, to], failed: refuse })
            throw Object.assign(new Error(`${refuse}: simulated`), { code: refuse })
          }
          return sync.linkSync(from, to)
        },
      },
    }
    const storage = await createFileSystemStorage({ root, fs: refusing, durability: 'journal', bootId: 'b1' })
    const owners = async () => (await base.readdir(root)).filter((name) => name.startsWith(OWNER_LINK_PREFIX))
    await storage.put('a', encode('1')) // the owner link is gone (ENOENT): a symlink this time...
    refuse = ''
    await storage.put('b', encode('2')) // ...and a new owner link the next
    expect(calls.filter((call) => call.name === 'symlinkSync')).toHaveLength(3)
    expect(await owners()).toHaveLength(2) // the first one was not really gone here
    refuse = 'EXDEV'
    await storage.put('c', encode('3'))
    await storage.put('d', encode('4'))
    expect(calls.filter((call) => call.failed === 'EXDEV')).toHaveLength(1)
    expect(calls.filter((call) => call.name === 'symlinkSync')).toHaveLength(5)
    expect(await owners()).toHaveLength(1)
    expect(await Promise.all(['a', 'b', 'c', 'd'].map((key) => stateOf(storage, key)))).toEqual([
      '1',
      '2',
      '3',
      '4',
    ])
  })

  it('takes over at once a lock linked to the owner link of a dead process; cleanup() removes that owner link', async () => {
    const { fs, base } = recordingFileSystem()
    const storage = await createFileSystemStorage({
      root,
      fs,
      durability: 'journal',
      bootId: 'b1',
      lockTimeoutMs: 2_000,
    })
    await storage.put('k', encode('v1'))
    const deadPid = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout
    const stamp = `${deadPid.toString()}.${HOST_TAG}.token.0`
    const ownerLink = join(root, `${OWNER_LINK_PREFIX}${stamp}`)
    await base.symlink(stamp, ownerLink)
    await base.link(ownerLink, join(root, '.lk.k~'))
    const started = Date.now()
    await storage.put('k', encode('v2'))
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(await stateOf(storage, 'k')).toBe('v2')
    expect(await storage.cleanup()).toBe(1)
    expect((await base.readdir(root)).filter((name) => name.startsWith(OWNER_LINK_PREFIX))).toHaveLength(1)
  })
})
