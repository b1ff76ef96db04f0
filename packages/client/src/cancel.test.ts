// Cancel's promise, with the runner in another process (a real child process, on a real folder
// and on the real S3 server): once `cancel()` resolves, no step of the workflow starts anywhere,
// and a result finishing later is not committed. A stopped runner (SIGSTOP) that cannot
// acknowledge makes cancel reject with CancelNotAcknowledgedError; a dead one (SIGKILL) is canceled
// by cancel() itself.

import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CancelNotAcknowledgedError, Runtime, step, storeKeys } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { WorkflowClient } from './client.js'
import { type CliResult, runWf } from './test-support/cli-run.js'
import { backends, gate } from './test-support/harness.js'
import { openFolderPlace, openS3Place, type Place, s3, warnIfS3Skipped } from './test-support/places.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const _bin = join(here, '../bin/wf.js')
const runnerScript = join(here, 'test-support/fixtures/cancel-runner.mjs')

interface Backend {
  name: string
  available: boolean
  open(): Promise<Place>
}

const folder: Backend = { name: 'folder', available: true, open: () => openFolderPlace('wf-cancel-') }
const bucket: Backend = { name: 'S3', available: s3.available, open: () => openS3Place('wf-cancel') }

warnIfS3Skipped('cancel.test.ts')

interface Runner {
  proc: ChildProcess
  log: string
  release: string
  /** The lines the runner logged: `start <step> <attempt>`. */
  starts(): string[]
  exited: Promise<string>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each([folder, bucket])('cancel with the runner in another process, on $name', (backend) => {
  let place: Place
  let work: string
  let client: WorkflowClient
  const spawned: ChildProcess[] = []

  beforeAll(async () => {
    if (!backend.available) return
    place = await backend.open()
    work = await mkdtemp(join(tmpdir(), 'wf-cancel-work-'))
    // The canceler's own lease settings bound how long it waits (leaseTtlMs + heartbeatMs).
    client = new WorkflowClient({ storage: place.storage, leaseTtlMs: 3000, heartbeatMs: 1000 })
  })
  afterAll(async () => {
    if (!backend.available) return
    // A failed test may leave its runner waiting for a release that never comes.
    for (const proc of spawned) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    await place.close()
    await rm(work, { recursive: true, force: true })
  })

  /** Starts a runner process on the workflow `id`; its heartbeat is `heartbeatMs`. */
  function startRunner(
    id: string,
    scenario: 'reserve' | 'retry',
    leaseTtlMs = 3000,
    heartbeatMs = 1000,
  ): Runner {
    const log = join(work, `${id}.log`)
    const release = join(work, `${id}.release`)
    writeFileSync(log, '')
    const proc = spawn(process.execPath, [runnerScript, place.uri, id, scenario], {
      env: {
        ...process.env,
        WF_CANCEL_LOG: log,
        WF_CANCEL_RELEASE: release,
        WF_LEASE_TTL_MS: String(leaseTtlMs),
        WF_HEARTBEAT_MS: String(heartbeatMs),
        ...s3.childEnv,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    spawned.push(proc)
    let out = ''
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
    })
    const exited = new Promise<string>((resolve) => proc.once('close', () => resolve(out)))
    const starts = () => readFileSync(log, 'utf8').split('\n').filter(Boolean)
    return { proc, log, release, starts, exited }
  }

  it.skipIf(!backend.available)(
    'once cancel() resolves, the next step never starts and the step finishing afterwards is not committed',
    { timeout: 30_000 },
    async () => {
      const id = `order-${backend.name}-a`
      const runner = startRunner(id, 'reserve')
      await vi.waitFor(() => expect(runner.starts()).toContain('start reserve 1'), { timeout: 15_000 })
      const outcome = await client.runtime.cancelDetailed(id)
      expect(outcome).toMatchObject({ status: 'CANCELED', was: 'RUNNING', waitedFor: 'owner' })
      expect(outcome.owner?.pid).toBe(runner.proc.pid)
      // reserve finishes only now, after the cancel: its result must not be committed, and
      // charge, which was about to start, must never start.
      writeFileSync(runner.release, '')
      expect(await runner.exited).toContain('error WF_CANCELED')
      expect(runner.starts()).toEqual(['start reserve 1'])
      const store = await client.runtime.store()
      expect(await store.listStepIds(id)).toEqual([])
      const { record } = await store.requireWorkflow(id)
      expect(record.status).toBe('CANCELED')
      expect(record.owner).toBeUndefined()
    },
  )

  it.skipIf(!backend.available)(
    'once cancel() resolves, a failed attempt is not retried',
    { timeout: 30_000 },
    async () => {
      const id = `order-${backend.name}-b`
      const runner = startRunner(id, 'retry')
      await vi.waitFor(() => expect(runner.starts()).toContain('start charge 1'), { timeout: 15_000 })
      await expect(client.cancel(id)).resolves.toBe('CANCELED')
      writeFileSync(runner.release, '') // attempt 1 fails now; attempts 2 and 3 must not start
      expect(await runner.exited).toContain('error WF_CANCELED')
      expect(runner.starts()).toEqual(['start reserve 1', 'start charge 1'])
      expect(await (await client.runtime.store()).listStepIds(id)).toEqual(['cx.reserve'])
    },
  )

  it.skipIf(!backend.available)(
    'rejects with CancelNotAcknowledgedError when the live runner cannot acknowledge (SIGSTOP), and the request stays for it',
    { timeout: 30_000 },
    async () => {
      const id = `order-${backend.name}-c`
      // A long lease: the stopped runner stays live for the whole wait.
      const runner = startRunner(id, 'reserve', 30_000, 500)
      await vi.waitFor(() => expect(runner.starts()).toContain('start reserve 1'), { timeout: 15_000 })
      runner.proc.kill('SIGSTOP')
      try {
        const fastClient = new WorkflowClient({ storage: place.storage, leaseTtlMs: 1000, heartbeatMs: 200 })
        const error = await fastClient.cancel(id).catch((e: unknown) => e)
        expect(error).toBeInstanceOf(CancelNotAcknowledgedError)
        expect(error).toMatchObject({ code: 'WF_CANCEL_NOT_ACKNOWLEDGED', waitedMs: 1200 })
        const store = await client.runtime.store()
        const { record } = await store.requireWorkflow(id)
        expect(record.status).toBe('RUNNING')
        expect(record.cancelRequested).toBeDefined()
      } finally {
        runner.proc.kill('SIGCONT')
      }
      // Back from the pause, the runner finds the request at its next heartbeat and stops.
      const store = await client.runtime.store()
      await vi.waitFor(async () => expect((await store.requireWorkflow(id)).record.status).toBe('CANCELED'), {
        timeout: 15_000,
      })
      writeFileSync(runner.release, '')
      expect(await runner.exited).toContain('error WF_CANCELED')
      expect(runner.starts()).toEqual(['start reserve 1'])
      expect(await store.listStepIds(id)).toEqual([])
    },
  )

  it.skipIf(!backend.available)(
    'writes CANCELED itself when the runner is dead (SIGKILL)',
    { timeout: 30_000 },
    async () => {
      const id = `order-${backend.name}-d`
      const runner = startRunner(id, 'reserve', 30_000, 500)
      await vi.waitFor(() => expect(runner.starts()).toContain('start reserve 1'), { timeout: 15_000 })
      runner.proc.kill('SIGKILL')
      await runner.exited
      const outcome = await client.runtime.cancelDetailed(id)
      expect(outcome).toMatchObject({ status: 'CANCELED', was: 'RESUMABLE', waitedFor: 'owner-gone' })
      expect(outcome.elapsedMs).toBeLessThan(1000)
      expect((await (await client.runtime.store()).requireWorkflow(id)).record.status).toBe('CANCELED')
      await sleep(0)
    },
  )
})

const double = step('cx.double', (n: number) => n * 2)
const boom = step(
  'cx.boom',
  (): number => {
    throw new Error('boom')
  },
  { maxRetries: 0 },
)

describe.each(backends)('cancel answers with the status, on $name', (backend) => {
  it('FAILED, RESUMABLE and PENDING workflows become CANCELED; SUCCESSFUL and CANCELED ones are left as they are', async () => {
    const { storage, cleanup } = await backend.open()
    try {
      const runtime = new Runtime(storage, { leaseTtlMs: 1000, heartbeatMs: 200 })
      const client = new WorkflowClient({ runtime })
      const store = await runtime.store()
      await runtime.run(double(2), { workflowId: 'done' })
      await runtime.run(boom(), { workflowId: 'failed' }).catch(() => {})
      await runtime.submit(double(3), { workflowId: 'pending' })
      await runtime.submit(double(4), { workflowId: 'resumable' })
      // Left RUNNING by a runner on another machine whose lease ran out long ago.
      const gone = { host: 'another-machine', pid: 1, runnerId: 'gone' }
      await store.writeRunner({ v: 1, runner: gone, leaseExpiresAt: Date.now() - 60_000, updatedAt: 0 })
      const left = await store.requireWorkflow('resumable')
      await store.updateWorkflow(left, {
        ...left.record,
        status: 'RUNNING',
        owner: gone,
        lease: 'runner',
        runs: 1,
      })
      expect(await client.getStatus('resumable')).toBe('RESUMABLE')

      expect(await client.cancel('done')).toBe('SUCCESSFUL')
      expect(await client.getOutput('done')).toBe(4)
      expect(await runtime.cancelDetailed('failed')).toMatchObject({
        status: 'CANCELED',
        was: 'FAILED',
        waitedFor: 'nothing',
      })
      expect(await runtime.cancelDetailed('pending')).toMatchObject({
        status: 'CANCELED',
        was: 'PENDING',
        waitedFor: 'nothing',
      })
      expect(await runtime.cancelDetailed('resumable')).toMatchObject({
        status: 'CANCELED',
        was: 'RESUMABLE',
        waitedFor: 'owner-gone',
        owner: gone,
      })
      expect(await runtime.cancelDetailed('failed')).toMatchObject({ status: 'CANCELED', was: 'CANCELED' })
      // Nothing resumes them; the status index agrees with the records.
      expect(await client.resumeAll({ includeFailed: true })).toEqual([])
      expect(await client.listAll(['CANCELED'])).toEqual([
        { workflowId: 'failed', status: 'CANCELED' },
        { workflowId: 'pending', status: 'CANCELED' },
        { workflowId: 'resumable', status: 'CANCELED' },
      ])
      for (const status of ['FAILED', 'PENDING', 'RUNNING'] as const) {
        expect(await storage.list(storeKeys.indexPrefix(status))).toMatchObject({ keys: [] })
      }
    } finally {
      await cleanup()
    }
  })
})

let held = gate()
const waits = step('cx.waits', async (n: number) => {
  await held.promise
  return n
})

describe('wf cancel', { timeout: 30_000 }, () => {
  let app: string
  let place: Place
  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'wf-cancel-app-'))
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
    place = await folder.open()
  })
  afterAll(async () => {
    await place.close()
    await rm(app, { recursive: true, force: true })
  })

  function wf(args: string[]): Promise<CliResult> {
    return runWf(['--storage', place.uri, ...args], { cwd: app })
  }

  it('says what it waited for: the runner in another process, or nothing; a SUCCESSFUL workflow exits 0', async () => {
    const log = join(app, 'cli.log')
    const release = join(app, 'cli.release')
    writeFileSync(log, '')
    const proc = spawn(process.execPath, [runnerScript, place.uri, 'order-cli', 'reserve'], {
      env: {
        ...process.env,
        WF_CANCEL_LOG: log,
        WF_CANCEL_RELEASE: release,
        WF_LEASE_TTL_MS: '3000',
        WF_HEARTBEAT_MS: '1000',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exited = new Promise((resolve) => proc.once('close', resolve))
    await vi.waitFor(() => expect(readFileSync(log, 'utf8')).toContain('start reserve 1'), {
      timeout: 15_000,
    })
    const canceled = await wf(['cancel', 'order-cli'])
    expect(canceled.code).toBe(0)
    expect(canceled.stdout).toMatch(
      new RegExp(
        `^canceled order-cli: its runner .+:${proc.pid} stopped it and acknowledged \\(waited \\d+ ms\\); no step of it will start again\n$`,
      ),
    )
    writeFileSync(release, '')
    await exited
    expect(readFileSync(log, 'utf8')).toBe('start reserve 1\n')

    const again = await wf(['--json', 'cancel', 'order-cli'])
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({
      workflowId: 'order-cli',
      status: 'CANCELED',
      was: 'CANCELED',
      waitedFor: 'nothing',
    })
    expect(await wf(['cancel', 'order-cli'])).toMatchObject({
      code: 0,
      stdout: 'order-cli was already CANCELED\n',
    })

    const runtime = new Runtime(place.storage)
    await runtime.run(double(1), { workflowId: 'order-done' })
    expect(await wf(['cancel', 'order-done'])).toMatchObject({
      code: 0,
      stdout: 'order-done is SUCCESSFUL: it had finished, nothing to cancel\n',
    })
  })

  it('getMetadata and wf show give a cancel its runner has not acknowledged yet: when, by whom, waiting for the runner', async () => {
    held = gate()
    // The owner looks for requests at its heartbeat, every 30 s: not within this test.
    const owner = new Runtime(place.storage, { leaseTtlMs: 60_000, heartbeatMs: 30_000 })
    const handle = await owner.runAsync(waits(1), { workflowId: 'order-pending' })
    // Another runtime asks it to stop, and gives up waiting after its own lease period.
    const canceler = new WorkflowClient({ storage: place.storage, leaseTtlMs: 100, heartbeatMs: 50 })
    await expect(canceler.cancel('order-pending')).rejects.toBeInstanceOf(CancelNotAcknowledgedError)
    const client = new WorkflowClient({ storage: place.storage })
    const meta = await client.getMetadata('order-pending')
    expect(meta).toMatchObject({
      status: 'RUNNING',
      runner: owner.runner,
      cancelRequested: { at: expect.any(Number), by: canceler.runtime.runner },
    })
    const at = meta.cancelRequested?.at ?? 0
    expect(Math.abs(Date.now() - at)).toBeLessThan(10_000)

    const shown = await wf(['show', 'order-pending'])
    expect(shown.code).toBe(0)
    const by = canceler.runtime.runner
    expect(shown.stdout).toMatch(
      new RegExp(
        `^cancel +requested at \\d{4}-\\d\\d-\\d\\d [\\d:]+ by ${by.host}:${by.pid}, waiting for the runner$`,
        'm',
      ),
    )
    const json = JSON.parse((await wf(['--json', 'show', 'order-pending'])).stdout)
    expect(json.workflow.cancelRequested).toEqual({ at, by })

    // Acknowledged (the step's end finds the request), it is no longer pending.
    held.open()
    await handle.result().catch(() => {})
    await owner.idle()
    await vi.waitFor(async () => expect(await client.getStatus('order-pending')).toBe('CANCELED'))
    expect((await client.getMetadata('order-pending')).cancelRequested).toBeUndefined()
    expect((await wf(['show', 'order-pending'])).stdout).not.toMatch(/^cancel /m)
  })
})
