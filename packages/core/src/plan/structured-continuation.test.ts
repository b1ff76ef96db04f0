// A step body that returns nodes inside an array or a plain object continues into them: the step's
// output is the same structure with each node's output in place, committed and resumed like any
// continuation (its sub-graph ends in the built-in `wf:collect` node).

import { describe, expect, it } from 'vitest'
import {
  InvalidStepNameError,
  MemoryStorage,
  Runtime,
  SerializationError,
  step,
  storeKeys,
  WorkflowExecutionError,
} from '../index.js'

const newRuntime = () => {
  const storage = new MemoryStorage()
  return { storage, runtime: new Runtime(storage) }
}

const runs = new Map<number, number>()
let failAt: number | undefined
const dbl = step(
  'sc.dbl',
  (n: number) => {
    runs.set(n, (runs.get(n) ?? 0) + 1)
    if (n === failAt) throw new Error(`dbl(${n}) is down`)
    return n * 2
  },
  { maxRetries: 0 },
)
const fan = step('sc.fan', (ns: number[]) => ns.map((n) => dbl(n)))
const report = step('sc.report', (n: number) => ({
  total: dbl(n),
  parts: [dbl(n + 1), 'fixed'],
  nested: { deep: { value: dbl(n + 2) } },
  at: new Date(0),
}))
const sum = step('sc.sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0))

describe('a continuation returning nodes in arrays and plain objects', () => {
  it('runs a fan-out returned as an array and gives the array of outputs', async () => {
    const { runtime } = newRuntime()
    const output: number[] = await runtime.run(fan([1, 2, 3]), { workflowId: 'fan-array' })
    expect(output).toEqual([2, 4, 6])
  })

  it('runs nodes returned inside an object, keeping the other values and their types', async () => {
    const { runtime } = newRuntime()
    await expect(runtime.run(report(1), { workflowId: 'fan-object' })).resolves.toEqual({
      total: 2,
      parts: [4, 'fixed'],
      nested: { deep: { value: 6 } },
      at: new Date(0),
    })
  })

  it('feeds the structure to a downstream step and commits each node under the continuation', async () => {
    const { runtime } = newRuntime()
    await expect(runtime.run(sum(fan([1, 2, 3])), { workflowId: 'fan-down' })).resolves.toBe(12)
    const store = await runtime.store()
    expect(await store.listStepIds('fan-down')).toEqual([
      'sc.fan',
      'sc.fan~sc.dbl',
      'sc.fan~sc.dbl_1',
      'sc.fan~sc.dbl_2',
      'sc.fan~wf:collect',
      'sc.sum',
    ])
    const continued = await store.readStep('fan-down', 'sc.fan')
    expect(continued?.kind).toBe('continuation')
    // The built-in step changes only with wf: no fingerprint of it to refuse a resume over.
    expect(Object.keys(continued?.graph?.fingerprints ?? {})).toEqual(['sc.dbl'])
  })

  it('wraps the structure once for a step that catches exceptions', async () => {
    const { runtime } = newRuntime()
    const safeFan = step('sc.safeFan', (ns: number[]) => ns.map((n) => dbl(n)), { catchExceptions: true })
    await expect(runtime.run(safeFan([4, 5]))).resolves.toEqual({ ok: true, value: [8, 10] })
  })

  it('resumes a half-finished fan-out without re-running the nodes that committed', async () => {
    const { runtime } = newRuntime()
    runs.clear()
    failAt = 12
    await expect(
      runtime.run(sum(fan([10, 11, 12, 13])), { workflowId: 'fan-resume' }),
    ).rejects.toBeInstanceOf(WorkflowExecutionError)
    failAt = undefined
    // A new runtime on the same storage: the continuation's sub-graph comes back from its record.
    const again = new Runtime(await runtime.storage())
    await expect(again.resume('fan-resume')).resolves.toBe(92)
    expect(Object.fromEntries(runs)).toEqual({ 10: 1, 11: 1, 12: 2, 13: 1 })
  })

  it('refuses values next to the nodes that cannot be stored, naming the step and the path', async () => {
    const { runtime, storage } = newRuntime()
    const bad = step('sc.bad', (n: number) => ({ items: [dbl(n), () => n] }))
    const error = await runtime.run(bad(1), { workflowId: 'fan-bad' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkflowExecutionError)
    const cause = (error as Error).cause as SerializationError
    expect(cause).toBeInstanceOf(SerializationError)
    expect(cause.stepId).toBe('sc.bad')
    expect(cause.path).toBe('items[1]')
    expect(cause.message).toContain(
      'cannot store the result of step "sc.bad": the value at items[1] is a function',
    )
    expect(await storage.get(storeKeys.step('fan-bad', 'sc.bad'))).toBeUndefined()
  })

  it('keeps the built-in step names for wf: step() refuses names starting with "wf:"', () => {
    expect(() => step('wf:collect', (x: unknown) => x)).toThrow(InvalidStepNameError)
    expect(() => step('wf:mine', () => 1)).toThrow(/wf's own steps/)
  })
})
