// What the client shows of a durable function's calls (issue #23: "`getMetadata`, `wf show` (the
// steps in the order they were awaited)"). Each call is committed under its key
// (`<functionStepId>~<n>`, `~k:<key>`), in no stored graph: the graph view finds them by their keys.

import { MemoryStorage, step, workflow } from '@wf/core'
import { afterEach, expect, it } from 'vitest'
import { WorkflowClient } from './index.js'

const add = step('durable-inspect.add', (a: number, b: number) => a + b)
const total = workflow('durable-inspect.total', async (ctx, n: number) => {
  let sum = 0
  for (let i = 0; i < n; i++) sum = await ctx.run(add(sum, i))
  return ctx.run(add(sum, 100), { key: 'bonus' })
})
const fn = 'durable-inspect.total'

const clients: WorkflowClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
})

async function ran(): Promise<WorkflowClient> {
  const client = new WorkflowClient({ storage: new MemoryStorage() })
  clients.push(client)
  expect(await client.runtime.run(total(3), { workflowId: 'total' })).toBe(103)
  return client
}

it('the committed calls of a durable function are stored under their keys', async () => {
  const client = await ran()
  const store = await client.runtime.store()
  expect((await store.listStepIds('total')).sort()).toEqual(
    [fn, `${fn}~0`, `${fn}~1`, `${fn}~2`, `${fn}~k:bonus`].sort(),
  )
})

it("getGraph lists a durable function's calls under it, in the order they were awaited", async () => {
  const client = await ran()
  const graph = await client.getGraph('total')
  const root = graph.byId.get(fn)
  expect(root?.children.map((s) => s.stepId)).toEqual([`${fn}~0`, `${fn}~1`, `${fn}~2`, `${fn}~k:bonus`])
  expect(graph.committed).toBe(5)
})

it("getMetadata reads a durable function's call by its key", async () => {
  const client = await ran()
  expect(await client.getMetadata('total', { stepId: `${fn}~1` })).toMatchObject({
    stepId: `${fn}~1`,
    name: 'durable-inspect.add',
    status: 'SUCCESSFUL',
  })
})
