// Start batches: the workflows a runner starts together are indexed by one record listing their
// ids instead of a RUNNING marker each. A batch left behind (a runner cut off, workflows released)
// must keep them findable until each has a marker of its own, then be cleared.

import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createWorker, currentStep, MemoryStorage, Runtime, step, storeKeys, type Worker } from '../index.js'
import { countingView } from '../test-support/counting-view.js'
import { freezable } from '../test-support/freezable-storage.js'
import { soon } from '../test-support/polling.js'

let opened = false
/** Waits until `opened`, or fails when its run is aborted. */
const waits = step('batches.waits', async (i: number) => {
  const { signal } = currentStep()
  while (!opened) {
    if (signal.aborted) throw signal.reason
    await sleep(5)
  }
  return i
})

/** Ends at once for even arguments; waits until `opened` for odd ones. */
const someWait = step('batches.some-wait', async (i: number) => {
  while (i % 2 === 1 && !opened) await sleep(5)
  return i
})

const keys = async (storage: MemoryStorage, prefix: string) => (await storage.list(prefix)).keys

const workers: Worker[] = []
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()))
})

describe('start batches', () => {
  it('index the workflows of a runner that was cut off until a worker took them over, then are cleared', {
    timeout: 20_000,
  }, async () => {
    opened = false
    const shared = new MemoryStorage()
    const cutOff = freezable(shared)
    const dying = new Runtime(cutOff, { leaseTtlMs: 200, heartbeatMs: 40 })
    const ids = ['cut-0', 'cut-1', 'cut-2', 'cut-3', 'cut-4']
    const runs = await Promise.all(ids.map((workflowId, i) => dying.runAsync(waits(i), { workflowId })))
    // No marker of their own: the batch (or two, as the first may be written alone) lists them.
    expect(await keys(shared, 'index/')).toEqual([])
    const batches = await keys(shared, storeKeys.startBatchesPrefix)
    expect(batches.length).toBeGreaterThanOrEqual(1)
    cutOff.freeze()
    // A sweep every ten of its leases (1 s): the batches go at the first sweep after all ended.
    const worker = createWorker({
      storage: shared,
      handleSignals: false,
      concurrency: 10,
      pollIntervalMs: 10,
      leaseTtlMs: 100,
    })
    workers.push(worker)
    await vi.waitFor(
      () => expect(worker.runtime.runningCount, 'the worker to take them all over').toBe(ids.length),
      soon,
    )
    // Taken over: each has a RUNNING marker of its own now, and left its batch (gone with the last).
    expect(await keys(shared, 'index/RUNNING/')).toEqual(ids.map((id) => storeKeys.index('RUNNING', id)))
    expect(await keys(shared, storeKeys.startBatchesPrefix)).toEqual([])
    opened = true
    for (const [i, id] of ids.entries()) await expect(worker.runtime.waitForResult(id)).resolves.toBe(i)
    expect(await keys(shared, 'index/')).toEqual(ids.map((id) => storeKeys.index('SUCCESSFUL', id)))
    cutOff.thaw()
    await Promise.allSettled(runs.map((r) => r.result()))
  })

  it('stay while a workflow in them has no final record, whoever else ended', async () => {
    opened = false
    const shared = new MemoryStorage()
    const runtime = new Runtime(shared)
    const handles = await Promise.all(
      ['a', 'b'].map((id, i) => runtime.runAsync(waits(i), { workflowId: id })),
    )
    const batch = await keys(shared, storeKeys.startBatchesPrefix)
    // Given back (a worker stopping): RUNNING without an owner, RESUMABLE, listed by its batch only.
    await runtime.release('a')
    opened = true
    await expect(handles[1]?.result()).resolves.toBe(1)
    // Its batch stays for it; the other batch (if they were two) went with 'b'.
    const left = await runtime.store()
    const names = await left.listStartBatches()
    expect(names.length).toBeGreaterThanOrEqual(1)
    expect(batch).toEqual(expect.arrayContaining(names.map((n) => storeKeys.startBatch(n))))
    const lists = await Promise.all(
      names.map(async (n) => (await left.readStartBatch(n))?.record.workflowIds),
    )
    expect(lists.flat()).toContain('a')
    expect(await keys(shared, 'index/')).toEqual([storeKeys.index('SUCCESSFUL', 'b')])
    // A worker finds it through the batch and finishes it.
    const worker = createWorker({ storage: shared, handleSignals: false, pollIntervalMs: 10 })
    workers.push(worker)
    await expect(worker.runtime.waitForResult('a', 10)).resolves.toBe(0)
  })

  it('lose the id of a deleted workflow, and go with the last one', async () => {
    opened = false
    const shared = new MemoryStorage()
    const runtime = new Runtime(shared)
    const store = await runtime.store()
    await Promise.all(['d-1', 'd-2'].map((id, i) => runtime.runAsync(waits(i), { workflowId: id })))
    await Promise.all(['d-1', 'd-2'].map((id) => runtime.release(id)))
    const names = await store.listStartBatches()
    const listed = async () =>
      (await Promise.all(names.map((n) => store.readStartBatch(n)))).flatMap(
        (b) => b?.record.workflowIds ?? [],
      )
    expect((await listed()).sort()).toEqual(['d-1', 'd-2'])
    await store.deleteWorkflow('d-1')
    expect(await listed()).toEqual(['d-2'])
    await store.deleteWorkflow('d-2')
    expect(await keys(shared, storeKeys.startBatchesPrefix)).toEqual([])
    expect(await keys(shared, '')).toEqual([storeKeys.runner(runtime.runner.runnerId)])
  })

  it('are read by a worker once per workflow that ended, not at every rotation', async () => {
    opened = false
    const shared = new MemoryStorage()
    const view = countingView(shared)
    const runtime = new Runtime(shared)
    const ids = Array.from({ length: 10 }, (_, i) => `some-${i}`)
    const handles = await Promise.all(
      ids.map((workflowId, i) => runtime.runAsync(someWait(i), { workflowId })),
    )
    for (const [i, handle] of handles.entries()) if (i % 2 === 0) await handle.result()
    // A rotation of 100 to 200 ms: seven or more in this second.
    const worker = createWorker({ storage: view, handleSignals: false, pollIntervalMs: 10, leaseTtlMs: 200 })
    workers.push(worker)
    await sleep(1000)
    for (const [i, id] of ids.entries()) {
      const reads = view.gets.get(storeKeys.workflow(id)) ?? 0
      // Ended: read once (not at all when its batch went with it). Running under a live runner:
      // read again at each rotation.
      if (i % 2 === 0) expect(reads).toBeLessThanOrEqual(1)
      else expect(reads).toBeGreaterThanOrEqual(4)
    }
    opened = true
    await Promise.all(handles.map((h) => h.result()))
    expect(await keys(shared, storeKeys.startBatchesPrefix)).toEqual([])
  })

  it('give an id whose record never came a RUNNING marker once their runner is gone for good', async () => {
    const shared = new MemoryStorage()
    const store = await new Runtime(shared).store()
    // A runner wrote this batch, created one of the two records, and died (no runner record left).
    await store.writeStartBatch('dead.0', {
      v: 1,
      runnerId: 'dead',
      createdAt: 0,
      workflowIds: ['born', 'unborn'],
    })
    const bornRuntime = new Runtime(shared)
    await bornRuntime.run(someWait(0), { workflowId: 'born' })
    const worker = createWorker({
      storage: shared,
      handleSignals: false,
      pollIntervalMs: 10,
      leaseTtlMs: 100,
    })
    workers.push(worker)
    // The sweep every ten leases (1 s): 'unborn' gets the marker earlier versions wrote first
    // (listings skip a marker without a record), then the batch indexes nothing and goes.
    await vi.waitFor(
      async () => expect(await keys(shared, storeKeys.startBatchesPrefix), 'the sweeps').toEqual([]),
      soon,
    )
    expect(await keys(shared, 'index/')).toEqual([
      storeKeys.index('RUNNING', 'unborn'),
      storeKeys.index('SUCCESSFUL', 'born'),
    ])
  }, 10_000)

  it('let go of the id of a submission that lost to another', async () => {
    opened = false
    const shared = new MemoryStorage()
    const [first, second] = [new Runtime(shared), new Runtime(shared)]
    const [won, lost] = await Promise.allSettled([
      first.runAsync(waits(1), { workflowId: 'twice' }),
      second.runAsync(waits(1), { workflowId: 'twice' }),
    ])
    // One runs it; the other finds it driven by a live runner.
    expect([won.status, lost.status].sort()).toEqual(['fulfilled', 'rejected'])
    const store = await first.store()
    const lists = await Promise.all((await store.listStartBatches()).map((n) => store.readStartBatch(n)))
    expect(lists.flatMap((b) => b?.record.workflowIds ?? [])).toEqual(['twice'])
    opened = true
    const handle =
      won.status === 'fulfilled' ? won.value : lost.status === 'fulfilled' ? lost.value : undefined
    await expect(handle?.result()).resolves.toBe(1)
    expect(await keys(shared, storeKeys.startBatchesPrefix)).toEqual([])
  })
})
