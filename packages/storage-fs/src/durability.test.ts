// A folder's durability: the default detected from the filesystem that holds it (the real one of
// this machine's temp folder, injected statfs results for the others), recorded in the folder when
// it is first opened and kept for life, legacy folders, refused conflicts, and two processes
// opening a new folder at once.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, statfs, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detectDurability, MODE_FILE } from './durability.js'
import { type FileSystem, nodeFileSystem } from './file-system.js'
import { createFileSystemStorage, DurabilityMismatchError, DurabilityRecordError, fromUri } from './index.js'
import { ensureBuilt } from './test-support/build-once.js'

const utf8 = (value: string) => new TextEncoder().encode(value)
const here = dirname(fileURLToPath(import.meta.url))
const openFolder = join(here, 'test-support', 'open-folder.mjs')
const linux = { platform: 'linux' as const, boot: 'b1' }

const roots: string[] = []
async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'wf-storage-fs-mode-'))
  roots.push(root)
  return root
}
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })))
})

/** The real filesystem, reporting `type` as the filesystem of every folder. */
function on(type: number): FileSystem {
  return { ...nodeFileSystem, statfs: async () => ({ type }) }
}

async function modeFile(root: string): Promise<{ version: number; durability: string; reason: string }> {
  return JSON.parse(await readFile(join(root, MODE_FILE), 'utf8'))
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error('expected a rejection')
}

describe('the default durability of a new folder', () => {
  it("is the one detected from this machine's temp folder: the journal on ext4, xfs, btrfs or tmpfs under Linux", async () => {
    const root = await tempRoot()
    const detected = await detectDurability(root, nodeFileSystem, linux)
    const type = Number((await statfs(root)).type)
    const local = [0xef53, 0x58465342, 0x9123683e, 0x01021994].includes(type)
    expect(detected.durability).toBe(process.platform === 'linux' && local ? 'journal' : 'fsync')
    if (type === 0xef53) expect(detected.reason).toBe('ext2/ext3/ext4, a local disk of this Linux machine')

    const storage = await createFileSystemStorage({ root })
    if (process.platform === 'linux') expect(storage.durability).toBe(detected.durability)
    expect(storage.describe()).toMatchObject({
      backend: '@wf/storage-fs',
      location: root,
      durability: storage.durability,
    })
    expect(storage.describe().durabilityReason).toContain(detected.reason)
    await storage.close()
  })

  it.each([
    [0x6969, /NFS, a network filesystem/],
    [0xff534d42, /CIFS/],
    [0x65735546, /FUSE/],
    [0x794c7630, /overlayfs/],
    [0x01021997, /9p/],
    [0x12345678, /statfs type 0x12345678/],
  ])(
    'is fsync on a filesystem the journal is not known to be safe on (statfs type %s)',
    async (type, why) => {
      const root = await tempRoot()
      const detected = await detectDurability(root, on(type), linux)
      expect(detected).toMatchObject({ durability: 'fsync', reason: expect.stringMatching(why) })
    },
  )

  it('is the journal on ext4, xfs, btrfs and tmpfs (statfs as a bigint too)', async () => {
    for (const [type, name] of [
      [0xef53, 'ext2/ext3/ext4'],
      [0x58465342, 'xfs'],
      [0x9123683e, 'btrfs'],
      [0x01021994, 'tmpfs'],
    ] as const) {
      const fs = { ...nodeFileSystem, statfs: async () => ({ type: BigInt(type) }) }
      expect(await detectDurability('/anywhere', fs, linux)).toEqual({
        durability: 'journal',
        reason: `${name}, a local disk of this Linux machine`,
      })
    }
  })

  it('is fsync off Linux, without a boot id, without synchronous calls or statfs, and when statfs fails', async () => {
    const ext4 = on(0xef53)
    const cases: [FileSystem, { platform: NodeJS.Platform; boot: string | undefined }, RegExp][] = [
      [ext4, { platform: 'darwin', boot: 'b1' }, /needs Linux.*this is darwin/],
      [ext4, { platform: 'win32', boot: undefined }, /this is win32/],
      [ext4, { platform: 'linux', boot: undefined }, /boot id/],
      [{ ...ext4, sync: undefined }, linux, /synchronous calls/],
      [{ ...nodeFileSystem, statfs: undefined }, linux, /no fs.statfs/],
      [
        {
          ...nodeFileSystem,
          statfs: async () => {
            throw Object.assign(new Error('no'), { code: 'ENOSYS' })
          },
        },
        linux,
        /statfs of the folder failed \(ENOSYS\)/,
      ],
    ]
    for (const [fs, machine, why] of cases) {
      expect(await detectDurability('/anywhere', fs, machine)).toMatchObject({
        durability: 'fsync',
        reason: expect.stringMatching(why),
      })
    }
  })

  it('gives a new folder on NFS the fsync mode, records it and says why', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root, fs: on(0x6969), bootId: 'b1' })
    expect(storage.durability).toBe('fsync')
    expect(storage.describe().durabilityReason).toMatch(/recorded now.*NFS, a network filesystem/)
    expect(await modeFile(root)).toMatchObject({ version: 1, durability: 'fsync' })
    await storage.close()
  })
})

describe("a folder's recorded durability", () => {
  it('is recorded when the folder is first opened, and reused where detection would now pick the other', async () => {
    const root = await tempRoot()
    const first = await createFileSystemStorage({ root, fs: on(0xef53), bootId: 'b1' })
    expect(first.durability).toBe('journal')
    await first.put('k', utf8('v'))
    await first.close()
    expect(await modeFile(root)).toMatchObject({
      version: 1,
      durability: 'journal',
      reason: 'ext2/ext3/ext4, a local disk of this Linux machine',
    })

    const again = await createFileSystemStorage({ root, fs: on(0x12345678), bootId: 'b1' })
    expect(again.durability).toBe('journal')
    expect(again.describe().durabilityReason).toMatch(/^the folder's mode \(recorded 20\d\d-.*\): ext2/)
    await again.close()

    const other = await tempRoot()
    await (await createFileSystemStorage({ root: other, fs: on(0x6969), bootId: 'b1' })).close()
    const reopened = await createFileSystemStorage({ root: other, fs: on(0xef53), bootId: 'b1' })
    expect(reopened.durability).toBe('fsync')
    await reopened.close()
  })

  it("refuses durability 'journal' on NFS before a new folder records it", async () => {
    const root = await tempRoot()
    const error = await rejection(
      createFileSystemStorage({ root, fs: on(0x6969), bootId: 'b1', durability: 'journal' }),
    )
    expect(error).toMatchObject({ code: 'WF_STORAGE_CONFIG' })
    expect(error.message).toMatch(/needs a local disk, and .* is on NFS/)
    await expect(readFile(join(root, MODE_FILE))).rejects.toMatchObject({ code: 'ENOENT' })
    const fsync = await createFileSystemStorage({ root, fs: on(0x6969), bootId: 'b1' })
    expect(fsync.durability).toBe('fsync')
    await fsync.close()
  })

  it('records an explicit durability in a new folder instead of detecting one', async () => {
    const root = await tempRoot()
    const storage = await createFileSystemStorage({ root, fs: on(0xef53), bootId: 'b1', durability: 'fsync' })
    expect(storage.durability).toBe('fsync')
    expect(await modeFile(root)).toMatchObject({
      durability: 'fsync',
      reason: "durability 'fsync' was given when the folder was first opened",
    })
    const plain = await fromUri(root)
    expect((plain as typeof storage).durability).toBe('fsync')
  })

  it('refuses a conflicting explicit durability with DurabilityMismatchError, and changes nothing', async () => {
    const journal = await tempRoot()
    await (await createFileSystemStorage({ root: journal, fs: on(0xef53), bootId: 'b1' })).close()
    const error = await rejection(createFileSystemStorage({ root: journal, durability: 'fsync' }))
    expect(error).toBeInstanceOf(DurabilityMismatchError)
    expect(error).toMatchObject({ code: 'WF_DURABILITY_MISMATCH', recorded: 'journal', requested: 'fsync' })
    expect(error.message).toContain(`the storage folder ${journal} keeps durability 'journal'`)
    expect(error.message).toMatch(/leave durability out .* to open it in its own mode/)
    const url = await rejection(fromUri(`${pathToFileURL(journal).href}?durability=fsync`))
    expect(url).toBeInstanceOf(DurabilityMismatchError)
    expect(await modeFile(journal)).toMatchObject({ durability: 'journal' })

    const fsync = await tempRoot()
    await (await createFileSystemStorage({ root: fsync, durability: 'fsync' })).close()
    const other = await rejection(createFileSystemStorage({ root: fsync, durability: 'journal' }))
    expect(other).toMatchObject({ code: 'WF_DURABILITY_MISMATCH', recorded: 'fsync', requested: 'journal' })
    expect(await modeFile(fsync)).toMatchObject({ durability: 'fsync' })
  })

  it("lets 'none' open a folder of either mode, and leaves the record alone (a new folder records the default)", async () => {
    for (const recorded of ['fsync', 'journal'] as const) {
      const root = await tempRoot()
      await (await createFileSystemStorage({ root, durability: recorded })).close()
      const none = await createFileSystemStorage({ root, durability: 'none' })
      expect(none.durability).toBe('none')
      expect(none.describe().durabilityReason).toMatch(
        new RegExp(
          `^durability 'none' was asked for: this process does not sync its writes; ${recorded} is the folder's mode`,
        ),
      )
      await none.put('k', utf8('v'))
      await none.close()
      expect(await modeFile(root)).toMatchObject({ durability: recorded })
    }
    const fresh = await tempRoot()
    await (
      await createFileSystemStorage({ root: fresh, fs: on(0xef53), bootId: 'b1', durability: 'none' })
    ).close()
    expect(await modeFile(fresh)).toMatchObject({ durability: 'journal' })
  })

  it('makes a folder written before modes were recorded an fsync folder (or the mode it is opened with), and records it', async () => {
    const legacy = await tempRoot()
    const old = await createFileSystemStorage({ root: legacy, durability: 'fsync' })
    await old.put('workflows/w1/state', utf8('v'))
    await old.close()
    await unlink(join(legacy, MODE_FILE)) // as a version without mode files left it
    const opened = await createFileSystemStorage({ root: legacy, fs: on(0xef53), bootId: 'b1' })
    expect(opened.durability).toBe('fsync')
    expect(await modeFile(legacy)).toMatchObject({
      durability: 'fsync',
      reason: expect.stringMatching(/from before wf recorded a folder's mode, written with 'fsync'/),
    })
    expect(new TextDecoder().decode((await opened.get('workflows/w1/state'))?.data)).toBe('v')
    await opened.close()

    // A folder its users opened with durability 'journal' before keeps that when opened so again.
    await unlink(join(legacy, MODE_FILE))
    const journaled = await createFileSystemStorage({
      root: legacy,
      fs: on(0xef53),
      bootId: 'b1',
      durability: 'journal',
    })
    expect(await modeFile(legacy)).toMatchObject({ durability: 'journal' })
    await journaled.close()
  })

  it('treats a folder that crashed between its creation and its mode record as new (internal files only)', async () => {
    const root = await tempRoot()
    await mkdir(join(root, '.journal'))
    await writeFile(join(root, '.tmp.99999999.gone.x.0'), 'a temp file of a killed process')
    const storage = await createFileSystemStorage({ root, fs: on(0xef53), bootId: 'b1' })
    expect(storage.durability).toBe('journal')
    await storage.close()
  })

  it('refuses a mode file it cannot read with DurabilityRecordError naming the file', async () => {
    for (const [content, detail] of [
      ['{"version":1,', /it is not JSON/],
      ['{"version":1,"durability":"none"}', /it holds \{"version":1,"durability":"none"\}/],
      ['{"version":2,"durability":"journal"}', /its version 2 is newer than this @wf\/storage-fs knows/],
    ] as const) {
      const root = await tempRoot()
      await writeFile(join(root, MODE_FILE), content)
      const error = await rejection(createFileSystemStorage({ root }))
      expect(error).toBeInstanceOf(DurabilityRecordError)
      expect(error).toMatchObject({ code: 'WF_DURABILITY_RECORD', file: join(root, MODE_FILE) })
      expect(error.message).toMatch(detail)
    }
  })
})

describe('two processes opening a new folder at once', () => {
  beforeAll(() => ensureBuilt(), 120_000)

  /** Spawns the children, lets them load, then says "go" to all at once; resolves with what each printed. */
  async function openAtOnce(root: string, asked: string[]): Promise<Record<string, string>[]> {
    const children: ChildProcess[] = asked.map((a) =>
      spawn(process.execPath, [openFolder, root, a], { stdio: ['pipe', 'pipe', 'inherit'] }),
    )
    const outputs = children.map((child) => {
      let text = ''
      child.stdout?.setEncoding('utf8')
      return new Promise<string[]>((resolve) => {
        child.stdout?.on('data', (chunk: string) => {
          text += chunk
        })
        child.once('close', () => resolve(text.trim().split('\n'))) // 'close': stdout drained
      })
    })
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) =>
            child.stdout?.on('data', (chunk: string) => {
              if (chunk.includes('ready')) resolve()
            }),
          ),
      ),
    )
    for (const child of children) child.stdin?.write('go\n')
    return (await Promise.all(outputs)).map((lines) => JSON.parse(lines[lines.length - 1] as string))
  }

  it('agree on one recorded mode; the one that asked for the other is refused', async () => {
    for (let round = 0; round < 6; round++) {
      const same = join(await tempRoot(), 'new')
      const [a, b] = await openAtOnce(same, ['default', 'default'])
      const recorded = (await modeFile(same)).durability
      expect(a).toEqual({ durability: recorded })
      expect(b).toEqual({ durability: recorded })

      const mixed = join(await tempRoot(), 'new')
      const [fsync, detected] = await openAtOnce(mixed, ['fsync', 'default'])
      const winner = (await modeFile(mixed)).durability
      expect(detected).toEqual({ durability: winner })
      expect(fsync).toEqual(winner === 'fsync' ? { durability: 'fsync' } : { code: 'WF_DURABILITY_MISMATCH' })
    }
  }, 60_000)
})
