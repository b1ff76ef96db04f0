// What a polling worker reads: the records of workflows another live runner holds are read about
// once, not at every poll; their runner record is read instead. A runner that dies or stops still
// hands its workflows over within about one poll.

import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createWorker,
  currentStep,
  MemoryStorage,
  Runtime,
  type Storage,
  step,
  storeKeys,
  type Worker,
} from '../index.js'
import { countingView } from '../test-support/counting-view.js'
import { freezable } from '../test-support/freezable-storage.js'
import { soon } from '../test-support/polling.js'

/** A step that waits until `open()`, or fails when its run is aborted. */
function gate(name: string) {
  let open!: () => void
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  const fn = step(name, async (i: number) => {
    const { signal } = currentStep()
    await new Promise<void>((resolve, reject) => {
      void opened.then(resolve)
      signal.addEventListener('abort', () => reject(signal.reason))
    })
    return i
  })
  return { fn, open }
}

const N = 40
const isWorkflowRecord = (key: string) => key.startsWith('workflows/') && key.endsWith('/workflow')

const workers: Worker[] = []
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()))
})
function startWorker(storage: Storage, options: Parameters<typeof createWorker>[0]): Worker {
  const worker = createWorker({ storage, handleSignals: false, concurrency: N, ...options })
  workers.push(worker)
  return worker
}

describe('a polling worker', () => {
  it('reads the records of workflows a live runner holds about once, then only that runner record at each poll', async () => {
    const shared = new MemoryStorage()
    const { fn, open } = gate('poll.held')
    const owner = new Runtime(shared, { leaseTtlMs: 5000, heartbeatMs: 1000 })
    const runs = []
    for (let i = 0; i < N; i++) runs.push(await owner.runAsync(fn(i), { workflowId: `held-${i}` }))
    const view = countingView(shared)
    // Its own lease (hence the rotation, at most leaseTtlMs) is long: about 30 polls fall in it.
    startWorker(view, { pollIntervalMs: 10, leaseTtlMs: 2000, heartbeatMs: 500 })
    await vi.waitFor(() => expect(view.lists, '30 polls').toBeGreaterThanOrEqual(30), soon)
    const polls = view.lists
    const reads = view.count(isWorkflowRecord)
    const runnerReads = view.count((key) => key === storeKeys.runner(owner.runner.runnerId))
    // Before: N reads a poll (1,200 here). Now: each record once, and one runner record a poll.
    expect(reads).toBe(N)
    expect(runnerReads).toBeGreaterThanOrEqual(polls - 2)
    expect(runnerReads).toBeLessThanOrEqual(polls + 1)
    open()
    await Promise.all(runs.map((r) => r.result()))
    await owner.close()
  })

  it('still reads every record again within its leaseTtlMs (the slow rotation)', async () => {
    const shared = new MemoryStorage()
    const { fn, open } = gate('poll.rotated')
    const owner = new Runtime(shared, { leaseTtlMs: 5000, heartbeatMs: 1000 })
    const runs = []
    for (let i = 0; i < N; i++) runs.push(await owner.runAsync(fn(i), { workflowId: `rotated-${i}` }))
    const view = countingView(shared)
    startWorker(view, { pollIntervalMs: 10, leaseTtlMs: 200, heartbeatMs: 50 })
    await sleep(700)
    // Re-read at a spread time between half the lease and the lease (plus a poll): 4 to 8 reads
    // each in 700 ms, not 60 or so (one a poll).
    for (let i = 0; i < N; i++) {
      const reads = view.gets.get(storeKeys.workflow(`rotated-${i}`)) ?? 0
      expect(reads).toBeGreaterThanOrEqual(3)
      expect(reads).toBeLessThanOrEqual(8)
    }
    open()
    await Promise.all(runs.map((r) => r.result()))
    await owner.close()
  })

  it('takes the workflows of a runner that stops renewing within about one poll of its lease running out, and finishes them', async () => {
    const shared = new MemoryStorage()
    const { fn, open } = gate('poll.orphaned')
    const cutOff = freezable(shared)
    const dying = new Runtime(cutOff, { leaseTtlMs: 300, heartbeatMs: 50 })
    const runs = []
    for (let i = 0; i < N; i++) runs.push(await dying.runAsync(fn(i), { workflowId: `orphan-${i}` }))
    const view = countingView(shared)
    const pollIntervalMs = 20
    const worker = startWorker(view, { pollIntervalMs, leaseTtlMs: 10_000, heartbeatMs: 1000 })
    await vi.waitFor(() => expect(view.lists, 'a few polls').toBeGreaterThanOrEqual(5), soon)
    expect(worker.runtime.runningCount).toBe(0)
    // Cut the runner off its storage: its heartbeat can no longer renew its runner record.
    cutOff.freeze()
    await sleep(5) // a renewal already past the freeze lands first
    const raw = await shared.get(storeKeys.runner(dying.runner.runnerId))
    const { leaseExpiresAt } = JSON.parse(Buffer.from(raw?.data ?? []).toString()) as {
      leaseExpiresAt: number
    }
    await vi.waitFor(
      () => expect(worker.runtime.runningCount, 'the worker to take every workflow over').toBe(N),
      soon,
    )
    const late = Date.now() - leaseExpiresAt
    expect(late).toBeGreaterThanOrEqual(0)
    // Within about a poll (its rotation, 10 s, plays no part); slack for a loaded machine.
    expect(late).toBeLessThan(pollIntervalMs + 250)
    open()
    for (let i = 0; i < N; i++) await expect(worker.runtime.waitForResult(`orphan-${i}`)).resolves.toBe(i)
    cutOff.thaw()
    await Promise.allSettled(runs.map((r) => r.result()))
  })

  it('takes the workflows of a worker that stops gracefully at its next poll, whatever the lease', async () => {
    const shared = new MemoryStorage()
    const { fn, open } = gate('poll.handed')
    const submitter = new Runtime(shared)
    const handles = []
    for (let i = 0; i < N; i++) handles.push(await submitter.submit(fn(i), { workflowId: `handed-${i}` }))
    const long = { leaseTtlMs: 10_000, heartbeatMs: 1000 }
    const first = startWorker(shared, { pollIntervalMs: 10, shutdownGraceMs: 0, ...long })
    await vi.waitFor(
      () => expect(first.runtime.runningCount, 'the first worker to take every workflow').toBe(N),
      soon,
    )
    const view = countingView(shared)
    const pollIntervalMs = 20
    const second = startWorker(view, { pollIntervalMs, ...long })
    await vi.waitFor(
      () => expect(view.lists, 'ten polls of the second worker').toBeGreaterThanOrEqual(10),
      soon,
    )
    // These records keep their PENDING marker while RUNNING: still read once, not at every poll.
    expect(view.count(isWorkflowRecord)).toBe(N)
    const stopping = Date.now()
    await first.stop()
    await vi.waitFor(
      () => expect(second.runtime.runningCount, 'the second worker to take every workflow').toBe(N),
      soon,
    )
    expect(Date.now() - stopping).toBeLessThan(pollIntervalMs + 250)
    open()
    expect(await Promise.all(handles.map((h) => h.result()))).toEqual(Array.from({ length: N }, (_, i) => i))
  })

  it('deletes runner records expired for more than ten of its leases, and no others', async () => {
    const shared = new MemoryStorage()
    const store = await new Runtime(shared).store()
    const now = Date.now()
    const record = (runnerId: string, leaseExpiresAt: number) => ({
      v: 1 as const,
      runner: { host: 'elsewhere', pid: 1, runnerId },
      leaseExpiresAt,
      updatedAt: leaseExpiresAt - 1000,
    })
    await store.writeRunner(record('deadlong', now - 60_000))
    await store.writeRunner(record('deadlately', now + 200))
    await store.writeRunner(record('alive', now + 60_000))
    await shared.put(storeKeys.runner('garbage'), new TextEncoder().encode('not json'))
    // Ten leases of 100 ms: a record expired for more than a second goes, at a sweep every second.
    startWorker(shared, { pollIntervalMs: 10, leaseTtlMs: 100, heartbeatMs: 20 })
    await vi.waitFor(
      async () => expect(await shared.get(storeKeys.runner('deadlong')), 'the sweep').toBeUndefined(),
      soon,
    )
    expect(await shared.get(storeKeys.runner('alive'))).toBeDefined()
    // Expired for less than ten leases at the first sweep (a second in): kept until a later one.
    expect(await shared.get(storeKeys.runner('deadlately'))).toBeDefined()
    // Unreadable: left for a person to look at (its CorruptRecordError says to delete it).
    expect(await shared.get(storeKeys.runner('garbage'))).toBeDefined()
  })
})
