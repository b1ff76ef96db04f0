// Schedule policies across real `wf worker` processes, on a real folder and on the real S3 server
// (when WF_S3_ENDPOINT is set): overlap 'skip', 'buffer-one' and 'allow' with runs longer than the
// interval; catch-up 'latest' when a worker stops and another starts later; pause and resume from
// another process. Per-second schedules (fixtures/schedule-policies.mjs): a few seconds each. The
// runs' steps log when they start and end, so the test sees which runs overlapped.

import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WorkflowClient } from './client.js'
import { type Child, killAll, spawnChild, stopChild } from './test-support/child-process.js'
import { bin, fixtures, runWf } from './test-support/cli-run.js'
import { openFolderPlace, openS3Place, type Place, s3, warnIfS3Skipped } from './test-support/places.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const module = join(fixtures, 'schedule-policies.mjs')

interface Backend {
  name: string
  available: boolean
  place(app: string): Promise<Place>
}

const backends: Backend[] = [
  {
    name: 'folder',
    available: true,
    async place(app) {
      // `wf --storage` is given the folder's plain path here, not a file URL.
      const place = await openFolderPlace('data-', { parent: app })
      return { ...place, uri: place.dir }
    },
  },
  { name: 'S3', available: s3.available, place: () => openS3Place('wf-sched') },
]

warnIfS3Skipped('schedules-processes.test.ts')

interface ScheduleLine {
  event: string
  scheduleId: string
  outcome?: 'FIRED' | 'SKIPPED' | 'BUFFERED'
  tick: string
  runId?: string
  reason?: string
  count?: number
  next?: string
}

/** The schedule events a `wf --json worker` printed, of one schedule. */
function events(worker: Child, scheduleId: string, event = 'schedule'): ScheduleLine[] {
  return worker
    .lines()
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ScheduleLine)
    .filter((e) => e.event === event && e.scheduleId === scheduleId)
}

const ticksOf = (lines: ScheduleLine[], outcome: ScheduleLine['outcome']): number[] =>
  lines.filter((e) => e.outcome === outcome).map((e) => Date.parse(e.tick))

/** The runs' start and end times from the step log, by run id. */
function runsLogged(log: string): Map<string, { start: number; end?: number }> {
  const runs = new Map<string, { start: number; end?: number }>()
  if (!existsSync(log)) return runs
  for (const line of readFileSync(log, 'utf8').trim().split('\n').filter(Boolean)) {
    const [runId, what, at] = line.split(' ') as [string, string, string]
    if (what === 'start') runs.set(runId, { start: Number(at) })
    else {
      const run = runs.get(runId)
      if (run) run.end = Number(at)
    }
  }
  return runs
}

/** The most runs of `scheduleId` running at one moment. */
function mostAtOnce(runs: Map<string, { start: number; end?: number }>, scheduleId: string): number {
  const mine = [...runs].filter(([id]) => id.startsWith(`${scheduleId}@`)).map(([, r]) => r)
  let most = 0
  for (const r of mine) {
    const atOnce = mine.filter((o) => o.start <= r.start && (o.end ?? Number.POSITIVE_INFINITY) > r.start)
    most = Math.max(most, atOnce.length)
  }
  return most
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
}

describe.each(backends)('schedules across wf worker processes ($name)', (backend) => {
  let app: string
  const places: Place[] = []

  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'wf-schedules-processes-'))
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
    await symlink(s3.packageDir, join(app, 'node_modules/@wf/storage-s3'), 'dir')
  })
  afterAll(async () => {
    await killAll()
    for (const place of places) await place.close()
    await rm(app, { recursive: true, force: true, maxRetries: 3 })
  })

  async function place(): Promise<Place> {
    const made = await backend.place(app)
    places.push(made)
    return made
  }

  function worker(where: Place, set: string, log: string, flags: string[] = ['--json']): Child {
    return spawnChild(
      [
        bin,
        '--storage',
        where.uri,
        ...flags,
        'worker',
        '--import',
        module,
        '--poll-interval',
        '100',
        '--concurrency',
        '8',
        '--lease-ttl',
        '2000',
        '--on-code-change',
        'ignore',
      ],
      { cwd: app, env: { NO_COLOR: '', WF_STORAGE: '', WF_SCHEDULE_SET: set, WF_SCHEDULE_LOG: log } },
    )
  }

  it.skipIf(!backend.available)(
    "overlap 'skip' skips ticks while a run longer than the interval goes on, 'buffer-one' runs the newest waiting tick after it, 'allow' runs them side by side",
    async () => {
      const where = await place()
      const log = join(app, `overlap-${backend.name}.log`)
      const w = worker(where, 'overlap', log)
      await until(
        () =>
          ticksOf(events(w, 'slow-skip'), 'FIRED').length >= 2 &&
          ticksOf(events(w, 'slow-buffer-one'), 'FIRED').length >= 3,
        30_000,
        'two runs of slow-skip and three of slow-buffer-one',
      )
      expect((await stopChild(w, 'SIGTERM')).code).toBe(0)
      const runs = runsLogged(log)

      // skip: a tick fires only once the previous run ended (2.5 s): the ticks between are skipped.
      const skip = events(w, 'slow-skip')
      const skipFired = ticksOf(skip, 'FIRED')
      for (let i = 1; i < skipFired.length; i++)
        expect((skipFired[i] as number) - (skipFired[i - 1] as number)).toBeGreaterThanOrEqual(3000)
      const skipped = skip.filter((e) => e.outcome === 'SKIPPED')
      expect(skipped.length).toBeGreaterThanOrEqual(2)
      expect(skipped.every((e) => e.reason === 'overlap')).toBe(true)
      expect(mostAtOnce(runs, 'slow-skip')).toBe(1)

      // buffer-one: ticks wait (BUFFERED), one at a time; each run after the first is a buffered tick.
      const buffer = events(w, 'slow-buffer-one')
      const buffered = ticksOf(buffer, 'BUFFERED')
      const bufferFired = ticksOf(buffer, 'FIRED')
      for (const tick of bufferFired.slice(1)) expect(buffered).toContain(tick)
      expect(buffer.some((e) => e.outcome === 'SKIPPED' && e.reason === 'overlap')).toBe(true)
      expect(mostAtOnce(runs, 'slow-buffer-one')).toBe(1)
      // Back to back: a buffered run starts soon after the previous one ended.
      const order = [...runs]
        .filter(([id]) => id.startsWith('slow-buffer-one@'))
        .map(([, r]) => r)
        .sort((a, b) => a.start - b.start)
      for (let i = 1; i < order.length; i++)
        expect(
          (order[i] as { start: number }).start - ((order[i - 1] as { end?: number }).end ?? 0),
        ).toBeLessThan(2000)

      // allow: every tick fires, and runs overlap.
      const allowFired = ticksOf(events(w, 'slow-allow'), 'FIRED')
      expect(allowFired.length).toBeGreaterThanOrEqual(4)
      for (let i = 1; i < allowFired.length; i++)
        expect((allowFired[i] as number) - (allowFired[i - 1] as number)).toBe(1000)
      expect(mostAtOnce(runs, 'slow-allow')).toBeGreaterThanOrEqual(2)

      // Once each, and every fired tick has its workflow.
      const client = new WorkflowClient({ storage: where.storage })
      const stored = (await client.listAll()).map((s) => s.workflowId)
      for (const id of ['slow-skip', 'slow-buffer-one', 'slow-allow']) {
        const fired = events(w, id).filter((e) => e.outcome === 'FIRED')
        expect(new Set(fired.map((e) => e.tick)).size).toBe(fired.length)
        for (const e of fired) expect(stored).toContain(e.runId)
      }
    },
    60_000,
  )

  it.skipIf(!backend.available)(
    "catch-up 'latest': a worker started after downtime runs the most recent missed tick once and records the others skipped",
    async () => {
      const where = await place()
      const log = join(app, `catch-up-${backend.name}.log`)
      const first = worker(where, 'steady', log)
      // It says what it declares, with the next fire time.
      const declared = JSON.parse(await first.line(/"event":"declared"/)) as ScheduleLine
      expect(declared).toMatchObject({ scheduleId: 'steady', description: 'Every second', overlap: 'allow' })
      expect(Math.abs(Date.parse(declared.next as string) - Date.now())).toBeLessThan(3000)
      await until(() => ticksOf(events(first, 'steady'), 'FIRED').length >= 2, 20_000, 'two ticks')
      expect((await stopChild(first, 'SIGTERM')).code).toBe(0)
      const before = ticksOf(events(first, 'steady'), 'FIRED')
      const lastBefore = Math.max(...before)
      // Down for 3.5 s: at least two ticks pass with no worker and before the next one's first poll.
      await sleep(3500)
      const second = worker(where, 'steady', log)
      await until(() => ticksOf(events(second, 'steady'), 'FIRED').length >= 2, 20_000, 'two ticks after')
      await stopChild(second, 'SIGTERM')
      const after = events(second, 'steady')
      const firstFired = after.find((e) => e.outcome === 'FIRED') as ScheduleLine
      const caughtUp = Date.parse(firstFired.tick)
      // The most recent missed tick, once; the ones before it skipped as missed, in one entry,
      // decided in the second before the next tick.
      // (3.5 s after the first worker exited, which may have fired its last tick as it stopped.)
      expect(caughtUp - lastBefore).toBeGreaterThanOrEqual(3000)
      const missed = after.filter((e) => e.outcome === 'SKIPPED' && e.reason === 'missed')
      expect(missed).toEqual([
        expect.objectContaining({
          tick: new Date(lastBefore + 1000).toISOString(),
          count: (caughtUp - lastBefore) / 1000 - 1,
        }),
      ])
      const decidedAt = Date.parse((missed[0] as ScheduleLine & { time: string }).time)
      expect(decidedAt).toBeGreaterThanOrEqual(caughtUp)
      expect(decidedAt - caughtUp).toBeLessThan(2000)
      const fired = [...before, ...ticksOf(after, 'FIRED')]
      expect(new Set(fired).size).toBe(fired.length)
      // Runs exist for the fired ticks only.
      const client = new WorkflowClient({ storage: where.storage })
      const stored = (await client.listAll())
        .map((s) => s.workflowId)
        .filter((id) => id.startsWith('steady@'))
        .sort()
      expect(stored).toEqual(fired.map((t) => `steady@${new Date(t).toISOString()}`).sort())
      const recorded = (await client.getSchedule('steady')).skipped.filter((s) => s.reason === 'missed')
      expect(recorded).toEqual([expect.objectContaining({ tick: lastBefore + 1000, until: caughtUp - 1000 })])
    },
    60_000,
  )

  it.skipIf(!backend.available)(
    'pause from another process stops the ticks; resume starts them again, the paused ticks recorded skipped',
    async () => {
      const where = await place()
      const log = join(app, `pause-${backend.name}.log`)
      // As a person reads it: one line per declared schedule, then one per tick fired.
      const w = worker(where, 'steady', log, [])
      expect(await w.line(/ schedule {3}steady:/)).toMatch(
        /schedule {3}steady: Every second \(overlap allow, catch-up latest\), next \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/,
      )
      const fired = () =>
        w
          .lines()
          .map((l) => / fired +steady@(\S+)$/.exec(l)?.[1])
          .filter((t): t is string => t !== undefined)
          .map((t) => Date.parse(t))
      await until(() => fired().length >= 2, 20_000, 'two ticks')
      const wf = (args: string[]) => runWf(['--storage', where.uri, ...args], { cwd: app })
      expect((await wf(['schedules', 'pause', 'steady'])).stdout).toBe('steady paused\n')
      const pausedAt = Date.now()
      await sleep(3000)
      expect((await wf(['schedules', 'resume', 'steady'])).stdout).toBe('steady active\n')
      const resumedAt = Date.now()
      // The worker reads a paused schedule's record once a lease period (2 s here).
      await until(() => fired().some((t) => t > resumedAt), 20_000, 'a tick after the resume')
      await stopChild(w, 'SIGTERM')
      const ticks = fired()
      // No tick between the pause and the resume (a tick decided before the pause may still print).
      expect(ticks.filter((t) => t > pausedAt && t <= resumedAt - 1000)).toEqual([])
      expect(new Set(ticks).size).toBe(ticks.length)
      const info = await new WorkflowClient({ storage: where.storage }).getSchedule('steady')
      const paused = info.skipped.filter((s) => s.reason === 'paused')
      expect(paused).toHaveLength(1)
      expect(paused[0]?.count).toBeGreaterThanOrEqual(2)
      expect(paused[0]?.until).toBeLessThanOrEqual(resumedAt)
    },
    60_000,
  )
})
