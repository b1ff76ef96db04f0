// A parked workflow (every step it can run sleeps, no process holds it) as the management surface
// shows it, on memory and on a real folder: PENDING, never RESUMABLE, with what it waits for; left
// alone by resumeAll; `wf list` and `wf show` say until when it sleeps.

import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Runtime, sleep, step, type WorkflowHandle } from '@wf/core'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { WorkflowClient } from './index.js'
import { runWf } from './test-support/cli-run.js'
import { backends, folderStorage } from './test-support/harness.js'

const label = step('sleep-client.label', (wokeAt: number, name: string) => `${name} woke at ${wokeAt}`)

describe.each(backends)('a parked workflow on $name storage', (backend) => {
  let client: WorkflowClient
  let submitter: Runtime
  let cleanup: () => Promise<void>
  const live: WorkflowHandle<unknown>[] = []

  beforeEach(async () => {
    const opened = await backend.open()
    cleanup = opened.cleanup
    submitter = new Runtime(opened.storage, { parkAfterMs: 0 })
    client = new WorkflowClient({ storage: opened.storage })
  })
  afterEach(async () => {
    await submitter.close()
    await Promise.allSettled(live.splice(0).map((h) => h.result()))
    await cleanup()
  })

  async function park(workflowId: string, duration: string): Promise<void> {
    const handle = await submitter.runAsync(label(sleep(duration), workflowId), { workflowId })
    live.push(handle)
    await vi.waitFor(async () => expect((await client.getMetadata(workflowId)).waitingFor).toBeDefined())
  }

  it('reads PENDING with what it waits for, and is listed PENDING, never RESUMABLE', async () => {
    const before = Date.now()
    await park('sleeper', '1h')
    expect(await client.getStatus('sleeper')).toBe('PENDING')
    const meta = await client.getMetadata('sleeper')
    expect(meta.status).toBe('PENDING')
    expect(meta.runner).toBeUndefined()
    expect(meta.waitingFor?.steps).toEqual(['wf:sleep~wf:timer'])
    expect(meta.waitingFor?.until).toBeGreaterThanOrEqual(before + 3_600_000)
    const pending = await client.listAll('PENDING')
    expect(pending).toEqual([
      { workflowId: 'sleeper', status: 'PENDING', waitingUntil: meta.waitingFor?.until },
    ])
    expect(await client.listAll('RESUMABLE')).toEqual([])
    expect(await client.listAll(['RUNNING', 'FAILED'])).toEqual([])
  })

  it('is left alone by resumeAll, and its output is not ready', async () => {
    await park('left-alone', '1h')
    expect(await client.resumeAll({ includeFailed: true })).toEqual([])
    expect((await client.getMetadata('left-alone')).waitingFor).toBeDefined()
    const controller = new AbortController()
    const output = client.getOutput('left-alone', { signal: controller.signal, pollIntervalMs: 20 })
    const settled = vi.fn()
    output.then(settled, settled)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(settled).not.toHaveBeenCalled()
    controller.abort()
    await expect(output).rejects.toThrow()
  })

  it('wakes and ends SUCCESSFUL, with nothing left to wait for', async () => {
    await park('short', '400ms')
    const handle = live[live.length - 1] as WorkflowHandle<string>
    expect(await handle.result()).toMatch(/^short woke at \d+$/)
    const meta = await client.getMetadata('short')
    expect(meta.status).toBe('SUCCESSFUL')
    expect(meta.waitingFor).toBeUndefined()
    expect(await client.listAll('SUCCESSFUL')).toEqual([{ workflowId: 'short', status: 'SUCCESSFUL' }])
  })
})

describe('wf list and wf show of a parked workflow', () => {
  it('print until when it sleeps', async () => {
    const here = fileURLToPath(new URL('.', import.meta.url))
    const app = await mkdtemp(join(tmpdir(), 'wf-sleep-cli-'))
    const data = join(app, 'data')
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
    const storage = await folderStorage(data)
    const runtime = new Runtime(storage, { parkAfterMs: 0 })
    try {
      const handle = await runtime.runAsync(label(sleep('2h'), 'cli'), { workflowId: 'cli-sleeper' })
      handle.result().catch(() => {})
      const client = new WorkflowClient({ runtime })
      await vi.waitFor(async () => expect((await client.getMetadata('cli-sleeper')).waitingFor).toBeDefined())
      const list = await runWf(['--storage', data, 'list'], { cwd: app })
      expect(list).toMatchObject({ code: 0, stderr: '' })
      expect(list.stdout).toMatch(/cli-sleeper +PENDING \(sleeping until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/)
      const show = await runWf(['--storage', data, 'show', 'cli-sleeper'], { cwd: app })
      expect(show).toMatchObject({ code: 0, stderr: '' })
      expect(show.stdout).toMatch(/waiting +parked, sleeping until .+ \(in (1h59m|2h)/)
      expect(show.stdout).toContain('wf:sleep~wf:timer')
    } finally {
      await runtime.close()
      await rm(app, { recursive: true, force: true })
    }
  })
})
