// Schedules across real processes on a folder: three `wf worker` processes fire a per-second
// schedule once per tick with no tick missing, also when the worker that fired a tick is
// SIGKILLed; and the `wf schedules` commands.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createWorker, MemoryStorage, schedule, step, unschedule } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { WorkflowClient } from './index.js'
import { bin, fixtures, runWf } from './test-support/cli-run.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const module = join(fixtures, 'schedule-steps.mjs')

interface Fired {
  pid: number
  tick: string
  runId: string
}

describe('a schedule no worker declares', () => {
  it('says it is not declared any more, by which worker, since when', async () => {
    const storage = new MemoryStorage()
    const client = new WorkflowClient({ storage })
    const noop = step('schedules-client.noop', () => 1)
    const definition = schedule('declared-once', { every: '1h' }, () => noop())
    try {
      const worker = createWorker({
        storage,
        schedules: [definition],
        handleSignals: false,
        pollIntervalMs: 20,
      })
      await vi.waitFor(async () =>
        expect((await client.listSchedules()).map((s) => s.scheduleId)).toEqual(['declared-once']),
      )
      expect((await client.getSchedule('declared-once')).declared).toBe(true)
      const stoppedAt = Date.now()
      await worker.stop()
      const after = await client.getSchedule('declared-once')
      expect(after.declared).toBe(false)
      expect(after.workers).toEqual([])
      expect(after.undeclared?.pid).toBe(process.pid)
      expect(after.undeclared?.since).toBeGreaterThanOrEqual(stoppedAt)
    } finally {
      unschedule('declared-once')
      await client.runtime.close()
    }
  })
})

describe('schedules fired by wf worker processes', () => {
  let app: string
  let data: string
  const children: ChildProcess[] = []

  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'wf-schedules-'))
    data = join(app, 'data')
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
  })
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL')
    await rm(app, { recursive: true, force: true })
  })

  function worker(fired: Fired[]): ChildProcess {
    const child = spawn(
      process.execPath,
      [
        bin,
        '--storage',
        data,
        '--json',
        'worker',
        '--import',
        module,
        '--poll-interval',
        '100',
        '--concurrency',
        '8',
      ],
      {
        cwd: app,
        env: { ...process.env, WF_SCHEDULE_LOG: join(app, 'log') },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    let buffer = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8')
      let newline = buffer.indexOf('\n')
      while (newline !== -1) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        newline = buffer.indexOf('\n')
        const event = JSON.parse(line) as { event: string; outcome?: string; runId?: string; tick?: string }
        if (
          event.event === 'schedule' &&
          event.outcome === 'FIRED' &&
          event.runId?.startsWith('every-second@')
        )
          fired.push({ pid: child.pid as number, tick: event.tick as string, runId: event.runId })
      }
    })
    children.push(child)
    return child
  }

  it('fires each tick exactly once with three workers, also when the one that fired is SIGKILLed', async () => {
    const fired: Fired[] = []
    const workers = [worker(fired), worker(fired), worker(fired)]
    await vi.waitFor(() => expect(fired.length).toBeGreaterThanOrEqual(6), { timeout: 20_000, interval: 100 })
    // Kill the worker that fired the last tick: the next ticks still fire, once each.
    const last = fired[fired.length - 1] as Fired
    const victim = workers.find((w) => w.pid === last.pid) as ChildProcess
    victim.kill('SIGKILL')
    const firedBefore = fired.length
    await vi.waitFor(() => expect(fired.length).toBeGreaterThanOrEqual(firedBefore + 4), {
      timeout: 20_000,
      interval: 100,
    })
    for (const w of workers) if (w !== victim) w.kill('SIGTERM')
    await Promise.all(
      workers.map(
        (w) =>
          new Promise((resolve) =>
            w.exitCode !== null || w.signalCode !== null ? resolve(null) : w.on('exit', resolve),
          ),
      ),
    )

    const ticks = fired.map((f) => Date.parse(f.tick)).sort((a, b) => a - b)
    // Once each: no tick fired twice, by any worker.
    expect(new Set(ticks).size).toBe(ticks.length)
    // None missing between the first and the last.
    for (let i = 1; i < ticks.length; i++) expect((ticks[i] as number) - (ticks[i - 1] as number)).toBe(1000)
    // Every fired tick has its workflow; each run's step ran once, but for a step the SIGKILLed
    // worker had started and not committed: that one ran once more, in another worker.
    const client = new WorkflowClient({ storage: data })
    const stored = (await client.listAll()).filter((w) => w.workflowId.startsWith('every-second@'))
    expect(stored.map((w) => w.workflowId).sort()).toEqual(fired.map((f) => f.runId).sort())
    const log = (await readFile(join(app, 'log'), 'utf8')).trim().split('\n')
    const starts = new Map<string, number[]>()
    for (const [pid, runId] of log.map((line) => line.split(' ') as [string, string]))
      starts.set(runId, [...(starts.get(runId) ?? []), Number(pid)])
    for (const [runId, pids] of starts) {
      if (pids.length === 1) continue
      expect(pids, runId).toHaveLength(2)
      expect(pids[0], `${runId} ran twice, first not in the killed worker`).toBe(victim.pid)
      expect(pids[1], runId).not.toBe(victim.pid)
    }
    await client.runtime.close()
  }, 60_000)

  it('lists, shows, pauses, resumes, triggers and backfills with wf schedules', async () => {
    const wf = (args: string[]) => runWf(['--storage', data, ...args], { cwd: app })
    const list = await wf(['schedules', 'list'])
    expect(list).toMatchObject({ code: 0, stderr: '' })
    // Two workers stopped and ended their declarations; the SIGKILLed one's counts until it
    // expires (thirty lease periods after its last renewal).
    const every = await new WorkflowClient({ storage: data }).getSchedule('every-second')
    expect(every.declared).toBe(true)
    expect(every.workers).toHaveLength(1)
    expect(every.workers[0]?.sameSpec).toBe(true)
    expect(list.stdout).toMatch(/every-second +active +Every second/)
    expect(list.stdout).toMatch(/nightly +active +At 03:00, Europe\/Berlin/)
    const show = await wf(['schedules', 'show', 'nightly'])
    expect(show.stdout).toMatch(/when +At 03:00, Europe\/Berlin \(cron 0 3 \* \* \*\)/)
    expect(show.stdout).toMatch(/policies +overlap skip, catch-up latest/)
    expect((await wf(['schedules', 'pause', 'nightly'])).stdout).toBe('nightly paused\n')
    expect((await wf(['--json', 'schedules', 'show', 'nightly'])).stdout).toMatch(/"paused": true/)
    expect((await wf(['schedules', 'resume', 'nightly'])).stdout).toBe('nightly active\n')
    const trigger = await wf(['schedules', 'trigger', 'nightly', '--import', module])
    expect(trigger.stdout).toMatch(/^submitted nightly@manual-\d{4}-/)
    const notDeclared = await wf(['schedules', 'trigger', 'nightly'])
    expect(notDeclared.code).not.toBe(0)
    expect(notDeclared.stderr).toMatch(/not declared in this process/)
    const range = ['--from', '2027-01-01T00:00Z', '--to', '2027-01-03T12:00Z', '--import', module]
    expect((await wf(['schedules', 'backfill', 'nightly', ...range])).stdout).toBe(
      '3 submitted, 0 already there\n',
    )
    expect((await wf(['schedules', 'backfill', 'nightly', ...range])).stdout).toBe(
      '0 submitted, 3 already there\n',
    )
    const bad = await wf(['schedules', 'pause', 'bad id'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/schedule id/)
    const missing = await wf(['schedules', 'show', 'nope'])
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toMatch(/no schedule "nope" is stored/)
    expect((await wf(['schedules', 'delete', 'nightly'])).stdout).toBe('deleted schedule nightly\n')
  }, 60_000)
})
