// `wf info` as a real process (node bin/wf.js) in a fixture application: the storage, where its
// URI came from, its backend and its durability mode with the reason, and the wf versions; and a
// conflicting durability refused by the `wf` command with the folder storage's message.

import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createFileSystemStorage } from '@wf/storage-fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runWf } from './test-support/cli-run.js'

const here = fileURLToPath(new URL('.', import.meta.url))
let app: string

describe('wf info', { timeout: 30_000 }, () => {
  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'wf-cli-info-'))
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
  })
  afterAll(() => rm(app, { recursive: true, force: true }))

  it("shows a folder's backend, its recorded durability mode and why, and the wf versions", async () => {
    const data = join(app, 'fsync-data')
    await (await createFileSystemStorage({ root: data, durability: 'fsync' })).close()
    const human = await runWf(['--storage', data, 'info'], { cwd: app })
    expect(human).toMatchObject({ code: 0, stderr: '' })
    const lines = human.stdout.trimEnd().split('\n')
    expect(lines[0]).toBe(`storage     ${data} (from --storage)`)
    expect(lines[1]).toBe('backend     @wf/storage-fs')
    expect(lines[2]).toBe('durability  fsync')
    expect(lines[3]).toMatch(
      /^why {9}the folder's mode \(recorded 20\d\d-[\dT:.-]+Z\): durability 'fsync' was given when the folder was first opened$/,
    )
    expect(lines[4]).toMatch(/^wf {10}@wf\/client \S+, @wf\/core \S+/)
    expect(lines[5]).toMatch(/^node {8}v\d+\.\d+\.\d+ \(\w+ \w+\)$/)

    const json = JSON.parse((await runWf(['info', '--json'], { cwd: app, env: { WF_STORAGE: data } })).stdout)
    expect(json).toMatchObject({
      storage: data,
      storageFrom: 'env',
      backend: '@wf/storage-fs',
      location: data,
      durability: 'fsync',
      versions: { '@wf/client': expect.any(String), '@wf/core': expect.any(String) },
    })
  })

  it("records a new folder's mode on first use and shows the one it recorded", async () => {
    const data = join(app, 'new-data')
    const info = JSON.parse((await runWf(['--storage', data, '--json', 'info'], { cwd: app })).stdout)
    const recorded = JSON.parse(await readFile(join(data, '.wf-storage.json'), 'utf8'))
    expect(info.durability).toBe(recorded.durability)
    expect(['journal', 'fsync']).toContain(info.durability)
    expect(info.durabilityReason).toBe(
      `the folder's mode (recorded now, by this process): ${recorded.reason}`,
    )
  })

  it('names the class of a storage that does not describe itself', async () => {
    const memory = await runWf(['--storage', 'memory://', 'info'], { cwd: app })
    expect(memory.code).toBe(0)
    expect(memory.stdout).toMatch(/^backend {5}MemoryStorage$/m)
    expect(memory.stdout).toMatch(/^durability {2}not reported by this storage$/m)
  })

  it("refuses a durability that conflicts with the folder's recorded one, saying what to do", async () => {
    const data = join(app, 'journal-data')
    await (await createFileSystemStorage({ root: data, durability: 'journal' })).close()
    const refused = await runWf(['--storage', `${pathToFileURL(data).href}?durability=fsync`, 'list'], {
      cwd: app,
    })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/keeps durability 'journal'/)
    expect(refused.stderr).toMatch(/leave durability out/)
    const json = await runWf(
      ['--storage', `${pathToFileURL(data).href}?durability=fsync`, '--json', 'list'],
      {
        cwd: app,
      },
    )
    expect(JSON.parse(json.stderr)).toMatchObject({
      error: { code: 'WF_DURABILITY_MISMATCH', name: 'DurabilityMismatchError' },
    })
  })
})
