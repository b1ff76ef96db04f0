// What a workflow writes: the storage puts per workflow are the budget of benchmark issue #8, and
// the layout change behind them (inline graphs) must still resume workflows stored the old way.
import { describe, expect, it, vi } from 'vitest'
import { createWorker, MemoryStorage, Runtime, step, storeKeys } from '../index.js'
import { recordingPuts } from '../test-support/recording-puts.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const inc = step('writes.inc', (x: number) => x + 1)
const chain = (length: number) => {
  let node = inc(0)
  for (let i = 1; i < length; i++) node = inc(node)
  return node
}

let failOnce = true
const flaky = step(
  'writes.flaky',
  (x: number) => {
    if (failOnce) throw new Error('fails until fixed')
    return x * 10
  },
  { maxRetries: 0 },
)

const slow = step('writes.slow', async (x: number) => {
  await sleep(40)
  return x
})

describe('writes per workflow', () => {
  it('a run of 10 sequential steps writes its record twice, a start batch, its creation-time entry, its final marker, its ended index entry and one record per step but the root, which the final record commits', async () => {
    const { storage, puts } = recordingPuts()
    const runtime = new Runtime(storage)
    await runtime.run(chain(10), { workflowId: 'ten' })
    const steps = puts.filter((k) => k.startsWith(storeKeys.stepsPrefix('ten')))
    expect(steps).toHaveLength(9)
    expect(steps).not.toContain(storeKeys.step('ten', 'writes.inc_9'))
    // And the runner's lease, once for the runtime (not per workflow).
    expect(puts.filter((k) => !steps.includes(k)).sort()).toEqual([
      expect.stringMatching(/^created\/\d{13}-ten$/),
      expect.stringMatching(/^ended\/\d{4}-\d\d-\d\d\/ten$/),
      storeKeys.index('SUCCESSFUL', 'ten'),
      storeKeys.runner(runtime.runner.runnerId),
      storeKeys.startBatch(`${runtime.runner.runnerId}.0`),
      storeKeys.workflow('ten'),
      storeKeys.workflow('ten'),
    ])
    // The batch is gone with its one workflow; the index lists it by its final marker.
    expect((await storage.list(storeKeys.startBatchesPrefix)).keys).toEqual([])
    expect((await storage.list('index/')).keys).toEqual([storeKeys.index('SUCCESSFUL', 'ten')])
  })

  it('workflows started at the same moment share start batches: 14 writes per 10-step workflow', async () => {
    const { storage, puts } = recordingPuts()
    const runtime = new Runtime(storage)
    const ids = Array.from({ length: 50 }, (_, i) => `many-${i}`)
    await Promise.all(ids.map((workflowId) => runtime.run(chain(10), { workflowId })))
    const batches = puts.filter((k) => k.startsWith(storeKeys.startBatchesPrefix))
    expect(batches.length).toBeLessThanOrEqual(3)
    expect(puts.filter((k) => k.startsWith('index/RUNNING/'))).toEqual([])
    for (const workflowId of ids) {
      const own = puts.filter(
        (k) =>
          k.startsWith(storeKeys.workflowPrefix(workflowId)) ||
          k.endsWith(`/${workflowId}`) ||
          k.endsWith(`-${workflowId}`),
      )
      // The record twice, 9 steps, the creation-time entry (written with the first record), the
      // SUCCESSFUL marker, the ended index entry.
      expect(own).toHaveLength(14)
    }
    expect((await storage.list(storeKeys.startBatchesPrefix)).keys).toEqual([])
  })

  it('a submitted workflow keeps its PENDING marker when a runner takes it', async () => {
    const { storage, puts } = recordingPuts()
    const runtime = new Runtime(storage)
    await runtime.submit(chain(3), { workflowId: 'queued' })
    await runtime.resume('queued')
    expect(puts.filter((k) => !k.startsWith(storeKeys.stepsPrefix('queued'))).sort()).toEqual([
      expect.stringMatching(/^created\/\d{13}-queued$/),
      expect.stringMatching(/^ended\/\d{4}-\d\d-\d\d\/queued$/),
      storeKeys.index('PENDING', 'queued'),
      storeKeys.index('SUCCESSFUL', 'queued'),
      storeKeys.runner(runtime.runner.runnerId),
      storeKeys.workflow('queued'),
      storeKeys.workflow('queued'),
      storeKeys.workflow('queued'),
    ])
    expect((await storage.list('index/')).keys).toEqual([storeKeys.index('SUCCESSFUL', 'queued')])
  })

  it('a canceled or released workflow moves its PENDING marker', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await runtime.submit(chain(3), { workflowId: 'gone' })
    const store = await runtime.store()
    const found = await store.requireWorkflow('gone')
    // As a runner that took it and died would leave it: RUNNING, still under its PENDING marker.
    const taken = await store.updateWorkflow(found, { ...found.record, status: 'RUNNING', runs: 1 })
    expect(taken.record.indexedAs).toBe('PENDING')
    expect((await storage.list('index/')).keys).toEqual([storeKeys.index('PENDING', 'gone')])
    expect(await store.repairIndex('gone')).toBe('RUNNING')
    expect((await storage.list('index/')).keys).toEqual([storeKeys.index('PENDING', 'gone')])
    await runtime.cancel('gone')
    expect((await storage.list('index/')).keys).toEqual([storeKeys.index('CANCELED', 'gone')])
    expect((await store.requireWorkflow('gone')).record.indexedAs).toBeUndefined()
  })

  it('a worker finds a RESUMABLE workflow that is still under its PENDING marker', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await runtime.submit(chain(2), { workflowId: 'orphan' })
    const store = await runtime.store()
    const found = await store.requireWorkflow('orphan')
    // Taken by a runner that died at once: RUNNING, no live owner.
    await store.updateWorkflow(found, { ...found.record, status: 'RUNNING', runs: 1 })
    const worker = createWorker({ storage, pollIntervalMs: 10, handleSignals: false })
    await expect(worker.runtime.waitForResult('orphan', 10)).resolves.toBe(2)
    await worker.stop()
    expect((await storage.list('index/')).keys).toEqual([storeKeys.index('SUCCESSFUL', 'orphan')])
  })

  it('keeps a small graph inline in the workflow record, with no key of its own', async () => {
    const { storage, puts } = recordingPuts()
    const runtime = new Runtime(storage)
    await runtime.run(chain(3), { workflowId: 'small' })
    expect(puts.some((k) => k.startsWith('workflows/small/graph/'))).toBe(false)
    const { record } = await (await runtime.store()).requireWorkflow('small')
    expect(typeof record.graph).toBe('object')
  })

  it('serializes an inline graph once per submission, not at each write of the record that carries it', async () => {
    const runtime = new Runtime(new MemoryStorage())
    const holdsGraph = (value: unknown) =>
      typeof value === 'object' &&
      value !== null &&
      ('nodes' in value || typeof (value as { graph?: unknown }).graph === 'object')
    const stringify = vi.spyOn(JSON, 'stringify')
    try {
      await runtime.run(chain(3), { workflowId: 'once' })
      expect(stringify.mock.calls.filter(([value]) => holdsGraph(value))).toHaveLength(1)
    } finally {
      stringify.mockRestore()
    }
    // The record was written twice (RUNNING, SUCCESSFUL), each time with its graph.
    const store = await runtime.store()
    const { record } = await store.requireWorkflow('once')
    expect(record.status).toBe('SUCCESSFUL')
    expect((await store.loadGraph(record)).nodes.map((n) => n.id)).toEqual([
      'writes.inc',
      'writes.inc_1',
      'writes.inc_2',
    ])
  })

  it('stores a large graph under a key of its own and resumes from it', async () => {
    const { storage, puts } = recordingPuts()
    const runtime = new Runtime(storage)
    failOnce = true
    // Big arguments make a big graph (each is encoded into it).
    const big = 'x'.repeat(20_000)
    const node = flaky(inc(step('writes.len', (s: string) => s.length)(big)))
    await expect(runtime.run(node, { workflowId: 'large' })).rejects.toThrow()
    const graphKeys = puts.filter((k) => k.startsWith('workflows/large/graph/'))
    expect(graphKeys).toHaveLength(1)
    const { record } = await (await runtime.store()).requireWorkflow('large')
    expect(typeof record.graph).toBe('string')
    failOnce = false
    await expect(runtime.resume('large')).resolves.toBe(200_010)
  })

  it('resumes a workflow stored by an earlier version, whose graph has a key of its own', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    failOnce = true
    await expect(runtime.run(flaky(inc(4)), { workflowId: 'old-layout' })).rejects.toThrow()
    // Rewrite it the way earlier versions stored it: the graph under its key, the record naming it.
    const store = await runtime.store()
    const found = await store.requireWorkflow('old-layout')
    const nonce = await store.writeGraph('old-layout', await store.loadGraph(found.record))
    await store.updateWorkflow(found, { ...found.record, graph: nonce })
    failOnce = false
    await expect(new Runtime(storage).resume('old-layout')).resolves.toBe(50)
  })

  it('a run shorter than half the lease renews no lease; a longer one renews the runner lease, never the workflow record', async () => {
    const { storage, puts } = recordingPuts()
    const runtime = new Runtime(storage, { leaseTtlMs: 300, heartbeatMs: 50 })
    const runnerKey = storeKeys.runner(runtime.runner.runnerId)
    await runtime.run(slow(1), { workflowId: 'short' }) // ≈ 40 ms
    expect(puts.filter((k) => k === storeKeys.workflow('short'))).toHaveLength(2)
    expect(puts.filter((k) => k === runnerKey)).toHaveLength(1)
    // ≈ 400 ms: longer than the lease itself, so it must have been renewed, yet not at every heartbeat.
    let node = slow(0)
    for (let i = 1; i < 10; i++) node = slow(node)
    const before = puts.filter((k) => k === runnerKey).length
    await runtime.run(node, { workflowId: 'long' })
    expect(puts.filter((k) => k === storeKeys.workflow('long'))).toHaveLength(2)
    const renewals = puts.filter((k) => k === runnerKey).length - before
    expect(renewals).toBeGreaterThanOrEqual(1)
    expect(renewals).toBeLessThan(400 / 50 - 1)
  })
})
