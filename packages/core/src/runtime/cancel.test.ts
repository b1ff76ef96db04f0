// Cancel between runtimes on one storage (the cross-process cases, with real child processes, are
// in @wf/client's cancel.test.ts): a runner back from a pause past its lease starts nothing before
// it learns of a cancel written meanwhile, and a runner taking over a workflow whose record asks
// to stop starts nothing at all.

import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it, vi } from 'vitest'
import {
  CancelNotAcknowledgedError,
  CLOCK_SKEW_ALLOWANCE_MS,
  currentStep,
  MemoryStorage,
  Runtime,
  step,
  WorkflowCancelledError,
} from '../index.js'
import { freezable } from '../test-support/freezable-storage.js'
import { soon } from '../test-support/polling.js'

describe('cancel', () => {
  it('a runner back from a pause past its lease starts no retry before it learns of the cancel written meanwhile', async () => {
    const shared = new MemoryStorage()
    const paused = freezable(shared)
    const a = new Runtime(paused, { leaseTtlMs: 150, heartbeatMs: 30 })
    // B waits long enough (leaseTtlMs + heartbeatMs) to see A's lease over by the skew allowance.
    const b = new Runtime(shared, { leaseTtlMs: 3000, heartbeatMs: 1000 })
    const attempts: number[] = []
    let decline = () => {}
    const charge = step(
      'cc.charge',
      () => {
        attempts.push(currentStep().attempt)
        if (currentStep().attempt > 1) return 'charged'
        return new Promise<string>((_, reject) => {
          decline = () => reject(new Error('declined, to be retried'))
        })
      },
      { maxRetries: 3, backoff: { initialDelayMs: 1 } },
    )
    const ship = step('cc.ship', (x: string) => {
      attempts.push(-1)
      return x
    })
    const run = a.run(ship(charge()), { workflowId: 'paused' })
    run.catch(() => {})
    await vi.waitFor(() => expect(attempts, 'the first attempt to start').toHaveLength(1), soon)
    // A "pauses": its storage calls wait. Its lease runs out; B's cancel then writes CANCELED itself.
    paused.freeze()
    const outcome = await b.cancelDetailed('paused')
    expect(outcome).toMatchObject({ status: 'CANCELED', waitedFor: 'owner-gone' })
    expect(outcome.elapsedMs).toBeGreaterThanOrEqual(CLOCK_SKEW_ALLOWANCE_MS)
    // Still paused, A's attempt fails: its retry waits for A's lease instead of starting.
    decline()
    await sleep(50)
    expect(attempts).toEqual([1])
    paused.thaw()
    await expect(run).rejects.toBeInstanceOf(WorkflowCancelledError)
    expect(attempts).toEqual([1])
    const store = await b.store()
    expect(await store.listStepIds('paused')).toEqual([])
    expect((await store.requireWorkflow('paused')).record.status).toBe('CANCELED')
  })

  it('in the runtime driving it, cancel stops the run at once: a result arriving in the same tick is not committed, the next step never starts', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    const started: string[] = []
    let finish = () => {}
    const reserve = step(
      'cc.reserve',
      () =>
        new Promise<string>((resolve) => {
          started.push('reserve')
          finish = () => resolve('reserved')
        }),
    )
    const chargeCard = step('cc.chargeCard', (r: string) => {
      started.push('chargeCard')
      return `${r}+charged`
    })
    const run = runtime.run(chargeCard(reserve()), { workflowId: 'here' })
    run.catch(() => {})
    await vi.waitFor(() => expect(started, 'reserve to start').toHaveLength(1), soon)
    finish() // its result is on its way: the commit would run in the next microtask
    const canceled = runtime.cancel('here')
    await expect(canceled).resolves.toBe('CANCELED')
    await expect(run).rejects.toBeInstanceOf(WorkflowCancelledError)
    expect(started).toEqual(['reserve'])
    expect(await (await runtime.store()).listStepIds('here')).toEqual([])
  })

  it('a workflow waiting for a slot under maxRunningWorkflows is canceled at once: its run() rejects with WorkflowCancelledError', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage, { maxRunningWorkflows: 1 })
    let release: (() => void) | undefined
    const hold = step(
      'cc.hold',
      () =>
        new Promise<string>((resolve) => {
          release = () => resolve('held')
        }),
    )
    let ran = 0
    const later = step('cc.later', () => ++ran)
    const first = runtime.run(hold(), { workflowId: 'first' })
    await vi.waitFor(() => expect(release, 'the first workflow to take the slot').toBeDefined(), soon)
    const queued = runtime.run(later(), { workflowId: 'queued' })
    queued.catch(() => {})
    const store = await runtime.store()
    await vi.waitFor(
      async () =>
        expect((await store.readWorkflow('queued'))?.record.status, 'the queued one').toBe('PENDING'),
      soon,
    )
    expect(await runtime.cancelDetailed('queued')).toMatchObject({ status: 'CANCELED', was: 'PENDING' })
    await expect(queued).rejects.toBeInstanceOf(WorkflowCancelledError)
    release?.()
    await expect(first).resolves.toBe('held')
    expect(ran).toBe(0)
  })

  it('a runner taking over a workflow whose record asks to stop cancels it before starting any step', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    let ran = 0
    const work = step('cc.work', () => ++ran)
    await runtime.submit(work(), { workflowId: 'asked' })
    const store = await runtime.store()
    // Left RUNNING by a runner on another machine that is gone (no runner record), with a request.
    const pending = await store.requireWorkflow('asked')
    const by = { host: 'another-machine', pid: 1, runnerId: 'canceler' }
    await store.updateWorkflow(pending, {
      ...pending.record,
      status: 'RUNNING',
      owner: { host: 'another-machine', pid: 2, runnerId: 'gone' },
      lease: 'runner',
      runs: 1,
      cancelRequested: { at: Date.now(), by },
    })
    await expect(runtime.resume('asked')).rejects.toBeInstanceOf(WorkflowCancelledError)
    expect(ran).toBe(0)
    const { record } = await store.requireWorkflow('asked')
    expect(record.status).toBe('CANCELED')
    expect(record.owner).toBeUndefined()
  })

  it('the request stays when the owner does not answer, and a later cancel of a live owner waits again', async () => {
    const storage = new MemoryStorage()
    const owner = new Runtime(storage, { leaseTtlMs: 60_000, heartbeatMs: 20_000 })
    const canceler = new Runtime(storage, { leaseTtlMs: 100, heartbeatMs: 20 })
    let release = () => {}
    const slow = step(
      'cc.slow',
      () =>
        new Promise<string>((resolve) => {
          release = () => resolve('done')
        }),
    )
    const run = owner.run(slow(), { workflowId: 'slow-owner' })
    run.catch(() => {})
    const store = await owner.store()
    await vi.waitFor(
      async () =>
        expect((await store.readWorkflow('slow-owner'))?.record.status, 'the run to start').toBe('RUNNING'),
      soon,
    )
    // The owner's heartbeat (20 s) comes long after the canceler's patience (120 ms).
    const error = await canceler.cancel('slow-owner').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CancelNotAcknowledgedError)
    expect(error).toMatchObject({ waitedMs: 120, owner: owner.runner })
    const { record } = await store.requireWorkflow('slow-owner')
    expect(record.status).toBe('RUNNING')
    expect(record.cancelRequested?.by).toEqual(canceler.runner)
    // The owner ends its run: its final write finds the request and acknowledges it instead.
    release()
    await expect(run).rejects.toBeInstanceOf(WorkflowCancelledError)
    expect((await store.requireWorkflow('slow-owner')).record.status).toBe('CANCELED')
    await expect(canceler.cancel('slow-owner')).resolves.toBe('CANCELED')
  })
})
