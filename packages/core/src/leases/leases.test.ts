import { describe, expect, it } from 'vitest'
import {
  createWorker,
  currentStep,
  MemoryStorage,
  RunnerShutdownError,
  Runtime,
  step,
  WorkflowCancelledError,
  WorkflowLeaseLostError,
  WorkflowStillActiveError,
} from '../index.js'

const fast = { leaseTtlMs: 150, heartbeatMs: 30 }
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A step that waits until released or aborted, and reports what happened to it. */
function gate(name: string) {
  const state = { started: 0, aborted: 0, release: () => {} }
  const fn = step(name, () => {
    state.started++
    return new Promise<string>((resolve) => {
      state.release = () => resolve('done')
      currentStep().signal.addEventListener('abort', () => {
        state.aborted++
        resolve('aborted')
      })
    })
  })
  return { fn, state }
}

describe('leases between runners sharing one storage', () => {
  it('refuses to resume or re-run a workflow another live runner holds', async () => {
    const storage = new MemoryStorage()
    const a = new Runtime(storage, fast)
    const b = new Runtime(storage, fast)
    const { fn, state } = gate('lease.held')
    const running = a.run(fn(), { workflowId: 'held' })
    await sleep(20)
    await expect(b.resume('held')).rejects.toBeInstanceOf(WorkflowStillActiveError)
    await expect(b.run(fn(), { workflowId: 'held' })).rejects.toBeInstanceOf(WorkflowStillActiveError)
    // Still refused after several heartbeats: the lease is renewed.
    await sleep(300)
    await expect(b.resume('held')).rejects.toBeInstanceOf(WorkflowStillActiveError)
    state.release()
    await expect(running).resolves.toBe('done')
  })

  it('derives RESUMABLE from an expired lease of a runner on another machine', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage, fast)
    const store = await runtime.store()
    const graph = await store.writeGraph('elsewhere', { v: 1, root: 'x', nodes: [] })
    const base = {
      v: 1 as const,
      workflowId: 'elsewhere',
      status: 'RUNNING' as const,
      createdAt: 0,
      updatedAt: 0,
      metadata: {},
      graph,
      rootStepId: 'x',
      runs: 1,
      owner: { host: 'another-machine', pid: 1, runnerId: 'r' },
    }
    const created = await store.createWorkflow({ ...base, leaseExpiresAt: Date.now() + 60_000 })
    expect(runtime.deriveStatus(created.record)).toBe('RUNNING')
    const expired = await store.updateWorkflow(created, { ...base, leaseExpiresAt: Date.now() - 1 })
    expect(runtime.deriveStatus(expired.record)).toBe('RESUMABLE')
  })

  it('cancels a workflow held by another runner within one heartbeat', async () => {
    const storage = new MemoryStorage()
    const a = new Runtime(storage, fast)
    const b = new Runtime(storage, fast)
    const { fn, state } = gate('lease.cancelRemote')
    const running = a.run(fn(), { workflowId: 'remote-cancel' })
    running.catch(() => {}) // rejects before the cancel resolves, as the owner acknowledges first
    await sleep(20)
    const t = Date.now()
    await expect(b.cancel('remote-cancel')).resolves.toBe('CANCELED')
    await expect(running).rejects.toBeInstanceOf(WorkflowCancelledError)
    expect(Date.now() - t).toBeLessThan(fast.heartbeatMs * 3 + 100)
    expect(state.aborted).toBe(1)
    expect((await (await b.store()).requireWorkflow('remote-cancel')).record.status).toBe('CANCELED')
  })

  it('fences a runner whose lease was taken over: it stops and commits nothing more', async () => {
    const storage = new MemoryStorage()
    const a = new Runtime(storage, fast)
    const store = await a.store()
    const { fn } = gate('lease.fenced')
    const running = a.run(fn(), { workflowId: 'fenced' })
    await sleep(20)
    // Another runner takes the record over (as after A was paused past its lease).
    const current = await store.requireWorkflow('fenced')
    await store.updateWorkflow(current, {
      ...current.record,
      owner: { host: 'other', pid: 2, runnerId: 'thief' },
      leaseExpiresAt: Date.now() + 60_000,
    })
    await expect(running).rejects.toBeInstanceOf(WorkflowLeaseLostError)
    expect(await store.listStepIds('fenced')).toEqual([])
    const after = await store.requireWorkflow('fenced')
    expect(after.record.owner?.runnerId).toBe('thief')
    expect(after.record.status).toBe('RUNNING')
  })
})

describe('PENDING workflows, workers and maxRunningWorkflows', () => {
  it('submit stores a PENDING workflow that a worker picks up and finishes', async () => {
    const storage = new MemoryStorage()
    const submitter = new Runtime(storage, fast)
    const double = step('lease.double', (x: number) => x * 2)
    const handle = await submitter.submit(double(21), { workflowId: 'queued' })
    const store = await submitter.store()
    expect((await store.requireWorkflow('queued')).record.status).toBe('PENDING')
    const worker = createWorker({ storage, pollIntervalMs: 20, handleSignals: false, ...fast })
    await expect(handle.result()).resolves.toBe(42)
    await worker.stop()
    expect((await store.requireWorkflow('queued')).record.status).toBe('SUCCESSFUL')
  })

  it('a worker takes PENDING workflows in submission order', async () => {
    const storage = new MemoryStorage()
    const submitter = new Runtime(storage, fast)
    const order: number[] = []
    const record = step('lease.record', (i: number) => {
      order.push(i)
      return i
    })
    const handles = []
    for (let i = 0; i < 5; i++) {
      handles.push(await submitter.submit(record(i), { workflowId: `order-${4 - i}` }))
      await sleep(2)
    }
    const worker = createWorker({
      storage,
      concurrency: 1,
      pollIntervalMs: 10,
      handleSignals: false,
      ...fast,
    })
    await Promise.all(handles.map((h) => h.result()))
    await worker.stop()
    expect(order).toEqual([0, 1, 2, 3, 4])
  })

  it('resumes RESUMABLE workflows without anyone calling resumeAll', async () => {
    const storage = new MemoryStorage()
    const a = new Runtime(storage, fast)
    const { fn, state } = gate('lease.abandoned')
    const first = a.run(fn(), { workflowId: 'abandoned' })
    await sleep(20)
    // A shuts down and gives the workflow back: it is RESUMABLE for anyone.
    await a.release('abandoned', 0)
    await expect(first).rejects.toBeInstanceOf(RunnerShutdownError)
    const store = await a.store()
    expect(a.deriveStatus((await store.requireWorkflow('abandoned')).record)).toBe('RESUMABLE')
    const worker = createWorker({ storage, pollIntervalMs: 10, handleSignals: false, ...fast })
    while (state.started < 2) await sleep(5)
    state.release()
    await expect(worker.runtime.waitForResult('abandoned')).resolves.toBe('done')
    await worker.stop()
  })

  it('on stop, a worker lets running steps finish and commit within the grace period, then releases', async () => {
    const storage = new MemoryStorage()
    const submitter = new Runtime(storage, fast)
    let finished = 0
    const slow = step('lease.slowStep', async (i: number) => {
      await sleep(60)
      finished++
      return i
    })
    const next = step('lease.next', (i: number) => i + 1)
    const handle = await submitter.submit(next(slow(1)), { workflowId: 'graceful' })
    const worker = createWorker({
      storage,
      pollIntervalMs: 10,
      shutdownGraceMs: 1000,
      handleSignals: false,
      ...fast,
    })
    await sleep(30)
    await worker.stop()
    const store = await submitter.store()
    expect(finished).toBe(1)
    expect(await store.listStepIds('graceful')).toEqual(['lease.slowStep'])
    const record = (await store.requireWorkflow('graceful')).record
    expect(submitter.deriveStatus(record)).toBe('RESUMABLE')
    expect(record.owner).toBeUndefined()
    const second = createWorker({ storage, pollIntervalMs: 10, handleSignals: false, ...fast })
    await expect(handle.result()).resolves.toBe(2)
    await second.stop()
    expect(finished).toBe(1)
  })

  it('retries a workflow it cannot run (a step not registered here) with a growing delay, not at every poll', async () => {
    const storage = new MemoryStorage()
    const submitter = new Runtime(storage, fast)
    const store = await submitter.store()
    const graph = await store.writeGraph('foreign', {
      v: 1,
      root: 'elsewhere.step',
      nodes: [{ id: 'elsewhere.step', name: 'elsewhere.step', options: {}, args: '[[1],1]', refs: [] }],
    })
    const now = Date.now()
    await store.createWorkflow({
      v: 1,
      workflowId: 'foreign',
      status: 'PENDING',
      createdAt: now,
      updatedAt: now,
      metadata: {},
      graph,
      rootStepId: 'elsewhere.step',
      runs: 0,
    })
    const errors: string[] = []
    const worker = createWorker({
      storage,
      pollIntervalMs: 10,
      handleSignals: false,
      ...fast,
      onWorkflow: ({ workflowId, outcome }) => outcome === 'ERROR' && errors.push(workflowId),
    })
    await sleep(700)
    await worker.stop()
    // Polling every 10 ms would try ~70 times; doubling delays from 10 ms allow about 6.
    expect(errors.length).toBeGreaterThanOrEqual(2)
    expect(errors.length).toBeLessThanOrEqual(8)
    expect(new Set(errors)).toEqual(new Set(['foreign']))
    // Refused before any takeover: the record is as it was submitted.
    const { record } = await store.requireWorkflow('foreign')
    expect(submitter.deriveStatus(record)).toBe('PENDING')
    expect(record.runs).toBe(0)
  })

  it('with maxRunningWorkflows, later runs wait as PENDING and start in submission order', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage, { ...fast, maxRunningWorkflows: 1 })
    const store = await runtime.store()
    const started: string[] = []
    const note = step('lease.note', async (id: string) => {
      started.push(id)
      await sleep(20)
      return id
    })
    const a = runtime.run(note('a'), { workflowId: 'max-a' })
    await sleep(5)
    const b = runtime.run(note('b'), { workflowId: 'max-b' })
    const c = runtime.run(note('c'), { workflowId: 'max-c' })
    await sleep(5)
    expect((await store.requireWorkflow('max-b')).record.status).toBe('PENDING')
    expect(runtime.runningCount).toBe(1)
    await expect(Promise.all([a, b, c])).resolves.toEqual(['a', 'b', 'c'])
    expect(started).toEqual(['a', 'b', 'c'])
  })
})

describe('a lease that ran out while nobody took over', () => {
  it('is renewed before the next commit instead of failing the run', async () => {
    // The heartbeat's writes of the runner record (and any write of the workflow record) are held
    // up (a slow storage) past the lease.
    class SlowRecordStorage extends MemoryStorage {
      slow = false
      override async put(...args: Parameters<MemoryStorage['put']>): ReturnType<MemoryStorage['put']> {
        if (this.slow && (args[0].endsWith('/workflow') || args[0].startsWith('runners/'))) await sleep(250)
        return super.put(...args)
      }
    }
    const storage = new SlowRecordStorage()
    const runtime = new Runtime(storage, { leaseTtlMs: 100, heartbeatMs: 30 })
    const waitThenReturn = step('lease.slowHeartbeat', async () => {
      storage.slow = true
      await sleep(300)
      storage.slow = false
      return 'committed'
    })
    await expect(runtime.run(waitThenReturn(), { workflowId: 'slow-heartbeat' })).resolves.toBe('committed')
    const store = await runtime.store()
    expect(await store.listStepIds('slow-heartbeat')).toEqual(['lease.slowHeartbeat'])
  })
})
