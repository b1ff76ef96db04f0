// Durable sleep in one process: what `sleep` and `sleepUntil` resolve to, what is committed and
// stored while a workflow sleeps (held under its runner's lease, or parked: PENDING with a due
// marker and no owner), and that a resume, a cancel or a worker finds it as it should. The
// SIGKILL and many-worker tests run real processes (sleep-processes.test.ts).
// Over 400 lines: what is stored while held and while parked, checked record by record.
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createWorker,
  InvalidOptionsError,
  MemoryStorage,
  parseDuration,
  RunnerShutdownError,
  Runtime,
  sleep,
  sleepUntil,
  step,
  type Worker,
  WorkflowCanceledError,
  WorkflowExecutionError,
  WorkflowStillActiveError,
} from '../index.js'
import type { WorkflowRecord } from '../model/records.js'
import { interceptStorage } from '../testing/intercept.js'
import { takeOver } from './claim.js'
import { sliceOf } from './worker.js'

const runtimes: Runtime[] = []
const workers: Worker[] = []
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()))
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})

function runtime(storage: MemoryStorage, parkAfterMs: number): Runtime {
  const made = new Runtime(storage, { parkAfterMs, leaseTtlMs: 3000 })
  runtimes.push(made)
  return made
}

async function record(storage: MemoryStorage, workflowId: string): Promise<WorkflowRecord> {
  const found = await storage.get(`workflows/${workflowId}/workflow`)
  if (!found) throw new Error(`no record for ${workflowId}`)
  return JSON.parse(Buffer.from(found.data).toString('utf8')) as WorkflowRecord
}

async function keys(storage: MemoryStorage, prefix: string): Promise<string[]> {
  return (await storage.list(prefix)).keys
}

let made = 0
/** Steps that count their runs, by step name and argument (new names for each test: names are registered once). */
function counted() {
  const runs: string[] = []
  const tag = `sleep-test.${made++}`
  const prepare = step(`${tag}.prepare`, (x: number) => {
    runs.push(`prepare ${x}`)
    return x + 1
  })
  const report = step(`${tag}.report`, (wokeAt: number, x: number) => {
    runs.push(`report ${x}`)
    return { wokeAt, startedAt: Date.now(), x }
  })
  return { runs, prepare, report }
}

describe('durations', () => {
  it('parses milliseconds and the documented units, summed', () => {
    expect(parseDuration(1500)).toBe(1500)
    expect(parseDuration(0.2)).toBe(1)
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('90m')).toBe(5_400_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('1.5h')).toBe(5_400_000)
    expect(parseDuration('3d')).toBe(259_200_000)
    expect(parseDuration('2w 1d')).toBe(15 * 86_400_000)
  })

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY, '', 'soon', '3 days', '-5m', '5', 'm5', '1h30', {}])(
    'refuses %s with InvalidOptionsError when the node is built',
    (bad) => {
      expect(() => parseDuration(bad as number)).toThrow(InvalidOptionsError)
      expect(() => sleep(bad as number)).toThrow(InvalidOptionsError)
    },
  )

  it('refuses invalid dates and times past what wf stores', () => {
    expect(() => sleepUntil(new Date('not a date'))).toThrow(InvalidOptionsError)
    expect(() => sleepUntil(Number.NaN)).toThrow(InvalidOptionsError)
    expect(() => sleepUntil(-1)).toThrow(InvalidOptionsError)
    expect(() => sleepUntil(1e16)).toThrow(/sleepUntil/)
    expect(() => sleep('100000w')).toThrow(/2286/)
  })
})

describe('sleep', () => {
  it('resolves to its wake time, and the step after it starts no earlier', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage, Number.POSITIVE_INFINITY)
    const { report } = counted()
    const started = Date.now()
    const out = await rt.run(report(sleep(300), 1), { workflowId: 'short' })
    expect(out.wokeAt).toBeGreaterThanOrEqual(started + 300)
    expect(out.startedAt).toBeGreaterThanOrEqual(out.wokeAt)
  })

  it('commits the wake time once, as the continuation of the sleep step', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage, Number.POSITIVE_INFINITY)
    const wokeAt = await rt.run(sleep(50), { workflowId: 'committed' })
    const stepKeys = await keys(storage, 'workflows/committed/steps/')
    // The sleep (its continuation holds the wake time), then the timer when it ended.
    expect(stepKeys).toEqual([
      'workflows/committed/steps/wf:sleep',
      'workflows/committed/steps/wf:sleep~wf:timer',
    ])
    const sleepRecord = JSON.parse(
      Buffer.from((await storage.get(stepKeys[0] as string))?.data ?? []).toString('utf8'),
    )
    expect(sleepRecord.kind).toBe('continuation')
    expect(JSON.stringify(sleepRecord.graph)).toContain(String(wokeAt))
  })

  it('sleepUntil a time already past completes at once with that time', async () => {
    const rt = runtime(new MemoryStorage(), 0)
    const past = Date.now() - 60_000
    expect(await rt.run(sleepUntil(new Date(past)), { workflowId: 'past' })).toBe(past)
  })

  it('works inside a continuation', async () => {
    const rt = runtime(new MemoryStorage(), Number.POSITIVE_INFINITY)
    const { report } = counted()
    const later = step('sleep-test.later', (x: number) => report(sleep('200ms'), x))
    const out = await rt.run(later(7), { workflowId: 'continued' })
    expect(out.x).toBe(7)
    expect(out.startedAt).toBeGreaterThanOrEqual(out.wokeAt)
  })

  it("starts the step after a sleep at the wake time, while the timer's record is still being written, and writes its record after that one", async () => {
    const inner = new MemoryStorage()
    const landed: string[] = []
    let releaseTimer: () => void = () => {}
    const timerHeld = new Promise<void>((resolve) => {
      releaseTimer = resolve
    })
    const storage = interceptStorage(inner, {
      put: async (next, key, data, condition) => {
        if (key.endsWith('/steps/wf:sleep~wf:timer')) await timerHeld
        const result = await next(key, data, condition)
        if (key.includes('/steps/')) landed.push(key.slice(key.indexOf('/steps/') + 7))
        return result
      },
    })
    const rt = new Runtime(storage, { parkAfterMs: Number.POSITIVE_INFINITY })
    runtimes.push(rt)
    const seen: { timerStored: boolean; wokeAt: number; startedAt: number }[] = []
    const afterTimer = step('sleep-test.after-timer', async (wokeAt: number) => {
      const timerStored = (await inner.get('workflows/held-timer/steps/wf:sleep~wf:timer')) !== undefined
      seen.push({ timerStored, wokeAt, startedAt: Date.now() })
      return wokeAt
    })
    // Not the root: the root's value goes in the workflow's final record, not a step record.
    const last = step('sleep-test.after-timer.last', (wokeAt: number) => wokeAt)
    const handle = await rt.runAsync(last(afterTimer(sleep(200))), { workflowId: 'held-timer' })
    await vi.waitFor(() => expect(seen).toHaveLength(1))
    // It ran on the wake time with the timer's record not written yet, and its own record waits.
    expect(seen[0]?.timerStored).toBe(false)
    expect(seen[0]?.startedAt).toBeGreaterThanOrEqual(seen[0]?.wokeAt as number)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(landed).toEqual(['wf:sleep'])
    releaseTimer()
    expect(await handle.result()).toBe(seen[0]?.wokeAt)
    expect(landed).toEqual(['wf:sleep', 'wf:sleep~wf:timer', 'sleep-test.after-timer'])
  })

  it("runs the step after a sleep again with the same wake time when its runner stops before the timer's record lands", async () => {
    const inner = new MemoryStorage()
    // The first runner freezes at the timer's record: that write and every write after it hang,
    // as in a process stopped there (its lease is not renewed either).
    let frozen = false
    const stopped = interceptStorage(inner, {
      put: async (next, key, data, condition) => {
        if (key.endsWith('/steps/wf:sleep~wf:timer')) frozen = true
        if (frozen) return new Promise<never>(() => {})
        return next(key, data, condition)
      },
    })
    const first = new Runtime(stopped, { parkAfterMs: Number.POSITIVE_INFINITY, leaseTtlMs: 600 })
    runtimes.push(first)
    const seen: number[] = []
    const afterTimer = step('sleep-test.after-frozen-timer', (wokeAt: number) => {
      seen.push(wokeAt)
      return wokeAt
    })
    void first
      .runAsync(afterTimer(sleep(100)), { workflowId: 'frozen-timer' })
      .then((h) => h.result().catch(() => {}))
    await vi.waitFor(() => expect(seen).toHaveLength(1))
    expect(await inner.get('workflows/frozen-timer/steps/wf:sleep~wf:timer')).toBeUndefined()
    const second = new Runtime(inner, { parkAfterMs: Number.POSITIVE_INFINITY, leaseTtlMs: 600 })
    runtimes.push(second)
    const out = await vi.waitFor(() => second.resume<number>('frozen-timer'), {
      timeout: 10_000,
      interval: 200,
    })
    // The wake time was committed with the sleep: the run after the stop sees the same one.
    expect(out).toBe(seen[0])
    expect(seen).toEqual([seen[0], seen[0]])
    expect(await inner.get('workflows/frozen-timer/steps/wf:sleep~wf:timer')).toBeDefined()
  })

  it('holds a short sleep under the runner lease: RUNNING, owned, no due marker', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage, 60_000)
    const handle = await rt.runAsync(sleep(800), { workflowId: 'held' })
    await vi.waitFor(async () => expect(await keys(storage, 'workflows/held/steps/')).toHaveLength(1))
    const held = await record(storage, 'held')
    expect(held.status).toBe('RUNNING')
    expect(held.owner?.runnerId).toBe(rt.runner.runnerId)
    expect(held.parkedUntil).toBeUndefined()
    expect(await keys(storage, 'due/')).toEqual([])
    expect(typeof (await handle.result())).toBe('number')
  })

  it('ends at once when the workflow is canceled, without waiting for the timer', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage, Number.POSITIVE_INFINITY)
    const handle = await rt.runAsync(sleep('1h'), { workflowId: 'cancel-held' })
    await vi.waitFor(async () => expect(await keys(storage, 'workflows/cancel-held/steps/')).toHaveLength(1))
    expect(await rt.cancel('cancel-held')).toBe('CANCELED')
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowCanceledError)
    expect((await record(storage, 'cancel-held')).status).toBe('CANCELED')
  })

  it('ends at once when another branch fails', async () => {
    const rt = runtime(new MemoryStorage(), Number.POSITIVE_INFINITY)
    const boom = step(
      'sleep-test.boom',
      () => {
        throw new Error('boom')
      },
      { maxRetries: 0 },
    )
    const both = step('sleep-test.both', (a: number, b: number) => a + b)
    await expect(rt.run(both(sleep('1h'), boom()), { workflowId: 'branch-fails' })).rejects.toBeInstanceOf(
      WorkflowExecutionError,
    )
  })
})

describe('a parked workflow', () => {
  it('is stored PENDING with its wake time, no owner, and only a due marker', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage, 0)
    const { prepare, report } = counted()
    const handle = await rt.runAsync(report(sleep(1000), prepare(1)), { workflowId: 'parked' })
    await vi.waitFor(async () => expect((await record(storage, 'parked')).status).toBe('PENDING'))
    const parked = await record(storage, 'parked')
    expect(parked.owner).toBeUndefined()
    expect(parked.startBatch).toBeUndefined()
    expect(parked.parkedSteps).toEqual(['wf:sleep~wf:timer'])
    const dueKey = `due/${String(parked.parkedUntil).padStart(13, '0')}/parked`
    expect(await keys(storage, 'due/')).toEqual([dueKey])
    expect(await keys(storage, 'index/')).toEqual([])
    expect(await keys(storage, 'starts/')).toEqual([])
    expect(rt.deriveStatus(parked)).toBe('PENDING')
    // The process that awaits it wakes it at its time.
    const out = await handle.result()
    expect(out.startedAt).toBeGreaterThanOrEqual(parked.parkedUntil as number)
    expect(await keys(storage, 'due/')).toEqual([])
    expect(await keys(storage, 'index/')).toEqual(['index/SUCCESSFUL/parked'])
  })

  it('is resumed by another runtime only once due, with the wake time it had, running nothing twice', async () => {
    const storage = new MemoryStorage()
    const first = runtime(storage, 0)
    const { runs, prepare, report } = counted()
    const handle = await first.runAsync(report(sleep(700), prepare(1)), { workflowId: 'moved' })
    await vi.waitFor(async () => expect((await record(storage, 'moved')).status).toBe('PENDING'))
    const { parkedUntil } = await record(storage, 'moved')
    await first.close()
    await expect(handle.result()).rejects.toBeInstanceOf(RunnerShutdownError)
    const second = runtime(storage, 0)
    const out = await second.resume<{ wokeAt: number; startedAt: number }>('moved')
    expect(out.wokeAt).toBe(parkedUntil)
    expect(out.startedAt).toBeGreaterThanOrEqual(parkedUntil as number)
    expect(runs).toEqual(['prepare 1', 'report 2'])
  })

  it('is canceled at once, and the run awaiting it here rejects at once', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage, 0)
    const handle = await rt.runAsync(sleep('1h'), { workflowId: 'cancel-parked' })
    await vi.waitFor(async () => expect((await record(storage, 'cancel-parked')).status).toBe('PENDING'))
    expect(await rt.cancel('cancel-parked')).toBe('CANCELED')
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowCanceledError)
    const canceled = await record(storage, 'cancel-parked')
    expect(canceled.status).toBe('CANCELED')
    expect(canceled.parkedUntil).toBeUndefined()
    expect(await keys(storage, 'due/')).toEqual([])
  })

  it('is woken by a worker once due, exactly once however many workers poll', async () => {
    const storage = new MemoryStorage()
    const submitter = runtime(storage, 0)
    const { runs, report } = counted()
    const n = 20
    const wakeAt = Date.now() + 600
    for (let i = 0; i < n; i++) {
      const handle = await submitter.runAsync(report(sleepUntil(wakeAt), i), { workflowId: `many-${i}` })
      handle.result().catch(() => {})
    }
    await vi.waitFor(async () => expect(await keys(storage, 'due/')).toHaveLength(n))
    await submitter.close()
    const outcomes: string[] = []
    for (let w = 0; w < 3; w++) {
      workers.push(
        createWorker({
          storage,
          handleSignals: false,
          concurrency: 8,
          pollIntervalMs: 50,
          onWorkflow: (event) => outcomes.push(event.outcome),
        }),
      )
    }
    await vi.waitFor(() => expect(outcomes.filter((o) => o === 'SUCCESSFUL')).toHaveLength(n), {
      timeout: 10_000,
    })
    expect(runs.filter((r) => r.startsWith('report')).sort()).toEqual(
      Array.from({ length: n }, (_, i) => `report ${i}`).sort(),
    )
    expect(await keys(storage, 'due/')).toEqual([])
  })

  it('is not taken by a worker before it is due, nor left RESUMABLE', async () => {
    const storage = new MemoryStorage()
    const submitter = runtime(storage, 0)
    const handle = await submitter.runAsync(sleep('1h'), { workflowId: 'not-yet' })
    handle.result().catch(() => {})
    await vi.waitFor(async () => expect((await record(storage, 'not-yet')).status).toBe('PENDING'))
    await submitter.close()
    const taken: string[] = []
    workers.push(
      createWorker({
        storage,
        handleSignals: false,
        pollIntervalMs: 20,
        onWorkflow: (event) => taken.push(`${event.workflowId} ${event.outcome}`),
      }),
    )
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(taken).toEqual([])
    const parked = await record(storage, 'not-yet')
    expect(parked.status).toBe('PENDING')
    expect(parked.owner).toBeUndefined()
  })

  it('an idle worker lists a small page of the due index per poll, however many workflows are parked', async () => {
    const storage = new MemoryStorage()
    const submitter = runtime(storage, 0)
    for (let i = 0; i < 40; i++) {
      const handle = await submitter.runAsync(sleep('1h'), { workflowId: `idle-${i}` })
      handle.result().catch(() => {})
    }
    await vi.waitFor(async () => expect(await keys(storage, 'due/')).toHaveLength(40))
    await submitter.close()
    const dueLists: { limit: number | undefined; keys: number }[] = []
    let polls = 0
    const view = interceptStorage(storage, {
      list: async (next, prefix, options) => {
        const page = await next(prefix, options)
        if (prefix === 'due/') dueLists.push({ limit: options?.limit, keys: page.keys.length })
        if (prefix === 'index/RUNNING/') polls++
        return page
      },
    })
    workers.push(createWorker({ storage: view, handleSignals: false, concurrency: 64, pollIntervalMs: 20 }))
    await vi.waitFor(() => expect(polls).toBeGreaterThanOrEqual(5))
    // One listing a poll, of the first few keys: the first is not due, so nothing past it is.
    expect(dueLists.length).toBeLessThanOrEqual(polls + 1)
    for (const list of dueLists) {
      expect(list.limit).toBeLessThanOrEqual(16)
      expect(list.keys).toBeLessThanOrEqual(16)
    }
  })

  it('takes more workflows than the first page of the due index holds in one poll, when they are all due', async () => {
    const storage = new MemoryStorage()
    const submitter = runtime(storage, 0)
    const wakeAt = Date.now() + 2000
    for (let i = 0; i < 40; i++) {
      const handle = await submitter.runAsync(sleepUntil(wakeAt), { workflowId: `busy-${i}` })
      handle.result().catch(() => {})
    }
    await vi.waitFor(async () => expect(await keys(storage, 'due/')).toHaveLength(40))
    await submitter.close()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wakeAt - Date.now() + 20)))
    const taken = new Set<string>()
    // One poll only (the next one is a minute away): it must find all 40.
    workers.push(
      createWorker({
        storage,
        handleSignals: false,
        concurrency: 64,
        pollIntervalMs: 60_000,
        onTake: (workflowId) => taken.add(workflowId),
      }),
    )
    await vi.waitFor(() => expect(taken.size).toBe(40), { timeout: 5000 })
  })

  it('costs the loser of two runners claiming it at once a read, not a repair of its index', async () => {
    const storage = new MemoryStorage()
    const submitter = runtime(storage, 0)
    const handle = await submitter.runAsync(sleep('1h'), { workflowId: 'raced' })
    handle.result().catch(() => {})
    await vi.waitFor(async () => expect(await keys(storage, 'due/')).toHaveLength(1))
    await submitter.close()
    const writes: string[] = []
    const view = interceptStorage(storage, {
      put: (next, key, data, condition) => {
        writes.push(`put ${key}`)
        return next(key, data, condition)
      },
      delete: (next, key) => {
        writes.push(`delete ${key}`)
        return next(key)
      },
    })
    const [a, b] = [runtime(storage, 0), new Runtime(view, { leaseTtlMs: 3000 })]
    runtimes.push(b)
    const found = await (await a.store()).readWorkflow('raced')
    if (!found) throw new Error('no record')
    await takeOver(await a.store(), found, a.runner)
    writes.length = 0
    // The second claims from the same read: its compare-and-swap fails.
    await expect(takeOver(await b.store(), found, b.runner)).rejects.toThrow(WorkflowStillActiveError)
    expect(writes).toEqual(['put index/RUNNING/raced', 'put workflows/raced/workflow'])
    expect(await keys(storage, 'index/')).toEqual(['index/RUNNING/raced'])
    expect(await keys(storage, 'due/')).toEqual([])
  })

  it('does not list the PENDING and RUNNING indexes while what is due fills its room twice over', async () => {
    const storage = new MemoryStorage()
    const submitter = runtime(storage, 0)
    const wakeAt = Date.now() + 1000
    for (let i = 0; i < 10; i++) {
      const handle = await submitter.runAsync(sleepUntil(wakeAt), { workflowId: `full-${i}` })
      handle.result().catch(() => {})
    }
    await vi.waitFor(async () => expect(await keys(storage, 'due/')).toHaveLength(10))
    await submitter.close()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wakeAt - Date.now() + 20)))
    const seen: string[] = []
    const view = interceptStorage(storage, {
      list: (next, prefix, options) => {
        if (prefix.startsWith('index/')) seen.push(`list ${prefix}`)
        return next(prefix, options)
      },
    })
    let firstTake: string[] | undefined
    workers.push(
      createWorker({
        storage: view,
        handleSignals: false,
        concurrency: 2,
        pollIntervalMs: 20,
        onTake: () => {
          firstTake ??= [...seen]
        },
      }),
    )
    await vi.waitFor(() => expect(firstTake).toBeDefined())
    expect(firstTake).toEqual([])
  })

  it('is taken first by the worker whose slice it falls in, of the runners on the storage', async () => {
    const storage = new MemoryStorage()
    // Another runner, alive (it holds a sleeping workflow under its lease): two slices.
    const other = new Runtime(storage, { parkAfterMs: Number.POSITIVE_INFINITY, leaseTtlMs: 3000 })
    runtimes.push(other)
    const held = await other.runAsync(sleep('1h'), { workflowId: 'held' })
    held.result().catch(() => {})
    const submitter = runtime(storage, 0)
    const wakeAt = Date.now() + 1000
    for (let i = 0; i < 12; i++) {
      const handle = await submitter.runAsync(sleepUntil(wakeAt), { workflowId: `slice-${i}` })
      handle.result().catch(() => {})
    }
    await vi.waitFor(async () => expect(await keys(storage, 'due/')).toHaveLength(12))
    await submitter.close()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wakeAt - Date.now() + 20)))
    const runners = (await keys(storage, 'runners/')).map((key) => key.slice('runners/'.length))
    expect(runners).toContain(other.runner.runnerId)
    const taken: string[] = []
    const worker = createWorker({
      storage,
      handleSignals: false,
      concurrency: 1,
      pollIntervalMs: 20,
      onTake: (workflowId) => taken.push(workflowId),
    })
    workers.push(worker)
    await vi.waitFor(() => expect(taken.length).toBeGreaterThanOrEqual(4), { timeout: 5000 })
    // The runners it counted: those with a record (the submitter's lives on while it follows
    // the workflows it parked) and itself.
    const ids = [...new Set([...runners, worker.runtime.runner.runnerId])].sort()
    const own = ids.indexOf(worker.runtime.runner.runnerId)
    const ownCount = Array.from({ length: 12 }, (_, i) => `slice-${i}`).filter(
      (id) => sliceOf(id, ids.length) === own,
    ).length
    // Its own slice first, one at a time (room for one): as many as there are, then the others.
    const first = taken.slice(0, Math.min(4, ownCount))
    expect(first.every((id) => sliceOf(id, ids.length) === own)).toBe(true)
  })

  it('parks again after a worker wakes it for the next of two sleeps, and the worker lets it go', async () => {
    const storage = new MemoryStorage()
    const submitter = runtime(storage, 0)
    const { report } = counted()
    const again = step('sleep-test.again', (first: { x: number }) => report(sleep(300), first.x + 1))
    const twice = again(report(sleep(300), 1))
    const handle = await submitter.runAsync(twice, { workflowId: 'twice' })
    handle.result().catch(() => {})
    await vi.waitFor(async () => expect((await record(storage, 'twice')).status).toBe('PENDING'))
    await submitter.close()
    const outcomes: string[] = []
    workers.push(
      createWorker({
        storage,
        handleSignals: false,
        pollIntervalMs: 50,
        runtime: runtime(storage, 0),
        onWorkflow: (event) => outcomes.push(event.outcome),
      }),
    )
    await vi.waitFor(() => expect(outcomes).toContain('SUCCESSFUL'), { timeout: 5000 })
    expect((await record(storage, 'twice')).status).toBe('SUCCESSFUL')
  })

  it('rejects a parkAfterMs that is not a non-negative number', () => {
    expect(() => new Runtime(new MemoryStorage(), { parkAfterMs: -1 })).toThrow(InvalidOptionsError)
    expect(() => new Runtime(new MemoryStorage(), { parkAfterMs: Number.NaN })).toThrow(InvalidOptionsError)
  })
})
