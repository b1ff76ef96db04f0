// The journal (`durability: 'journal'`): what a put leaves in it, checkpoints, and replay after a
// power loss. A power loss cannot be produced on demand, so it is simulated on a real folder after
// killing a real writer process with SIGKILL: every value file the writer touched since its last
// checkpoint loses its unsynced state (removed, or rolled back to what the last checkpoint saw),
// which is the worst a filesystem may do to files that were never fsynced. Replay on the next
// boot (a different boot id) must then bring back every acknowledged write.

import { type ChildProcess, spawn } from 'node:child_process'
import { cp, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { StorageConfigError, StorageUnavailableError } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type FileSystem, nodeFileSystem } from '../file-system.js'
import { createFileSystemStorage, type FileSystemStorage } from '../index.js'
import { keyToParts } from '../key-path.js'
import { PROCESS_TOKEN } from '../owner.js'
import { ensureBuilt } from '../test-support/build-once.js'
import { memoryFileSystem } from '../test-support/memory-file-system.js'
import { decodeSegment, EntryKind, JOURNAL_FOLDER } from './format.js'

const here = dirname(fileURLToPath(import.meta.url))
const journalWriter = join(here, '..', 'test-support', 'journal-writer.mjs')
const text = (data: Uint8Array) => new TextDecoder().decode(data)
const encode = (value: string) => new TextEncoder().encode(value)

const roots: string[] = []
async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'wf-storage-fs-journal-'))
  roots.push(root)
  return root
}

beforeAll(() => ensureBuilt(), 120_000)
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })))
})

const fileOf = (root: string, key: string) => join(root, ...keyToParts(key))

async function segments(root: string): Promise<string[]> {
  try {
    return (await readdir(join(root, JOURNAL_FOLDER))).filter((name) => name.endsWith('.wal'))
  } catch {
    return []
  }
}

interface Run {
  /** Per key: the last acknowledged state, and the state being written when the child died. */
  acked: Map<string, string>
  tried: Map<string, string>
}

/** Runs the journal writer until it has acknowledged `acks` writes, then kills it with SIGKILL. */
async function runWriter(root: string, boot: string, checkpointMs: number, acks: number): Promise<Run> {
  const child: ChildProcess = spawn(process.execPath, [journalWriter, root, boot, String(checkpointMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const run: Run = { acked: new Map(), tried: new Map() }
  let count = 0
  await new Promise<void>((resolve, reject) => {
    let buffered = ''
    child.stdout?.setEncoding('utf8')
    child.stdout?.on('data', (chunk: string) => {
      buffered += chunk
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) {
        const [word, key, ...rest] = line.split(' ')
        if (word === 'try') run.tried.set(key as string, rest.join(' '))
        if (word === 'ack') {
          run.acked.set(key as string, rest.join(' '))
          if (++count === acks) child.kill('SIGKILL')
        }
      }
    })
    child.on('error', reject)
    child.on('exit', () => resolve())
  })
  return run
}

/** What a key holds on disk, as the writer prints it: `-` for absent. */
async function stateOf(storage: FileSystemStorage, key: string): Promise<string> {
  const found = await storage.get(key)
  return found === undefined ? '-' : text(found.data)
}

describe('journal', () => {
  it('resolves a put once its entry is in the journal, with the key, the previous version and the file', async () => {
    const root = await freshRoot()
    const storage = await createFileSystemStorage({ root, durability: 'journal', checkpointMs: 60_000 })
    const first = await storage.put('a/b', encode('one'), { ifAbsent: true })
    const second = await storage.put('a/b', encode('two'), { ifVersion: first.version })
    await storage.put('c', encode('three'))
    await storage.delete('a/b')
    const [segment] = await segments(root)
    expect(segment).toBeDefined()
    const path = join(root, JOURNAL_FOLDER, segment as string)
    const entries = decodeSegment(path, await readFile(path))
    expect(entries.map((e) => [e.kind, e.key, e.prev])).toEqual([
      [EntryKind.Put, 'a/b', null],
      [EntryKind.Put, 'a/b', first.version],
      [EntryKind.Put, 'c', null],
      [EntryKind.Delete, 'a/b', second.version],
    ])
    expect(text((entries[1] as { file: Uint8Array }).file.subarray(32))).toBe('two')
    expect(entries.every((e, i) => i === 0 || e.at > (entries[i - 1] as { at: bigint }).at)).toBe(true)
    // close() checkpoints: the segment goes, the values stay.
    await storage.close()
    expect(await segments(root)).toEqual([])
    const reopened = await createFileSystemStorage({ root, durability: 'journal' })
    expect(await stateOf(reopened, 'c')).toBe('three')
    expect(await stateOf(reopened, 'a/b')).toBe('-')
    await reopened.close()
  })

  it('ignores a torn last entry (the one being appended when the machine stopped)', async () => {
    const root = await freshRoot()
    const storage = await createFileSystemStorage({ root, durability: 'journal', checkpointMs: 60_000 })
    await storage.put('k1', encode('v1'))
    await storage.put('k2', encode('v2'))
    const [segment] = await segments(root)
    const path = join(root, JOURNAL_FOLDER, segment as string)
    const whole = (await readFile(path)).byteLength
    await truncate(path, whole - 3)
    const entries = decodeSegment(path, await readFile(path))
    expect(entries.map((e) => e.key)).toEqual(['k1'])
  })

  it('checkpoints in the background once a segment is older than checkpointMs', async () => {
    const root = await freshRoot()
    const storage = await createFileSystemStorage({ root, durability: 'journal', checkpointMs: 100 })
    for (let i = 0; i < 20; i++) await storage.put(`k/${i}`, encode(String(i)))
    expect((await segments(root)).length).toBeGreaterThan(0)
    await vi.waitFor(async () => expect(await segments(root)).toEqual([]), { timeout: 10_000, interval: 50 })
    expect(await stateOf(storage, 'k/19')).toBe('19')
    await storage.close()
  })

  it('after a power loss, replays every acknowledged write on the next boot (no checkpoint before)', async () => {
    const root = await freshRoot()
    const run = await runWriter(root, 'boot1', 600_000, 400)
    // Nothing but the journal was ever synced: the filesystem may lose every value file.
    for (const name of await readdir(root))
      if (name !== JOURNAL_FOLDER) await rm(join(root, name), { recursive: true })
    const storage = await createFileSystemStorage({ root, durability: 'journal', bootId: 'boot2' })
    for (const [key, acked] of run.acked) {
      const state = await stateOf(storage, key)
      // The write in flight at the kill may have made it into the journal too.
      expect([acked, run.tried.get(key)]).toContain(state)
    }
    expect(run.acked.size).toBeGreaterThan(10)
    expect(await segments(root)).toEqual([])
    await storage.close()
  }, 60_000)

  it('after a power loss, replays what came after the last checkpoint, over files rolled back to it', async () => {
    const root = await freshRoot()
    const first = await runWriter(root, 'boot1', 600_000, 200)
    // A clean restart on the same boot: the dead writer's segment is checkpointed and deleted.
    const between = await createFileSystemStorage({ root, durability: 'journal', bootId: 'boot1' })
    expect(await segments(root)).toEqual([])
    await between.close()
    const synced = join(await freshRoot(), 'synced')
    await cp(root, synced, { recursive: true })
    const second = await runWriter(root, 'boot1', 600_000, 300)
    // Power loss: every key the second run touched is back at its synced state, removed, or torn.
    let damaged = 0
    for (const key of second.tried.keys()) {
      const file = fileOf(root, key)
      const old = fileOf(synced, key)
      const choice = damaged++ % 3
      await rm(file, { force: true })
      if (choice === 0) await cp(old, file).catch(() => undefined)
      if (choice === 1)
        await writeFile(file, (await readFile(old).catch(() => Buffer.alloc(40))).subarray(0, 20)).catch(
          () => undefined,
        )
    }
    const storage = await createFileSystemStorage({ root, durability: 'journal', bootId: 'boot2' })
    for (const [key, acked] of second.acked) {
      expect([acked, second.tried.get(key)]).toContain(await stateOf(storage, key))
    }
    // Keys the second run never touched keep what the first run left.
    for (const [key, acked] of first.acked) {
      if (!second.tried.has(key)) expect([acked, first.tried.get(key)]).toContain(await stateOf(storage, key))
    }
    await storage.close()
  }, 60_000)

  it('lets one of several processes opening after the reboot replay, while the others wait for it', async () => {
    const root = await freshRoot()
    const run = await runWriter(root, 'boot1', 600_000, 150)
    for (const name of await readdir(root))
      if (name !== JOURNAL_FOLDER) await rm(join(root, name), { recursive: true })
    const opened = await Promise.all(
      [1, 2, 3].map(() => createFileSystemStorage({ root, durability: 'journal', bootId: 'boot2' })),
    )
    for (const storage of opened) {
      for (const [key, acked] of run.acked) {
        expect([acked, run.tried.get(key)]).toContain(await stateOf(storage, key))
      }
    }
    await Promise.all(opened.map((storage) => storage.close()))
  }, 60_000)

  it('leaves a key alone that a process without the journal wrote after the last journaled write', async () => {
    const root = await freshRoot()
    const journaled = await createFileSystemStorage({ root, durability: 'journal', bootId: 'boot1' })
    const { version } = await journaled.put('shared', encode('journaled'))
    await journaled.put('mine', encode('journaled'))
    // A journal folder refuses 'fsync' writers (its mode is recorded); 'none' writes without the journal too.
    const plain = await createFileSystemStorage({ root, durability: 'none', bootId: 'boot1' })
    await plain.put('shared', encode('plain'), { ifVersion: version })
    // The journaled process dies without a checkpoint, then the machine reboots and 'mine' is lost.
    await rm(fileOf(root, 'mine'))
    const after = await createFileSystemStorage({ root, durability: 'none', bootId: 'boot2' })
    expect(await stateOf(after, 'shared')).toBe('plain')
    expect(await stateOf(after, 'mine')).toBe('journaled')
  })

  it('fails the puts of an append whose sync failed, and journals later puts in a new segment that replay finds', async () => {
    const fs = memoryFileSystem()
    let failNext = false
    // Segments are written with O_DSYNC, so a failed sync surfaces from the write itself (where
    // O_DSYNC is missing, from the fdatasync after it): the next of either fails.
    const failing =
      <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        if (failNext) {
          failNext = false
          throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' })
        }
        return call(...args)
      }
    const flaky: FileSystem = {
      ...fs,
      async open(path, flags, mode) {
        const handle = await fs.open(path, flags, mode)
        if (!path.endsWith('.wal')) return handle
        return {
          ...handle,
          writev: failing(handle.writev.bind(handle)),
          write: failing(handle.write.bind(handle)),
          read: handle.read.bind(handle),
          sync: handle.sync.bind(handle),
          close: handle.close.bind(handle),
          datasync: failing(handle.datasync.bind(handle)),
        }
      },
    }
    const root = '/data/wf'
    const storage = await createFileSystemStorage({ root, fs: flaky, durability: 'journal', bootId: 'b1' })
    await storage.put('before', encode('1'))
    failNext = true
    await expect(storage.put('failed', encode('2'))).rejects.toThrow(StorageUnavailableError)
    await storage.put('after', encode('3'))
    const names = (await fs.readdir(join(root, JOURNAL_FOLDER))).filter((name) => name.endsWith('.wal'))
    expect(names).toHaveLength(2)
    // Power loss before any checkpoint: only the journal survives.
    for (const key of ['before', 'failed', 'after']) await fs.unlink(fileOf(root, key)).catch(() => undefined)
    const rebooted = await createFileSystemStorage({ root, fs, durability: 'journal', bootId: 'b2' })
    expect(await stateOf(rebooted, 'before')).toBe('1')
    expect(await stateOf(rebooted, 'after')).toBe('3')
  })

  it('opens while another process deletes the segment of a dead process it is covering (both checkpoint it)', async () => {
    const root = await freshRoot()
    const first = await createFileSystemStorage({ root, durability: 'journal', bootId: 'b1' })
    await first.put('k', encode('v'))
    const [name] = await segments(root)
    const bytes = await readFile(join(root, JOURNAL_FOLDER, name as string))
    await first.close()
    // The same segment as left by a process of this boot killed before its checkpoint.
    const dead = (name as string).replace(PROCESS_TOKEN, 'xdeadx')
    await writeFile(join(root, JOURNAL_FOLDER, dead), bytes)
    let raced = 0
    const fs: FileSystem = {
      ...nodeFileSystem,
      // Another process opening the folder checkpoints first and deletes the dead segment
      // between this one's listing and its read.
      readFile: async (path) => {
        if (path.endsWith(dead) && raced++ === 0) await rm(path)
        return nodeFileSystem.readFile(path)
      },
    }
    const second = await createFileSystemStorage({ root, durability: 'journal', bootId: 'b1', fs })
    expect(raced).toBeGreaterThan(0)
    expect(text((await second.get('k'))?.data ?? new Uint8Array())).toBe('v')
    expect(await segments(root)).not.toContain(dead)
    await second.close()
  })

  it('rejects bad journal options with StorageConfigError', async () => {
    const root = await freshRoot()
    await expect(
      createFileSystemStorage({ root, durability: 'journal', bootId: 'Not Valid' }),
    ).rejects.toThrow(StorageConfigError)
    await expect(createFileSystemStorage({ root, durability: 'journal', checkpointMs: -1 })).rejects.toThrow(
      /checkpointMs/,
    )
    const withoutSync: FileSystem = { ...memoryFileSystem(), sync: undefined }
    await expect(
      createFileSystemStorage({ root: '/data/wf', fs: withoutSync, durability: 'journal', bootId: 'b1' }),
    ).rejects.toThrow(/fs\.sync/)
  })
})
