// `wf worker`, spawned as the real binary (node bin/wf.js worker) on a real folder: the test
// submits workflows (PENDING records) with its own runtime and watches the worker take and finish
// them, then stops it with SIGTERM and checks what it left behind.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Runtime, step, storeKeys, type WorkflowStore } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type CliResult, runWf } from './test-support/cli-run.js'
import { folderStorage } from './test-support/harness.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const bin = join(here, '../bin/wf.js')
const steps = join(here, 'test-support/fixtures/worker-steps.mjs')

// The submitter only builds graphs: these carry the names of the fixture's steps, whose bodies
// run in the worker process (imported there with --import).
const wkDouble = step('wk.double', (n: number) => n * 2)
const wkSum = step('wk.sum', (a: number, b: number) => a + b)
const wkFail = step('wk.fail', (): number => 0)

interface Worker {
  proc: ChildProcessWithoutNullStreams
  stdout(): string
  stderr(): string
  exited: Promise<number | null>
}

let app: string
let data: string
let runtime: Runtime
let store: WorkflowStore

// The submitter here is the test runner, not the application, so its recorded runtime (app name,
// lockfile) differs from the worker's by construction: --on-code-change ignore keeps stderr clean.
function startWorker(args: string[], env: Record<string, string> = {}): Worker {
  const flags = ['worker', '--storage', data, '--on-code-change', 'ignore', ...args]
  const proc = spawn(process.execPath, [bin, ...flags], {
    cwd: app,
    env: { ...process.env, NO_COLOR: '', WF_STORAGE: '', ...env },
  })
  let out = ''
  let err = ''
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)))
  return { proc, stdout: () => out, stderr: () => err, exited }
}

function wf(args: string[]): Promise<CliResult> {
  // As the user's shell would: WF_STORAGE and colour as they are.
  return runWf(args, {
    cwd: app,
    env: { NO_COLOR: process.env.NO_COLOR, WF_STORAGE: process.env.WF_STORAGE },
  })
}

const events = (w: Worker) =>
  w
    .stdout()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { event: string; workflowId?: string; outcome?: string })

describe('wf worker on a folder', { timeout: 90_000 }, () => {
  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'wf-worker-app-'))
    data = join(app, 'data')
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
    runtime = new Runtime(await folderStorage(data), { leaseTtlMs: 1000 })
    store = await runtime.store()
  })
  afterAll(async () => {
    await (await runtime.storage()).close?.()
    await rm(app, { recursive: true, force: true })
  })

  it('takes submitted workflows, finishes them, prints JSON lines, and exits 0 on SIGTERM', async () => {
    const handles = []
    for (let i = 0; i < 6; i++) {
      handles.push(await runtime.submit(wkSum(wkDouble(i), wkDouble(i + 1)), { workflowId: `ok-${i}` }))
    }
    const failing = await runtime.submit(wkSum(wkDouble(1), wkFail()), { workflowId: 'bad' })
    expect((await store.requireWorkflow('ok-0')).record.status).toBe('PENDING')

    const worker = startWorker(
      ['--json', '--import', steps, '--concurrency', '3', '--poll-interval', '50', '--lease-ttl', '1000'],
      { WF_WORKER_LOG: join(app, 'ok.log') },
    )
    const outputs = await Promise.all(handles.map((h) => h.result()))
    expect(outputs).toEqual([0, 1, 2, 3, 4, 5].map((i) => 2 * i + 2 * (i + 1)))
    await expect(failing.result()).rejects.toMatchObject({ code: 'WF_EXECUTION_FAILED' })
    await vi.waitFor(() => expect(events(worker).filter((e) => e.event === 'finished')).toHaveLength(7), {
      timeout: 20_000,
    })

    worker.proc.kill('SIGTERM')
    expect(await worker.exited, worker.stderr()).toBe(0)
    expect(worker.stderr()).toBe('')
    const all = events(worker)
    expect(all[0]).toMatchObject({ event: 'started', pid: worker.proc.pid, concurrency: 3, leaseTtlMs: 1000 })
    expect(all.filter((e) => e.event === 'taken').map((e) => e.workflowId)).toHaveLength(7)
    expect(all).toContainEqual(
      expect.objectContaining({ event: 'finished', workflowId: 'ok-3', outcome: 'SUCCESSFUL' }),
    )
    expect(all).toContainEqual(
      expect.objectContaining({
        event: 'finished',
        workflowId: 'bad',
        outcome: 'FAILED',
        error: expect.anything(),
      }),
    )
    expect(all.slice(-2).map((e) => e.event)).toEqual(['stopping', 'stopped'])
    // Stopped with nothing left to drive, it deleted its runner record (its one lease).
    const { runnerId } = all[0] as { runnerId?: string }
    expect(runnerId).toMatch(/^[0-9a-f]{16}$/)
    expect(await store.readRunner(runnerId as string)).toBeUndefined()
    // Every step ran in the worker process, once.
    const lines = readFileSync(join(app, 'ok.log'), 'utf8').trim().split('\n')
    expect(new Set(lines.map((l) => l.split(' ')[0]))).toEqual(new Set([String(worker.proc.pid)]))
    expect(new Set(lines).size).toBe(lines.length)
  })

  it('on SIGTERM lets running steps commit, releases its workflows (RESUMABLE), and exits 0', async () => {
    const ids = ['slow-0', 'slow-1', 'slow-2']
    const handles = []
    for (const [i, workflowId] of ids.entries()) {
      handles.push(await runtime.submit(wkSum(wkDouble(i), wkDouble(10)), { workflowId }))
    }
    const log = join(app, 'slow.log')
    const first = startWorker(
      ['--import', steps, '--concurrency', '2', '--poll-interval', '50', '--grace', '20000'],
      {
        WF_WORKER_LOG: log,
        WF_WORKER_STEP_MS: '1500',
      },
    )
    // Stop it while its first steps are in flight (the other workflow may still be loading).
    await vi.waitFor(
      () => expect(existsSync(log) && readFileSync(log, 'utf8').trim().split('\n').length >= 2).toBe(true),
      { timeout: 20_000 },
    )
    const inFlight = readFileSync(log, 'utf8').trim().split('\n')
    first.proc.kill('SIGTERM')
    expect(await first.exited, first.stderr()).toBe(0)
    expect(first.stderr()).toBe('')
    const text = first.stdout()
    expect(text).toMatch(/worker .+:\d+ started \(concurrency 2, lease 15000ms, heartbeat 5000ms\)/)
    expect(text).toMatch(/taken +slow-0/)
    expect(text).toMatch(/SIGTERM: stopping \([12] running/)
    expect(text).toMatch(/RELEASED +slow-0/)
    expect(text.trimEnd()).toMatch(/stopped$/)

    // What it held is RESUMABLE with no owner, and the steps it had in flight were committed.
    const held = ids.filter((id) => text.includes(`taken      ${id}`))
    expect(held.length).toBeGreaterThanOrEqual(1)
    for (const workflowId of held) {
      const { record } = await store.requireWorkflow(workflowId)
      expect(runtime.deriveStatus(record)).toBe('RESUMABLE')
      expect(record.owner).toBeUndefined()
    }
    for (const line of inFlight) {
      const [, workflowId, stepId] = line.split(' ') as [string, string, string]
      expect(await store.listStepIds(workflowId)).toContain(stepId)
    }
    for (const workflowId of ids.filter((id) => !held.includes(id))) {
      expect((await store.requireWorkflow(workflowId)).record.status).toBe('PENDING')
    }

    // A second worker finishes everything without re-running a committed step.
    const second = startWorker(['--import', steps, '--poll-interval', '50'], {
      WF_WORKER_LOG: log,
      WF_WORKER_STEP_MS: '10',
    })
    expect(await Promise.all(handles.map((h) => h.result()))).toEqual([20, 22, 24])
    second.proc.kill('SIGINT')
    expect(await second.exited).toBe(0)
    const lines = readFileSync(log, 'utf8').trim().split('\n')
    const byStep = lines.map((l) => l.split(' ').slice(1).join(' '))
    expect(new Set(byStep).size).toBe(byStep.length)
  })

  it('prints a line for a workflow whose record it cannot read, once, and runs the others', async () => {
    const good = await runtime.submit(wkSum(wkDouble(1), wkDouble(2)), { workflowId: 'readable' })
    await runtime.submit(wkSum(wkDouble(3), wkDouble(4)), { workflowId: 'garbled' })
    await store.storage.put(storeKeys.workflow('garbled'), new TextEncoder().encode('{"v":1,"wor'))
    const worker = startWorker(['--import', steps, '--poll-interval', '20', '--lease-ttl', '1000'])
    expect(await good.result()).toBe(6)
    await vi.waitFor(() => expect(worker.stdout()).toMatch(/skipped/), { timeout: 20_000 })
    // Many polls later, still one line.
    await new Promise((resolve) => setTimeout(resolve, 300))
    worker.proc.kill('SIGTERM')
    expect(await worker.exited).toBe(0)
    const skipped = worker
      .stdout()
      .split('\n')
      .filter((l) => l.includes('skipped'))
    expect(skipped).toHaveLength(1)
    expect(skipped[0]).toMatch(
      /skipped +garbled: the record at "workflows\/garbled\/workflow" is corrupt: .*\(`wf doctor` lists every unreadable record; `wf delete garbled --force` removes that workflow\)/,
    )
    await store.purgeWorkflow('garbled')
  })

  it('exits 2 without --import or with a bad number, naming the flag', async () => {
    const none = await wf(['worker', '--storage', data])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/needs --import MODULE/)
    const bad = await wf(['worker', '--storage', data, '--import', steps, '--concurrency', 'lots'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--concurrency must be a whole number of at least 1, got "lots"/)
    const tight = await wf([
      'worker',
      '--storage',
      data,
      '--import',
      steps,
      '--lease-ttl',
      '100',
      '--heartbeat',
      '90',
    ])
    expect(tight.code).toBe(2)
    expect(tight.stderr).toMatch(/heartbeatMs must be a positive integer at most half of leaseTtlMs/)
    const help = await wf(['worker', '--help'])
    expect(help.stdout).toMatch(/--lease-ttl <ms>/)
  })
})
