// The failed attempts of a step, recorded beside it (`workflows/<id>/failures/<stepId>`): each
// error's name, message and time, the last five kept, the attempt count and time span, written
// only when an attempt fails and deleted with the workflow.

import { describe, expect, it } from 'vitest'
import { MemoryStorage, Runtime, type Storage, step, storeKeys, WorkflowExecutionError } from '../index.js'

/** A MemoryStorage that records the key of every put. */
function countingStorage(): { storage: Storage; puts: string[] } {
  const storage = new MemoryStorage()
  const puts: string[] = []
  const put = storage.put.bind(storage)
  storage.put = (key, data, cond) => {
    puts.push(key)
    return put(key, data, cond)
  }
  return { storage, puts }
}

const noDelay = { backoff: { initialDelayMs: 0 } }
let failuresLeft = 0
const flaky = step(
  'fl.flaky',
  (x: number) => {
    if (failuresLeft-- > 0) throw new RangeError(`flaky(${x}) failed, ${failuresLeft} to go`)
    return x * 2
  },
  { maxRetries: 3, ...noDelay },
)
const broken = step(
  'fl.broken',
  (): number => {
    throw new TypeError('card declined')
  },
  { maxRetries: 6, ...noDelay },
)
const next = step('fl.next', (x: number) => x + 1)

describe('recording failed attempts', () => {
  it('records each failed attempt of a step that then succeeds, beside its committed record', async () => {
    const { storage } = countingStorage()
    const runtime = new Runtime(storage)
    failuresLeft = 2
    const before = Date.now()
    await expect(runtime.run(next(flaky(5)), { workflowId: 'retried' })).resolves.toBe(11)
    const store = await runtime.store()
    const failures = await store.readFailures('retried', 'fl.flaky')
    expect(failures).toMatchObject({ v: 1, name: 'fl.flaky', attempts: 2 })
    expect(failures?.errors.map((e) => [e.attempt, e.name, e.message])).toEqual([
      [1, 'RangeError', 'flaky(5) failed, 1 to go'],
      [2, 'RangeError', 'flaky(5) failed, 0 to go'],
    ])
    // The stack ends at the step body: the engine's frames that called it are left out.
    const stack = failures?.errors[0]?.stack ?? ''
    expect(stack).toMatch(/^RangeError: flaky\(5\) failed, 1 to go\n\s+at .*failures\.test\.ts:\d+/)
    expect(stack).not.toMatch(/execution\.(ts|js)/)
    expect(failures?.startTime).toBeGreaterThanOrEqual(before)
    expect(failures?.endTime).toBeGreaterThanOrEqual(failures?.startTime ?? Number.NaN)
    expect(failures?.caught).toBeUndefined()
    // The step record holds only the committed result.
    expect(await store.readStep('retried', 'fl.flaky')).toMatchObject({ kind: 'value', attempts: 3 })
    expect(await store.listFailedStepIds('retried')).toEqual(['fl.flaky'])
  })

  it('keeps the last five errors and counts every attempt, written before the workflow reads FAILED', async () => {
    const runtime = new Runtime(new MemoryStorage())
    await expect(runtime.run(next(broken()), { workflowId: 'declined' })).rejects.toBeInstanceOf(
      WorkflowExecutionError,
    )
    const store = await runtime.store()
    const failures = await store.readFailures('declined', 'fl.broken')
    expect(failures?.attempts).toBe(7)
    expect(failures?.errors.map((e) => e.attempt)).toEqual([3, 4, 5, 6, 7])
    expect(failures?.errors.every((e) => e.name === 'TypeError' && e.message === 'card declined')).toBe(true)
    expect((await store.requireWorkflow('declined')).record.status).toBe('FAILED')
  })

  it('goes on counting across a resume, from the first start of the first run', async () => {
    const runtime = new Runtime(new MemoryStorage())
    const once = broken.options({ maxRetries: 0 })
    await expect(runtime.run(once(), { workflowId: 'again' })).rejects.toBeInstanceOf(WorkflowExecutionError)
    const store = await runtime.store()
    const first = await store.readFailures('again', 'fl.broken')
    await expect(runtime.resume('again')).rejects.toBeInstanceOf(WorkflowExecutionError)
    const second = await store.readFailures('again', 'fl.broken')
    expect(second?.attempts).toBe(2)
    expect(second?.errors.map((e) => e.attempt)).toEqual([1, 2])
    expect(second?.startTime).toBe(first?.startTime)
  })

  it('marks an error that catchExceptions turned into the output as caught', async () => {
    const runtime = new Runtime(new MemoryStorage())
    const safe = broken.options({ maxRetries: 0, catchExceptions: true })
    const output = await runtime.run(safe(), { workflowId: 'caught' })
    expect(output).toMatchObject({ ok: false, error: { name: 'TypeError', message: 'card declined' } })
    const store = await runtime.store()
    expect(await store.readFailures('caught', 'fl.broken')).toMatchObject({ attempts: 1, caught: true })
  })

  it('records a result that cannot be stored as the failure of its attempt', async () => {
    const runtime = new Runtime(new MemoryStorage())
    const unstorable = step('fl.unstorable', () => ({ run: () => 1 }))
    await expect(runtime.run(unstorable(), { workflowId: 'unstorable' })).rejects.toBeInstanceOf(
      WorkflowExecutionError,
    )
    const failures = await (await runtime.store()).readFailures('unstorable', 'fl.unstorable')
    expect(failures).toMatchObject({ attempts: 1, errors: [{ name: 'SerializationError' }] })
    expect(failures?.errors[0]?.message).toContain('the value at run is a function')
  })

  it('writes nothing under failures/ when no attempt fails', async () => {
    const { storage, puts } = countingStorage()
    const runtime = new Runtime(storage)
    failuresLeft = 0
    await runtime.run(next(flaky(1)), { workflowId: 'clean' })
    expect(puts.filter((key) => key.includes('/failures/'))).toEqual([])
    expect(await (await runtime.store()).listFailedStepIds('clean')).toEqual([])
  })

  it('is deleted with its workflow', async () => {
    const runtime = new Runtime(new MemoryStorage())
    await expect(runtime.run(broken(), { workflowId: 'gone' })).rejects.toBeInstanceOf(WorkflowExecutionError)
    const store = await runtime.store()
    expect(await store.listFailedStepIds('gone')).toEqual(['fl.broken'])
    await store.deleteWorkflow('gone')
    expect((await store.storage.list(storeKeys.workflowPrefix('gone'))).keys).toEqual([])
  })
})
