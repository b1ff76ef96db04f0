// The root step's commit is the final workflow record when the root returns a value: one write
// less per workflow. These pin down that it is still committed exactly once, that a crash before
// it runs only the root again, and that every reader still sees the root step as committed.
import { describe, expect, it } from 'vitest'
import {
  createWorker,
  MemoryStorage,
  Runtime,
  type StepNode,
  type Storage,
  StorageUnavailableError,
  step,
  storeKeys,
  WorkflowCancelledError,
  WorkflowExecutionError,
} from '../index.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const ran = new Map<string, number>()
const bump = (name: string) => ran.set(name, (ran.get(name) ?? 0) + 1)
const runs = (name: string) => ran.get(name) ?? 0

const leaf = step('rc.leaf', (x: number) => {
  bump('leaf')
  return x + 1
})
const total = step('rc.total', (a: number, b: number) => {
  bump('total')
  return a + b
})
const plan = step('rc.plan', (n: number): StepNode<number> => total(leaf(n), leaf(n + 1)))
const fails = step(
  'rc.fails',
  (_x: number): number => {
    throw new Error('root failed')
  },
  { maxRetries: 0 },
)

/** A MemoryStorage whose writes of chosen keys fail, or run `before` first; it records every put. */
function probeStorage() {
  const storage = new MemoryStorage()
  const puts: string[] = []
  const hooks = {
    fail: (_key: string) => false,
    before: async (_key: string) => {},
  }
  const put = storage.put.bind(storage)
  storage.put = async (key, data, condition) => {
    puts.push(key)
    await hooks.before(key)
    if (hooks.fail(key)) throw new StorageUnavailableError(`injected failure writing ${key}`)
    return put(key, data, condition)
  }
  return { storage: storage as Storage, puts, hooks }
}

describe('the final workflow record commits the root step', () => {
  it('writes no step record for a root that returns a value, and every reader sees it committed', async () => {
    const { storage, puts } = probeStorage()
    const runtime = new Runtime(storage)
    const startedAt = Date.now()
    await expect(runtime.run(total(leaf(1), leaf(2)), { workflowId: 'shown' })).resolves.toBe(5)
    expect(puts).not.toContain(storeKeys.step('shown', 'rc.total'))
    const store = await runtime.store()
    const { record } = await store.requireWorkflow('shown')
    expect(record.rootStep).toMatchObject({ name: 'rc.total', attempts: 1 })
    expect(record.rootStep?.startTime).toBeGreaterThanOrEqual(startedAt)
    expect(record.rootStep?.endTime).toBeGreaterThanOrEqual(record.rootStep?.startTime ?? 0)
    expect(await store.listStepIds('shown')).toEqual(['rc.leaf', 'rc.leaf_1', 'rc.total'])
    expect(await store.listStepIds('shown', record)).toEqual(['rc.leaf', 'rc.leaf_1', 'rc.total'])
    for (const root of [
      await store.readStep('shown', 'rc.total'),
      await store.readStep('shown', 'rc.total', record),
    ]) {
      expect(root).toMatchObject({ kind: 'value', name: 'rc.total', output: record.output, attempts: 1 })
    }
    expect(await store.readStep('shown', 'rc.missing')).toBeUndefined()
    const before = runs('total')
    await expect(new Runtime(storage).resume('shown')).resolves.toBe(5)
    expect(runs('total')).toBe(before)
  })

  it('reads a workflow stored by an earlier version, whose root step has a record of its own', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await runtime.run(total(leaf(3), leaf(4)), { workflowId: 'earlier' })
    const store = await runtime.store()
    // Rewrite it as earlier versions stored it: the root's step record, and no `rootStep`.
    const found = await store.requireWorkflow('earlier')
    const { rootStep, ...rest } = found.record
    if (!rootStep || !rest.output) throw new Error('expected the new layout')
    await store.commitStep('earlier', 'rc.total', { v: 1, kind: 'value', output: rest.output, ...rootStep })
    await store.updateWorkflow(found, rest)
    expect(await store.listStepIds('earlier')).toEqual(['rc.leaf', 'rc.leaf_1', 'rc.total'])
    expect(await store.readStep('earlier', 'rc.total')).toMatchObject({ kind: 'value', output: rest.output })
    expect(await store.readStep('earlier', 'rc.total', rest)).toMatchObject({
      kind: 'value',
      output: rest.output,
    })
    await expect(new Runtime(storage).resume('earlier')).resolves.toBe(9)
  })

  it('runs only the root step again on resume after a crash between the root and the final record', async () => {
    const { storage, hooks } = probeStorage()
    const runtime = new Runtime(storage)
    const before = { leaf: runs('leaf'), total: runs('total') }
    // The storage goes away when the final record is written (its SUCCESSFUL marker goes first).
    hooks.fail = (key) => key === storeKeys.index('SUCCESSFUL', 'crashed')
    await expect(runtime.run(total(leaf(10), leaf(20)), { workflowId: 'crashed' })).rejects.toThrow(
      /injected/,
    )
    hooks.fail = () => false
    const store = await runtime.store()
    expect(await store.listStepIds('crashed')).toEqual(['rc.leaf', 'rc.leaf_1'])
    await expect(new Runtime(storage).resume('crashed')).resolves.toBe(32)
    expect(runs('leaf') - before.leaf).toBe(2)
    expect(runs('total') - before.total).toBe(2)
    expect(await store.listStepIds('crashed')).toEqual(['rc.leaf', 'rc.leaf_1', 'rc.total'])
  })

  it('a runner whose final compare-and-swap loses adopts the output another runner committed, never overwriting it', async () => {
    const { storage, hooks } = probeStorage()
    const runtime = new Runtime(storage)
    const store = await runtime.store()
    // Just before this runner's final record, another runner takes the workflow over and completes it.
    hooks.before = async (key) => {
      if (key !== storeKeys.index('SUCCESSFUL', 'raced')) return
      hooks.before = async () => {}
      const found = await store.requireWorkflow('raced')
      const taken = await store.updateWorkflow(found, {
        ...found.record,
        owner: { host: 'elsewhere', pid: 1, runnerId: 'other' },
        runs: found.record.runs + 1,
      })
      const output = await store.storeOutput('raced', runtime.codec.encode(42))
      await store.updateWorkflow(taken, { ...taken.record, status: 'SUCCESSFUL', output })
    }
    await expect(runtime.run(total(leaf(0), leaf(0)), { workflowId: 'raced' })).resolves.toBe(42)
    const { record } = await store.requireWorkflow('raced')
    expect(runtime.codec.decode(await store.loadOutput('raced', record.output ?? { inline: '' }))).toBe(42)
    expect(record.rootStep).toBeUndefined()
    expect(record.owner?.runnerId).toBe('other')
  })

  it('a cancel that lands between the root and the final record wins: the run is canceled, nothing is committed', async () => {
    const { storage, hooks } = probeStorage()
    const runtime = new Runtime(storage)
    let canceling: Promise<string> | undefined
    hooks.before = async (key) => {
      if (key !== storeKeys.index('SUCCESSFUL', 'canceled')) return
      hooks.before = async () => {}
      // Another runtime asks the owner to stop: its request is in the record before the final write.
      const other = new Runtime(storage)
      canceling = other.cancel('canceled')
      const store = await other.store()
      while ((await store.requireWorkflow('canceled')).record.cancelRequested === undefined) await sleep(1)
    }
    await expect(runtime.run(total(leaf(0), leaf(1)), { workflowId: 'canceled' })).rejects.toBeInstanceOf(
      WorkflowCancelledError,
    )
    await expect(canceling).resolves.toBe('CANCELED')
    const store = await runtime.store()
    const { record } = await store.requireWorkflow('canceled')
    expect(record.status).toBe('CANCELED')
    expect(record.output).toBeUndefined()
    expect(record.rootStep).toBeUndefined()
    expect(await store.listStepIds('canceled')).toEqual(['rc.leaf', 'rc.leaf_1'])
  })

  it('keeps the step record of a root that returns a continuation, and of the sub-graph that ends it', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await expect(runtime.run(plan(5), { workflowId: 'continued' })).resolves.toBe(13)
    const store = await runtime.store()
    const { record } = await store.requireWorkflow('continued')
    expect(record.rootStep).toBeUndefined()
    expect((await store.readStep('continued', 'rc.plan'))?.kind).toBe('continuation')
    expect(await store.listStepIds('continued')).toHaveLength(4)
  })

  it('records a failing root as before: FAILED, no output, no step record', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await expect(runtime.run(fails(leaf(1)), { workflowId: 'failed' })).rejects.toBeInstanceOf(
      WorkflowExecutionError,
    )
    const store = await runtime.store()
    const { record } = await store.requireWorkflow('failed')
    expect(record).toMatchObject({ status: 'FAILED', error: { stepId: 'rc.fails' } })
    expect(record.rootStep).toBeUndefined()
    expect(await store.listStepIds('failed')).toEqual(['rc.leaf'])
  })

  it('stores a blob-sized root output once, and the final record refers to it', async () => {
    const { storage, puts } = probeStorage()
    const runtime = new Runtime(storage, { blobThresholdBytes: 1024 })
    const big = step('rc.big', (n: number) => 'y'.repeat(n))
    await expect(runtime.run(big(5000), { workflowId: 'big' })).resolves.toHaveLength(5000)
    expect(puts.filter((key) => key.startsWith('workflows/big/blobs/'))).toHaveLength(1)
    const store = await runtime.store()
    const { record } = await store.requireWorkflow('big')
    expect(record.output).toHaveProperty('blob')
    expect((await store.readStep('big', 'rc.big'))?.output).toEqual(record.output)
    await expect(new Runtime(storage).resume('big')).resolves.toHaveLength(5000)
  })

  it('a worker that stops while the root step runs lets it finish within the grace period and commits it', async () => {
    const storage = new MemoryStorage()
    let finished = 0
    const slowRoot = step('rc.slowRoot', async (x: number) => {
      await sleep(60)
      finished++
      return x * 2
    })
    const handle = await new Runtime(storage).submit(slowRoot(leaf(1)), { workflowId: 'graceful-root' })
    const worker = createWorker({ storage, pollIntervalMs: 10, shutdownGraceMs: 1000, handleSignals: false })
    while (finished === 0 && (await storage.list(storeKeys.stepsPrefix('graceful-root'))).keys.length === 0)
      await sleep(5)
    await worker.stop()
    expect(finished).toBe(1)
    const store = await worker.runtime.store()
    expect((await store.requireWorkflow('graceful-root')).record.status).toBe('SUCCESSFUL')
    await expect(handle.result()).resolves.toBe(4)
  })
})
