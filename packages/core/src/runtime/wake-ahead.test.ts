// Claiming ahead (`wakeAheadMs`): a worker claims parked workflows due within its window before
// their wake time and holds each one under its lease until a local timer wakes it, so that the
// claim is no part of the lateness; it claims no more than its concurrency leaves room for, never
// further ahead than `parkAfterMs`, and several workers split the workflows, each woken once. The
// SIGKILL of a worker holding workflows claimed ahead runs real processes (@wf/client's
// sleep-processes.test.ts). The waits are short real ones: the timers that wake a held workflow
// are the execution's, on the real clock.
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createWorker,
  InvalidOptionsError,
  MemoryStorage,
  Runtime,
  sleepUntil,
  step,
  type Worker,
  type WorkerOptions,
} from '../index.js'
import type { WorkflowRecord } from '../model/records.js'
import { interceptStorage } from '../testing/intercept.js'

const runtimes: Runtime[] = []
const workers: Worker[] = []
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()))
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})

async function record(storage: MemoryStorage, workflowId: string): Promise<WorkflowRecord> {
  const found = await storage.get(`workflows/${workflowId}/workflow`)
  if (!found) throw new Error(`no record for ${workflowId}`)
  return JSON.parse(Buffer.from(found.data).toString('utf8')) as WorkflowRecord
}

const dueKeys = async (storage: MemoryStorage) => (await storage.list('due/')).keys

let made = 0
/** A step that records when it started, per workflow (a new name for each test). */
function marking() {
  const started = new Map<string, number[]>()
  const mark = step(`wake-ahead-test.${made++}`, (wakeAt: number, workflowId: string) => {
    started.set(workflowId, [...(started.get(workflowId) ?? []), Date.now()])
    return wakeAt
  })
  return { started, mark }
}

/** Parks `count` workflows `mark(sleepUntil(wakeAt), id)` (a runtime with parkAfterMs 0, closed after). */
async function park(
  storage: MemoryStorage,
  mark: ReturnType<typeof marking>['mark'],
  ids: string[],
  wakeAt: number,
) {
  const parker = new Runtime(storage, { parkAfterMs: 0 })
  for (const workflowId of ids) {
    const handle = await parker.runAsync(mark(sleepUntil(wakeAt), workflowId), { workflowId })
    handle.result().catch(() => {})
  }
  const mine = async () => (await dueKeys(storage)).filter((key) => ids.some((id) => key.endsWith(`/${id}`)))
  await vi.waitFor(async () => expect(await mine()).toHaveLength(ids.length))
  await parker.close()
}

function worker(storage: MemoryStorage, options: WorkerOptions): Worker {
  const made = createWorker({ storage, handleSignals: false, pollIntervalMs: 20, ...options })
  workers.push(made)
  return made
}

describe('a worker claiming ahead', () => {
  it('claims a parked workflow within its window before the wake time, holds it, and runs the next step at that time, not before', async () => {
    const storage = new MemoryStorage()
    const { started, mark } = marking()
    const wakeAt = Date.now() + 1500
    await park(storage, mark, ['soon'], wakeAt)
    const taken = new Map<string, number>()
    const outcomes: string[] = []
    const w = worker(storage, {
      wakeAheadMs: 1000,
      onTake: (workflowId) => taken.set(workflowId, Date.now()),
      onWorkflow: (event) => outcomes.push(event.outcome),
    })
    await vi.waitFor(() => expect(taken.has('soon')).toBe(true), { timeout: 3000 })
    const takenAt = taken.get('soon') as number
    // Within its window, not before it, and ahead of its wake time.
    expect(takenAt).toBeGreaterThanOrEqual(wakeAt - 1000)
    expect(takenAt).toBeLessThan(wakeAt)
    // Held under the worker's lease meanwhile: RUNNING, owned, out of the due index.
    const held = await record(storage, 'soon')
    expect(held.status).toBe('RUNNING')
    expect(held.owner?.runnerId).toBe(w.runtime.runner.runnerId)
    expect(held.parkedUntil).toBeUndefined()
    expect(await dueKeys(storage)).toEqual([])
    expect(started.size).toBe(0)
    await vi.waitFor(() => expect(outcomes).toEqual(['SUCCESSFUL']), { timeout: 5000 })
    expect(started.get('soon')?.length).toBe(1)
    expect(started.get('soon')?.[0]).toBeGreaterThanOrEqual(wakeAt)
  })

  it('claims further ahead than wakeAheadMs when its storage answers slowly, to have claimed by the wake time', async () => {
    const storage = new MemoryStorage()
    const { started, mark } = marking()
    const wakeAt = Date.now() + 2500
    await park(storage, mark, ['slow'], wakeAt)
    // Every listing of the due index takes 150 ms: claiming 16 workflows, 6 requests each with
    // 16 at once, would take about 0.9 s, so the window grows to about 1.8 s.
    const slow = interceptStorage(storage, {
      list: async (next, prefix, options) => {
        if (prefix === 'due/') await new Promise((resolve) => setTimeout(resolve, 150))
        return next(prefix, options)
      },
    })
    const taken = new Map<string, number>()
    workers.push(
      createWorker({
        storage: slow,
        handleSignals: false,
        pollIntervalMs: 20,
        concurrency: 16,
        wakeAheadMs: 300,
        onTake: (workflowId) => taken.set(workflowId, Date.now()),
      }),
    )
    await vi.waitFor(() => expect(taken.has('slow')).toBe(true), { timeout: 3000 })
    expect(taken.get('slow')).toBeLessThan(wakeAt - 700)
    await vi.waitFor(() => expect(started.get('slow')).toHaveLength(1), { timeout: 3000 })
    expect(started.get('slow')?.[0]).toBeGreaterThanOrEqual(wakeAt)
  })

  it('claims the next workflows further ahead than wakeAheadMs after claims that took long, though its listings are quick', async () => {
    const storage = new MemoryStorage()
    const { started, mark } = marking()
    const firstAt = Date.now() + 1000
    const burst = Array.from({ length: 16 }, (_, i) => `burst-${i}`)
    await park(storage, mark, burst, firstAt)
    const nextAt = firstAt + 2500
    await park(storage, mark, ['next'], nextAt)
    // Each write and delete takes 150 ms (a busy gateway), listings answer at once: a claim is a
    // few of them one after the other, so 16 side by side take about 600 ms.
    const slow = interceptStorage(storage, {
      put: async (next, key, data, condition) => {
        await new Promise((resolve) => setTimeout(resolve, 150))
        return next(key, data, condition)
      },
      delete: async (next, key) => {
        await new Promise((resolve) => setTimeout(resolve, 150))
        return next(key)
      },
    })
    const taken = new Map<string, number>()
    workers.push(
      createWorker({
        storage: slow,
        handleSignals: false,
        pollIntervalMs: 20,
        concurrency: 16,
        wakeAheadMs: 300,
        onTake: (workflowId) => taken.set(workflowId, Date.now()),
      }),
    )
    await vi.waitFor(() => expect(started.size).toBe(16), { timeout: 5000 })
    await vi.waitFor(() => expect(taken.has('next')).toBe(true), { timeout: 5000 })
    // Claimed with a window of about twice what the 16 claims took (over a second), not 300 ms.
    expect(taken.get('next')).toBeLessThan(nextAt - 500)
    await vi.waitFor(() => expect(started.get('next')).toHaveLength(1), { timeout: 3000 })
    expect(started.get('next')?.[0]).toBeGreaterThanOrEqual(nextAt)
  })

  it('claims ahead no more workflows than its concurrency leaves room for, the earliest first, and the rest once room frees', async () => {
    const storage = new MemoryStorage()
    const { started, mark } = marking()
    const wakeAt = Date.now() + 1500
    await park(storage, mark, ['late-1', 'late-2'], wakeAt + 300)
    await park(storage, mark, ['early-1', 'early-2', 'early-3'], wakeAt)
    const taken: string[] = []
    worker(storage, { concurrency: 2, wakeAheadMs: 1400, onTake: (workflowId) => taken.push(workflowId) })
    await vi.waitFor(() => expect(taken).toHaveLength(2), { timeout: 3000 })
    // Still before the wake time: the two slots hold two of the earliest, nothing more is claimed.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wakeAt - Date.now() - 300)))
    expect(Date.now()).toBeLessThan(wakeAt)
    expect(taken).toHaveLength(2)
    for (const workflowId of taken) expect(workflowId).toMatch(/^early-/)
    expect(await dueKeys(storage)).toHaveLength(3)
    await vi.waitFor(() => expect(started.size).toBe(5), { timeout: 5000 })
    for (const [workflowId, starts] of started) {
      expect(starts).toHaveLength(1)
      expect(starts[0]).toBeGreaterThanOrEqual(workflowId.startsWith('late') ? wakeAt + 300 : wakeAt)
    }
  })

  it('shares the workflows due at one moment with other workers, each claimed ahead once and woken once', async () => {
    const storage = new MemoryStorage()
    const { started, mark } = marking()
    const wakeAt = Date.now() + 1500
    const ids = Array.from({ length: 20 }, (_, i) => `shared-${i}`)
    await park(storage, mark, ids, wakeAt)
    const takenBy = new Map<string, number>()
    for (let i = 0; i < 3; i++)
      worker(storage, {
        concurrency: 8,
        wakeAheadMs: 1000,
        onTake: (workflowId) => takenBy.set(workflowId, i),
      })
    // Three workers of 8 slots hold all 20 before their wake time: none holds more than 8.
    await vi.waitFor(() => expect(takenBy.size).toBe(20), { timeout: 3000 })
    expect(Date.now()).toBeLessThan(wakeAt)
    for (let i = 0; i < 3; i++)
      expect([...takenBy.values()].filter((w) => w === i).length).toBeLessThanOrEqual(8)
    await vi.waitFor(() => expect(started.size).toBe(20), { timeout: 5000 })
    for (const starts of started.values()) {
      expect(starts).toHaveLength(1)
      expect(starts[0]).toBeGreaterThanOrEqual(wakeAt)
    }
  })

  it.each([
    ['wakeAheadMs: 0', { wakeAheadMs: 0 }],
    ['parkAfterMs: 0 (a workflow claimed ahead would park again)', { parkAfterMs: 0 }],
  ] as const)('does not claim ahead with %s: it takes a workflow once due', async (_, options) => {
    const storage = new MemoryStorage()
    const { started, mark } = marking()
    const wakeAt = Date.now() + 600
    await park(storage, mark, ['on-time'], wakeAt)
    const taken: number[] = []
    const outcomes: string[] = []
    worker(storage, {
      ...options,
      onTake: () => taken.push(Date.now()),
      onWorkflow: (event) => outcomes.push(event.outcome),
    })
    await vi.waitFor(() => expect(outcomes).toEqual(['SUCCESSFUL']), { timeout: 3000 })
    expect(taken).toHaveLength(1)
    expect(taken[0]).toBeGreaterThanOrEqual(wakeAt)
    expect(started.get('on-time')).toHaveLength(1)
  })

  it('gives back the workflows it claimed ahead when it stops, and another worker wakes each once at its time', async () => {
    const storage = new MemoryStorage()
    const { started, mark } = marking()
    const wakeAt = Date.now() + 1500
    const ids = ['back-1', 'back-2', 'back-3']
    await park(storage, mark, ids, wakeAt)
    const taken: string[] = []
    const first = worker(storage, { wakeAheadMs: 1400, onTake: (workflowId) => taken.push(workflowId) })
    await vi.waitFor(() => expect(taken).toHaveLength(3), { timeout: 3000 })
    await first.stop()
    expect(started.size).toBe(0)
    const outcomes: string[] = []
    worker(storage, { wakeAheadMs: 1400, onWorkflow: (event) => outcomes.push(event.outcome) })
    await vi.waitFor(() => expect(outcomes).toEqual(['SUCCESSFUL', 'SUCCESSFUL', 'SUCCESSFUL']), {
      timeout: 5000,
    })
    for (const id of ids) {
      expect(started.get(id)).toHaveLength(1)
      expect(started.get(id)?.[0]).toBeGreaterThanOrEqual(wakeAt)
    }
  })

  it('polls again at once when its runs end while it claims into its last free slots, not a poll interval later', async () => {
    const storage = new MemoryStorage()
    const opens = new Map<number, () => void>()
    const ended: number[] = []
    const gate = step(`wake-ahead-test.gate.${made++}`, async (_wakeAt: number, i: number) => {
      await new Promise<void>((resolve) => opens.set(i, resolve))
      ended.push(i)
      return i
    })
    const parker = new Runtime(storage, { parkAfterMs: 0 })
    const wakeAt = Date.now() + 300
    // The last two are due a little later: the first poll does not list them (no backlog of due
    // workflows to claim from as slots free), so each slot that frees is filled by a poll.
    const later = wakeAt + 300
    for (let i = 0; i < 4; i++) {
      const handle = await parker.runAsync(gate(sleepUntil(i < 2 ? wakeAt : later), i), {
        workflowId: `busy-${i}`,
      })
      handle.result().catch(() => {})
    }
    await vi.waitFor(async () => expect(await dueKeys(storage)).toHaveLength(4))
    await parker.close()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wakeAt - Date.now() + 20)))
    // The due listing of a poll can be held, to end a run while that poll is busy.
    let hold: Promise<void> | undefined
    let held = false
    const view = interceptStorage(storage, {
      list: async (next, prefix, options) => {
        if (prefix === 'due/' && hold) {
          held = true
          await hold
        }
        return next(prefix, options)
      },
    })
    // Polls only when woken by a run that ends (the interval is a minute).
    workers.push(
      createWorker({
        storage: view,
        handleSignals: false,
        concurrency: 2,
        pollIntervalMs: 60_000,
        wakeAheadMs: 0,
      }),
    )
    await vi.waitFor(() => expect(opens.size).toBe(2))
    const first = [...opens.keys()]
    expect(first.sort()).toEqual([0, 1])
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, later - Date.now() + 20)))
    let release!: () => void
    hold = new Promise<void>((resolve) => {
      release = resolve
    })
    // One run ends: the worker polls for its slot, and holds at the due listing.
    opens.get(first[0] as number)?.()
    await vi.waitFor(() => expect(held).toBe(true))
    // The other ends while that poll is busy; then the poll takes one workflow into the slot it had.
    opens.get(first[1] as number)?.()
    await vi.waitFor(() => expect(ended).toHaveLength(2))
    hold = undefined
    release()
    // The fourth is taken by a poll right after, not a minute later.
    await vi.waitFor(() => expect(opens.size).toBe(4), { timeout: 3000 })
    for (const open of opens.values()) open()
    await vi.waitFor(() => expect(ended).toHaveLength(4))
  })

  it('takes the next due workflow into a slot as soon as it frees, without listing the due index again', async () => {
    const storage = new MemoryStorage()
    const { started, mark } = marking()
    const wakeAt = Date.now() + 300
    const ids = ['queued-1', 'queued-2', 'queued-3', 'queued-4']
    await park(storage, mark, ids, wakeAt)
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wakeAt - Date.now() + 20)))
    let dueListings = 0
    const view = interceptStorage(storage, {
      list: (next, prefix, options) => {
        if (prefix === 'due/') dueListings++
        return next(prefix, options)
      },
    })
    // One slot, and a poll a minute: each workflow after the first waits for the slot alone.
    workers.push(
      createWorker({
        storage: view,
        handleSignals: false,
        concurrency: 1,
        pollIntervalMs: 60_000,
        wakeAheadMs: 0,
      }),
    )
    await vi.waitFor(() => expect(started.size).toBe(4), { timeout: 3000 })
    // The first poll listed all four, each freed slot took the next, and the slot the last one
    // freed found none left: a poll (a poll for each slot would have listed five times).
    expect(dueListings).toBeLessThanOrEqual(2)
    for (const workflowId of ids) expect(started.get(workflowId)).toHaveLength(1)
    await vi.waitFor(async () => expect(await dueKeys(storage)).toEqual([]))
  })

  it('rejects a wakeAheadMs that is not a non-negative integer', () => {
    for (const wakeAheadMs of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => createWorker({ storage: new MemoryStorage(), handleSignals: false, wakeAheadMs })).toThrow(
        InvalidOptionsError,
      )
  })
})
