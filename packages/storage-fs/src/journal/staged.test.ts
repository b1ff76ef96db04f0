// `putStaged` (pipelined checkpoints): with the journal, a put is accepted — visible, its condition
// decided — before its entry is synced, and entries reach the disk in the order puts were accepted.
// In the other modes a staged put is simply a put.

import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConditionFailedError, Runtime, step } from '@wf/core'
import { describe, expect, it } from 'vitest'
import type { FileHandleLike, FileSystem } from '../file-system.js'
import { createFileSystemStorage } from '../index.js'
import { memoryFileSystem } from '../test-support/memory-file-system.js'

const encode = (value: string) => new TextEncoder().encode(value)
const text = (data: Uint8Array | undefined) => (data === undefined ? '-' : new TextDecoder().decode(data))

/** memfs whose journal appends wait until `release()`; `appended` holds what reached the segments. */
function gatedJournal() {
  const base = memoryFileSystem()
  let open = false
  let waiting: (() => void)[] = []
  const appended: string[] = []
  const gate = () => (open ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve)))
  const fs: FileSystem = {
    ...base,
    open: async (path, flags, mode) => {
      const handle = await base.open(path, flags, mode)
      if (!path.includes('/.journal/') && !path.includes('/journal')) return handle
      const gated: FileHandleLike = {
        ...handle,
        writev: handle.writev.bind(handle),
        read: handle.read.bind(handle),
        datasync: handle.datasync.bind(handle),
        sync: handle.sync.bind(handle),
        close: handle.close.bind(handle),
        write: async (buffer, offset, length, position) => {
          // The segment's magic number (at 0) goes through: entries wait.
          if (position > 0) await gate()
          const written = await handle.write(buffer, offset, length, position)
          appended.push(new TextDecoder().decode(buffer.subarray(offset, offset + length)))
          return written
        },
      }
      return gated
    },
  }
  return {
    fs,
    appended,
    release() {
      open = true
      for (const resolve of waiting) resolve()
      waiting = []
    },
    /** Holds the appends made from now on (until `release`). */
    hold() {
      open = false
    },
  }
}

describe("putStaged with durability: 'journal'", () => {
  it('accepts a put, visible and decided, before its journal entry is written, and makes it durable after', async () => {
    const journal = gatedJournal()
    const storage = await createFileSystemStorage({
      root: '/s',
      fs: journal.fs,
      durability: 'journal',
      bootId: 'b1',
    })
    let durable = false
    const first = storage.putStaged('a/one', encode('1'), { ifAbsent: true })
    first.durable.then(() => {
      durable = true
    })
    const { version } = await first.accepted
    expect(typeof version).toBe('string')
    expect(text((await storage.get('a/one'))?.data)).toBe('1')
    // The condition is decided at acceptance: a second create of the key is refused at once.
    await expect(storage.putStaged('a/one', encode('2'), { ifAbsent: true }).accepted).rejects.toBeInstanceOf(
      ConditionFailedError,
    )
    const second = storage.putStaged('a/two', encode('2'), { ifAbsent: true })
    await second.accepted
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(durable).toBe(false)
    journal.release()
    await Promise.all([first.durable, second.durable])
    // Both entries reached the segment, the first one first.
    const joined = journal.appended.join('')
    expect(joined.indexOf('a/one')).toBeGreaterThanOrEqual(0)
    expect(joined.indexOf('a/one')).toBeLessThan(joined.indexOf('a/two'))
    await storage.close()
  })

  it('makes a large value durable once its own file and folder are synced, without waiting for its journal entry; a put made after it reaches the segment after it', async () => {
    const journal = gatedJournal()
    // Which value files were synced (fdatasync of their temp file), in order.
    const synced: string[] = []
    const fs: FileSystem = {
      ...journal.fs,
      open: async (path, flags, mode) => {
        const handle = await journal.fs.open(path, flags, mode)
        if (path.includes('/.journal/') || path.includes('/journal')) return handle
        return {
          ...handle,
          writev: handle.writev.bind(handle),
          write: handle.write.bind(handle),
          read: handle.read.bind(handle),
          sync: handle.sync.bind(handle),
          close: handle.close.bind(handle),
          datasync: async () => {
            await handle.datasync()
            synced.push(path.split('/').slice(2, -1).join('/'))
          },
        }
      },
    }
    const storage = await createFileSystemStorage({ root: '/s', fs, durability: 'journal', bootId: 'b1' })
    synced.length = 0 // the folder's own settings file
    // Above the journal's 256 KiB: written and synced in a file of its own.
    const big = new Uint8Array(300 * 1024).fill(7)
    const large = storage.putStaged('blobs/big', big)
    await large.accepted
    await large.durable
    // Its file was synced; its entry is not written yet (the journal's appends are held).
    expect(synced).toEqual(['blobs'])
    expect(journal.appended.join('')).not.toContain('blobs/big')
    expect((await storage.get('blobs/big'))?.data).toEqual(big)
    // The record naming it, written next, waits for its own entry, written after the blob's.
    let durable = false
    const record = storage.putStaged('steps/one', encode('names big'), { ifAbsent: true })
    record.durable.then(() => {
      durable = true
    })
    await record.accepted
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(durable).toBe(false)
    journal.release()
    await record.durable
    const joined = journal.appended.join('')
    expect(joined.indexOf('blobs/big')).toBeGreaterThanOrEqual(0)
    expect(joined.indexOf('blobs/big')).toBeLessThan(joined.indexOf('steps/one'))
    await storage.close()
  })

  it('keeps a large value acknowledged before its journal entry reached the disk through a power loss: replay leaves it alone', async () => {
    const journal = gatedJournal()
    journal.release()
    const before = await createFileSystemStorage({
      root: '/s',
      fs: journal.fs,
      durability: 'journal',
      bootId: 'b1',
    })
    await before.put('k', encode('small, journaled'))
    // From now on nothing more reaches the journal: the large put is acknowledged anyway.
    journal.hold()
    const big = new Uint8Array(300 * 1024).fill(3)
    await before.putStaged('k', big).durable
    // The machine stops here. On the next boot, replay finds the small value's entry as the key's
    // newest, and a file in a state it never journaled: written since, so it is left alone.
    const after = await createFileSystemStorage({
      root: '/s',
      fs: journal.fs,
      durability: 'journal',
      bootId: 'b2',
    })
    expect((await after.get('k'))?.data).toEqual(big)
    await after.close()
  })

  it('is a plain put in fsync mode: accepted once durable', async () => {
    const root = mkdtempSync(join(tmpdir(), 'wf-staged-'))
    const storage = await createFileSystemStorage({ root, durability: 'fsync' })
    const staged = storage.putStaged('k', encode('v'), { ifAbsent: true })
    const [accepted] = await Promise.all([staged.accepted, staged.durable])
    expect((await storage.get('k'))?.version).toBe(accepted.version)
    await expect(storage.putStaged('bad//key', encode('v')).accepted).rejects.toThrow()
  })

  it('runs a pipelined workflow to the end with every record durable on a real folder', async () => {
    const root = mkdtempSync(join(tmpdir(), 'wf-staged-'))
    const storage = await createFileSystemStorage({ root, durability: 'journal' })
    const inc = step('staged.inc', (x: number) => x + 1)
    let node = inc(0)
    for (let i = 1; i < 200; i++) node = inc(node)
    const runtime = new Runtime(storage, { pipelineCheckpoints: true })
    expect(await runtime.run(node, { workflowId: 'chain' })).toBe(200)
    const { keys } = await storage.list('workflows/chain/steps/')
    expect(keys).toHaveLength(199) // the root's value is in the workflow record
    await storage.close()
  })
})
