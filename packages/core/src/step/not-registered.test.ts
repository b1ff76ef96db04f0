import { expect, it } from 'vitest'
import { MemoryStorage, Runtime, StepNotRegisteredError } from '../index.js'

it('raises StepNotRegisteredError on resume when a stored step name is not registered, and leaves the workflow resumable', async () => {
  const runtime = new Runtime(new MemoryStorage())
  const store = await runtime.store()
  // A workflow submitted by another program, whose step this process never registered.
  const graph = await store.writeGraph('foreign', {
    v: 1,
    root: 'other.step',
    nodes: [{ id: 'other.step', name: 'other.step', options: {}, args: runtime.codec.encode([1]), refs: [] }],
  })
  const now = Date.now()
  await store.createWorkflow({
    v: 1,
    workflowId: 'foreign',
    status: 'RUNNING',
    createdAt: now,
    updatedAt: now,
    metadata: {},
    graph,
    rootStepId: 'other.step',
    runs: 1,
  })
  const error = await runtime.resume('foreign').catch((e: unknown) => e)
  expect(error).toBeInstanceOf(StepNotRegisteredError)
  expect((error as StepNotRegisteredError).stepName).toBe('other.step')
  const after = await store.requireWorkflow('foreign')
  expect(runtime.deriveStatus(after.record)).toBe('RESUMABLE')
  expect(after.record.error).toBeUndefined()
})
