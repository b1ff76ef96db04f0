// Durable sleep across processes (real child processes killed with SIGKILL, on a real folder and on
// the real S3 server): a sleeping workflow whose process dies is woken by a worker started later,
// at the committed wake time, without running the steps before the sleep again; a parked workflow
// (no process holds it) is woken by a worker at its time; 200 parked workflows due at one moment
// and three workers polling them: each wakes exactly once. Step bodies log to a file
// (fixtures/sleep-child.mjs), so the test sees which process ran what, and when.
// Over 400 lines: each process scenario with its children, log reading and timing checks.

import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { storeKeys } from '@wf/core'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { WorkflowClient } from './client.js'
import { openFolderPlace, openS3Place, type Place, s3, warnIfS3Skipped } from './test-support/places.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const childScript = join(here, 'test-support/fixtures/sleep-child.mjs')

/** How long the workflows of the kill tests sleep: long enough for a worker process to start. */
const SLEEP_MS = 4000
/** The workers' poll interval. */
const POLL_MS = 200

interface Backend {
  name: string
  available: boolean
  open(): Promise<Place>
}

const folder: Backend = { name: 'folder', available: true, open: () => openFolderPlace('wf-sleep-') }
const bucket: Backend = { name: 'S3', available: s3.available, open: () => openS3Place('wf-sleep') }

warnIfS3Skipped('sleep-processes.test.ts')

interface Child {
  proc: ChildProcess
  out(): string
  err(): string
  /** Resolves once the child printed a line starting with `prefix` (rejects if it exits first). */
  printed(prefix: string, timeoutMs?: number): Promise<string>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGKILLs it and waits until it is gone. */
  kill(): Promise<void>
}

/** One line of the step log: which step, in which process, of which workflow, and its times. */
interface Ran {
  step: 'a' | 'b'
  pid: number
  workflowId: string
  /** a: when its body ran; b: when it started. */
  at: number
  /** b: the wake time it was given. */
  wake: number
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each([folder, bucket])('durable sleep across processes, on $name', (backend) => {
  let place: Place
  let work: string
  let client: WorkflowClient
  let seq = 0
  const spawned: ChildProcess[] = []

  beforeAll(async () => {
    if (!backend.available) return
    place = await backend.open()
    work = await mkdtemp(join(tmpdir(), 'wf-sleep-work-'))
    client = new WorkflowClient({ storage: place.storage })
  })
  // A failed test leaves its processes behind: a worker of one would wake the next one's workflows.
  afterEach(async () => {
    const alive = spawned.splice(0).filter((proc) => proc.exitCode === null && proc.signalCode === null)
    await Promise.all(
      alive.map((proc) => {
        const gone = new Promise((resolve) => proc.once('close', resolve))
        proc.kill('SIGKILL')
        return gone
      }),
    )
  })
  afterAll(async () => {
    if (!backend.available) return
    await client.close()
    await place.close()
    await rm(work, { recursive: true, force: true })
  })

  /** A fresh step log for one test: `read()` gives the lines of the workflows `mine` picks. */
  function stepLog(mine: (workflowId: string) => boolean): { path: string; read(): Ran[] } {
    const path = join(work, `steps-${++seq}.log`)
    writeFileSync(path, '')
    const read = (): Ran[] =>
      readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line): Ran => {
          const [step, pid, workflowId, first, second] = line.split(' ')
          return step === 'a'
            ? { step, pid: Number(pid), workflowId: workflowId ?? '', at: Number(first), wake: Number.NaN }
            : {
                step: 'b',
                pid: Number(pid),
                workflowId: workflowId ?? '',
                at: Number(second),
                wake: Number(first),
              }
        })
        .filter((ran) => mine(ran.workflowId))
    return { path, read }
  }

  function child(args: string[], log: string, env: Record<string, string> = {}): Child {
    const proc = spawn(process.execPath, [childScript, args[0] as string, place.uri, ...args.slice(1)], {
      env: {
        ...process.env,
        WF_SLEEP_LOG: log,
        WF_SLEEP_MS: String(SLEEP_MS),
        ...s3.childEnv,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    spawned.push(proc)
    let out = ''
    let err = ''
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
    })
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString()
    })
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.once('close', (code, signal) => resolve({ code, signal })),
    )
    const printed = async (prefix: string, timeoutMs = 20_000): Promise<string> => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const line = out.split('\n').find((l) => l.startsWith(prefix))
        if (line !== undefined) return line
        if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline)
          throw new Error(`the child did not print "${prefix}": stdout ${out} stderr ${err}`)
        await pause(10)
      }
    }
    const kill = async () => {
      proc.kill('SIGKILL')
      await exited
    }
    return { proc, out: () => out, err: () => err, printed, exited, kill }
  }

  /** The due markers (`due/<time>/<id>`) of the workflows `mine` picks. */
  async function dueOf(mine: (workflowId: string) => boolean): Promise<string[]> {
    return (await keysUnder(storeKeys.duePrefix)).filter((key) => mine(key.slice(key.lastIndexOf('/') + 1)))
  }

  /** The keys under `prefix`, every page. */
  async function keysUnder(prefix: string): Promise<string[]> {
    const keys: string[] = []
    let after: string | undefined
    do {
      const page = await place.storage.list(prefix, after === undefined ? {} : { after })
      keys.push(...page.keys)
      after = page.next
    } while (after !== undefined)
    return keys
  }

  it.skipIf(!backend.available).each(['continuation', 'node'] as const)(
    'a workflow held through its sleep (parkAfterMs: Infinity, sleep as a %s) whose process is SIGKILLed is woken by a later worker within a second of its committed wake time, and the step before the sleep does not run again',
    { timeout: 45_000 },
    async (shape) => {
      const id = `held-${shape}`
      const log = stepLog((workflowId) => workflowId === id)
      const first = child(['run', id, 'Infinity', shape], log.path)
      await vi.waitFor(() => expect(log.read()).toHaveLength(1), { timeout: 20_000, interval: 10 })
      const aEnd = (log.read()[0] as Ran).at
      // Well into the sleep: held, not parked.
      await pause(1000)
      const { record } = await (await client.runtime.store()).requireWorkflow(id)
      expect(record.status).toBe('RUNNING')
      expect(record.owner?.pid).toBe(first.proc.pid)
      expect(await dueOf((w) => w === id)).toEqual([])
      await first.kill()
      const killedAt = Date.now()
      expect(await client.getStatus(id)).toBe('RESUMABLE')

      const worker = child(['worker', String(POLL_MS), '4'], log.path)
      await worker.printed('ready')
      await vi.waitFor(() => expect(log.read().filter((r) => r.step === 'b')).toHaveLength(1), {
        timeout: 20_000,
        interval: 20,
      })
      const ran = log.read()
      const b = ran.find((r) => r.step === 'b') as Ran
      expect(ran.filter((r) => r.step === 'a').map((r) => r.pid)).toEqual([first.proc.pid])
      expect(b.pid).toBe(worker.proc.pid)
      // The wake time was computed by the first process (a restarted timer would end at least
      // SLEEP_MS after the kill) and the worker woke it within a second of it.
      expect(b.wake).toBeGreaterThanOrEqual(aEnd + SLEEP_MS - 100)
      expect(b.wake).toBeLessThan(killedAt + SLEEP_MS - 500)
      expect(b.at).toBeGreaterThanOrEqual(b.wake)
      expect(b.at - b.wake).toBeLessThan(1000)
      expect(await client.runtime.waitForResult(id, 50)).toBe(b.wake)
      expect(await client.getStatus(id)).toBe('SUCCESSFUL')
      await worker.kill()
    },
  )

  it.skipIf(!backend.available)(
    'a parked workflow (parkAfterMs: 0) reads PENDING with waitingFor, holds no marker, and a worker started after its process was killed wakes it at its time',
    { timeout: 45_000 },
    async () => {
      const id = 'parked-killed'
      const log = stepLog((workflowId) => workflowId === id)
      const first = child(['run', id, '0', 'continuation'], log.path)
      const store = await client.runtime.store()
      await vi.waitFor(
        async () => expect((await store.requireWorkflow(id)).record.parkedUntil).toBeGreaterThan(0),
        { timeout: 20_000, interval: 20 },
      )
      const aEnd = (log.read()[0] as Ran).at
      await first.kill()

      const { record } = await store.requireWorkflow(id)
      const until = record.parkedUntil as number
      expect(until).toBeGreaterThanOrEqual(aEnd + SLEEP_MS - 100)
      expect(until).toBeLessThan(aEnd + SLEEP_MS + 1000)
      expect(record).toMatchObject({ status: 'PENDING', parkedSteps: [expect.any(String)] })
      expect(record.owner).toBeUndefined()
      expect(record.startBatch).toBeUndefined()
      expect(await keysUnder(storeKeys.index('PENDING', id))).toEqual([])
      expect(await keysUnder(storeKeys.index('RUNNING', id))).toEqual([])
      expect(await dueOf((w) => w === id)).toEqual([`due/${String(until).padStart(13, '0')}/${id}`])
      expect(await client.getStatus(id)).toBe('PENDING')
      expect((await client.getMetadata(id)).waitingFor).toEqual({ until, steps: record.parkedSteps })
      expect(await client.listAll('PENDING')).toContainEqual(
        expect.objectContaining({ workflowId: id, status: 'PENDING' }),
      )
      expect(await client.listAll('RESUMABLE')).not.toContainEqual(
        expect.objectContaining({ workflowId: id }),
      )

      const worker = child(['worker', String(POLL_MS), '4'], log.path)
      await worker.printed('ready')
      expect(await client.runtime.waitForResult(id, 50)).toBe(until)
      const ran = log.read()
      expect(ran.filter((r) => r.step === 'a').map((r) => r.pid)).toEqual([first.proc.pid])
      const b = ran.filter((r) => r.step === 'b')
      expect(b).toHaveLength(1)
      expect(b[0]?.pid).toBe(worker.proc.pid)
      expect(b[0]?.wake).toBe(until)
      expect(b[0]?.at).toBeGreaterThanOrEqual(until)
      expect((b[0]?.at as number) - until).toBeLessThan(POLL_MS + 1500)
      expect(await dueOf((w) => w === id)).toEqual([])
      await worker.kill()
    },
  )

  it.skipIf(!backend.available)(
    'a parked workflow whose run() is awaited in a live process, with a worker polling too, wakes once and run() resolves with its wake time',
    { timeout: 45_000 },
    async () => {
      const id = 'parked-live'
      const log = stepLog((workflowId) => workflowId === id)
      // wakeAheadMs 0: a worker claiming ahead would take the workflow as soon as it parked (it is
      // due within the default window), and the test could miss it parked.
      const worker = child(['worker', String(POLL_MS), '4', '0'], log.path)
      await worker.printed('ready')
      const first = child(['run', id, '0', 'node'], log.path)
      const store = await client.runtime.store()
      await vi.waitFor(
        async () => expect((await store.requireWorkflow(id)).record.parkedUntil).toBeGreaterThan(0),
        { timeout: 20_000, interval: 20 },
      )
      const until = (await store.requireWorkflow(id)).record.parkedUntil as number
      const output = await first.printed('output ', 30_000)
      expect(output).toBe(`output ${until}`)
      expect((await first.exited).code, first.err()).toBe(0)
      const b = log.read().filter((r) => r.step === 'b')
      expect(b, `first ${first.proc.pid}, worker ${worker.proc.pid}`).toHaveLength(1)
      expect(b[0]?.wake).toBe(until)
      expect((b[0]?.at as number) - until).toBeLessThan(POLL_MS + 1500)
      expect(await client.getStatus(id)).toBe('SUCCESSFUL')
      await worker.kill()
    },
  )

  it.skipIf(!backend.available).each(['0', 'Infinity'] as const)(
    'cancel of a sleeping workflow (parkAfterMs: %s) whose run() is awaited in another process ends it CANCELED without waiting for the timer, and no process runs the step after the sleep',
    { timeout: 45_000 },
    async (parkAfterMs) => {
      const id = `cancel-${parkAfterMs}`
      const log = stepLog((workflowId) => workflowId === id)
      // wakeAheadMs 0: the workflow stays parked (not claimed ahead by the worker) until it is canceled.
      const worker = child(['worker', String(POLL_MS), '4', '0'], log.path)
      await worker.printed('ready')
      const first = child(['run', id, parkAfterMs, 'continuation'], log.path)
      const store = await client.runtime.store()
      await vi.waitFor(() => expect(log.read()).toHaveLength(1), { timeout: 20_000, interval: 10 })
      const aEnd = (log.read()[0] as Ran).at
      if (parkAfterMs === '0') {
        await vi.waitFor(
          async () => expect((await store.requireWorkflow(id)).record.parkedUntil).toBeGreaterThan(0),
          { timeout: 10_000, interval: 20 },
        )
      } else {
        await pause(500)
      }
      // The canceler waits for the runner holding it to acknowledge (within its 500 ms heartbeat).
      const canceler = new WorkflowClient({ storage: place.storage, leaseTtlMs: 3000, heartbeatMs: 500 })
      await expect(canceler.cancel(id)).resolves.toBe('CANCELED')
      const ended = await first.printed('error ', 10_000)
      expect(ended.split(' ')[1]).toBe('WF_CANCELED')
      expect(Number(ended.split(' ')[2])).toBeLessThan(aEnd + SLEEP_MS)
      expect(await client.getStatus(id)).toBe('CANCELED')
      expect(await dueOf((w) => w === id)).toEqual([])
      // Past the wake time and a poll of the worker: still nothing ran after the sleep.
      await pause(Math.max(0, aEnd + SLEEP_MS - Date.now()) + 2 * POLL_MS + 500)
      expect(log.read().map((r) => r.step)).toEqual(['a'])
      expect(await client.getStatus(id)).toBe('CANCELED')
      await worker.kill()
    },
  )

  it.skipIf(!backend.available)(
    'resume() in another process of a parked workflow whose process was killed waits until it is due, wakes it there and resolves with its wake time',
    { timeout: 45_000 },
    async () => {
      const id = 'parked-resumed'
      const log = stepLog((workflowId) => workflowId === id)
      const first = child(['run', id, '0', 'node'], log.path)
      const store = await client.runtime.store()
      await vi.waitFor(
        async () => expect((await store.requireWorkflow(id)).record.parkedUntil).toBeGreaterThan(0),
        { timeout: 20_000, interval: 20 },
      )
      await first.kill()
      const until = (await store.requireWorkflow(id)).record.parkedUntil as number
      const resumer = child(['resume', id], log.path)
      const resuming = Number((await resumer.printed('resuming ')).split(' ')[1])
      expect(resuming).toBeLessThan(until)
      const [, output, at] = (await resumer.printed('output ', 30_000)).split(' ')
      expect(Number(output)).toBe(until)
      expect(Number(at)).toBeGreaterThanOrEqual(until)
      const b = log.read().filter((r) => r.step === 'b')
      expect(b).toHaveLength(1)
      expect(b[0]?.pid).toBe(resumer.proc.pid)
      expect(b[0]?.at).toBeGreaterThanOrEqual(until)
      expect((b[0]?.at as number) - until).toBeLessThan(1000)
      expect((await resumer.exited).code, resumer.err()).toBe(0)
      expect(await client.getStatus(id)).toBe('SUCCESSFUL')
    },
  )

  it.skipIf(!backend.available)(
    'workflows whose process died between their due markers and their parked records are all woken by a worker with fewer slots than them, started after their wake time',
    { timeout: 45_000 },
    async () => {
      const COUNT = 6
      const ids = Array.from({ length: COUNT }, (_, i) => `stall-${i}`)
      const log = stepLog((workflowId) => workflowId.startsWith('stall-'))
      const wakeAt = Date.now() + 3000
      // Its parked records are never written: each workflow has its due marker, and a record that
      // still says RUNNING under the killed process.
      const parker = child(['park', String(COUNT), String(wakeAt), 'stall-'], log.path, {
        WF_SLEEP_STALL_PARKING: '1',
      })
      await parker.printed('started')
      await vi.waitFor(async () => expect(await dueOf((w) => w.startsWith('stall-'))).toHaveLength(COUNT), {
        timeout: 10_000,
        interval: 50,
      })
      await parker.kill()
      for (const id of ids) expect(await client.getStatus(id)).toBe('RESUMABLE')
      await pause(Math.max(0, wakeAt - Date.now()) + 200)

      // One slot: each poll can try two workflows.
      child(['worker', String(POLL_MS), '1'], log.path)
      await vi.waitFor(() => expect(log.read().length).toBeGreaterThanOrEqual(COUNT), {
        timeout: 20_000,
        interval: 100,
      })
      const ran = log.read()
      expect(ran.map((r) => r.workflowId).sort()).toEqual([...ids].sort())
      for (const r of ran) expect(r.wake).toBe(wakeAt)
      for (const id of ids) expect(await client.runtime.waitForResult(id, 50)).toBe(wakeAt)
      await vi.waitFor(async () => expect(await dueOf((w) => w.startsWith('stall-'))).toEqual([]), {
        timeout: 5000,
      })
    },
  )

  it.skipIf(!backend.available)(
    'a worker SIGKILLed while it holds workflows it claimed ahead of their wake time: another worker wakes each exactly once, at its time and late by at most the lease',
    { timeout: 60_000 },
    async () => {
      const COUNT = 20
      const ids = Array.from({ length: COUNT }, (_, i) => `ahead-${i}`)
      const log = stepLog((workflowId) => workflowId.startsWith('ahead-'))
      const wakeAt = Date.now() + (backend.name === 'S3' ? 12_000 : 8000)
      const parker = child(['park', String(COUNT), String(wakeAt), 'ahead-'], log.path)
      await parker.printed('parked', wakeAt - Date.now() - 3000)
      await parker.kill()
      // Claims everything it lists (its window reaches past the wake time), and holds it.
      const first = child(['worker', String(POLL_MS), '64', '60000'], log.path)
      await vi.waitFor(
        () =>
          expect(
            first
              .out()
              .split('\n')
              .filter((l) => l.startsWith('took ahead-')),
          ).toHaveLength(COUNT),
        { timeout: Math.max(1000, wakeAt - Date.now() - 1000), interval: 20 },
      )
      const store = await client.runtime.store()
      const held = await Promise.all(ids.map(async (id) => (await store.requireWorkflow(id)).record))
      expect(held.filter((r) => r.status !== 'RUNNING' || r.owner?.pid !== first.proc.pid)).toEqual([])
      expect(await dueOf((w) => w.startsWith('ahead-'))).toEqual([])
      await first.kill()
      expect(Date.now()).toBeLessThan(wakeAt)
      expect(log.read()).toEqual([])

      const second = child(['worker', String(POLL_MS), '64'], log.path)
      await vi.waitFor(() => expect(log.read().length).toBeGreaterThanOrEqual(COUNT), {
        timeout: backend.name === 'S3' ? 40_000 : 20_000,
        interval: 100,
      })
      // A duplicate would come a poll later.
      await pause(2 * POLL_MS + 500)
      const ran = log.read()
      const perId = new Map<string, number>()
      for (const r of ran) perId.set(r.workflowId, (perId.get(r.workflowId) ?? 0) + 1)
      expect([...perId.entries()].filter(([, n]) => n !== 1)).toEqual([])
      expect([...perId.keys()].sort()).toEqual([...ids].sort())
      for (const r of ran) {
        expect(r.pid).toBe(second.proc.pid)
        expect(r.wake).toBe(wakeAt)
        expect(r.at).toBeGreaterThanOrEqual(wakeAt)
        // The children's lease is 3 s (the killed worker's runs out by then at the latest), and a
        // claim, a poll and a loaded gateway's commits on top.
        expect(r.at - wakeAt).toBeLessThan(backend.name === 'S3' ? 10_000 : 5000)
      }
      for (const id of ids) expect(await client.runtime.waitForResult(id, 50)).toBe(wakeAt)
      await second.kill()
    },
  )

  it.skipIf(!backend.available)(
    'three worker processes and 200 workflows parked until one moment: the step after the sleep runs exactly once for each, and all end SUCCESSFUL',
    { timeout: 150_000 },
    async () => {
      const COUNT = 200
      const ids = Array.from({ length: COUNT }, (_, i) => `park-${i}`)
      const log = stepLog((workflowId) => workflowId.startsWith('park-'))
      // Parking 200 workflows takes a few seconds on S3: the moment is far enough to park them all.
      const wakeAt = Date.now() + (backend.name === 'S3' ? 10_000 : 6000)
      const parker = child(['park', String(COUNT), String(wakeAt), 'park-'], log.path)
      await parker.printed('parked', wakeAt - Date.now() - 1000)
      await parker.kill()
      const store = await client.runtime.store()
      const records = await Promise.all(ids.map(async (id) => (await store.requireWorkflow(id)).record))
      expect(records.filter((r) => r.parkedUntil !== wakeAt || r.status !== 'PENDING')).toEqual([])
      expect(await dueOf((w) => w.startsWith('park-'))).toHaveLength(COUNT)
      const workers = [0, 1, 2].map(() => child(['worker', String(POLL_MS), '64'], log.path))
      for (const w of workers) await w.printed('ready')
      expect(Date.now()).toBeLessThan(wakeAt)
      expect(log.read()).toEqual([])

      // On S3 a gateway busy with other tests' processes (the 1,000-event fan-outs run alongside)
      // drained 100 of them in 30 s: the time is generous, what is checked is exactly once.
      await vi.waitFor(() => expect(log.read().length).toBeGreaterThanOrEqual(COUNT), {
        timeout: backend.name === 'S3' ? 100_000 : 30_000,
        interval: 100,
      })
      // A duplicate would come from a second worker taking a workflow already woken: give it time.
      await pause(2 * POLL_MS + 500)
      const ran = log.read()
      const perId = new Map<string, number>()
      for (const r of ran) perId.set(r.workflowId, (perId.get(r.workflowId) ?? 0) + 1)
      expect([...perId.entries()].filter(([, n]) => n !== 1)).toEqual([])
      expect([...perId.keys()].sort()).toEqual([...ids].sort())
      for (const r of ran) {
        expect(r.wake).toBe(wakeAt)
        expect(r.at).toBeGreaterThanOrEqual(wakeAt)
      }
      const statuses = await Promise.all(
        ids.map(async (id) => (await store.requireWorkflow(id)).record.status),
      )
      expect(new Set(statuses)).toEqual(new Set(['SUCCESSFUL']))
      expect(await dueOf((w) => w.startsWith('park-'))).toEqual([])
      for (const w of workers) await w.kill()
    },
  )
})
