// Durable functions (`workflow()`) seen through the client, on memory and on a real folder: their
// calls in the graph (`getGraph`, `wf show`) in the order they started, under the function's step,
// named by the step they called; a failed call and a nested function's calls among them.

import { step, workflow } from '@wf/core'
import { describe, expect, it } from 'vitest'
import { showText } from './cli/show.js'
import type { WorkflowClient } from './index.js'
import { backends, eachTestOn } from './test-support/harness.js'

const add = step('durable-client-test.add', (a: number, b: number) => a + b)
const boom = step(
  'durable-client-test.boom',
  (): number => {
    throw new Error('out of stock')
  },
  { maxRetries: 0 },
)
const child = workflow('durable-client-test.child', async (ctx, x: number) => ctx.run(add(x, 1)))
const order = workflow('durable-client-test.order', async (ctx, n: number) => {
  let total = 0
  for (let i = 0; i < n; i++) total = await ctx.run(add(total, i))
  const both = await ctx.run([add(1, 1), add(2, 2)])
  let failed = ''
  try {
    await ctx.run(boom())
  } catch (error) {
    failed = (error as Error).message
  }
  return { total, both, failed, child: await ctx.run(child(total), { key: 'child' }) }
})
const fn = 'durable-client-test.order'

for (const backend of backends) {
  describe(`durable functions in the client, on ${backend.name}`, () => {
    let client: WorkflowClient
    eachTestOn(backend, (bed) => {
      client = bed.client
    })

    it('lists the calls under the function, in the order they started, nested calls included', async () => {
      await client.runtime.run(order(12), { workflowId: 'order-1' })
      const graph = await client.getGraph('order-1')
      const root = graph.steps.find((s) => s.stepId === fn)
      const calls = root?.children ?? []
      const numbered = Array.from({ length: 12 }, (_, i) => `${fn}~${i}`)
      expect(calls.map((c) => c.stepId)).toEqual([...numbered, `${fn}~12`, `${fn}~13`, `${fn}~k:child`])
      expect(calls.map((c) => c.name).slice(0, 12)).toEqual(Array(12).fill('durable-client-test.add'))
      expect(calls.every((c) => c.status === 'SUCCESSFUL')).toBe(true)
      // The array call is a graph: its steps nested under its key.
      expect(calls[12]?.children.map((c) => c.stepId).sort()).toEqual(
        [
          `${fn}~12~durable-client-test.add`,
          `${fn}~12~durable-client-test.add_1`,
          `${fn}~12~wf:collect`,
        ].sort(),
      )
      // The nested function's own call.
      expect(calls[14]?.children.map((c) => c.stepId)).toEqual([`${fn}~k:child~0`])
      expect(graph.byId.get(`${fn}~k:child~0`)?.record?.kind).toBe('value')
    })

    it('shows the calls with the steps they called in `wf show`', async () => {
      await client.runtime.run(order(2), { workflowId: 'order-2' })
      const plain = { color: false, json: false, stdout: () => {}, stderr: () => {} }
      const text = showText(await client.getMetadata('order-2'), await client.getGraph('order-2'), plain)
      const lines = text.split('\n')
      const at = (id: string) => lines.findIndex((line) => line.includes(id))
      expect(at(`${fn}~0 (durable-client-test.add)`)).toBeGreaterThan(at(fn))
      expect(at(`${fn}~1 (durable-client-test.add)`)).toBeGreaterThan(at(`${fn}~0 `))
      expect(lines[at(`${fn}~3 (durable-client-test.boom)`)]).toMatch(/caught Error: out of stock/)
      expect(at(`${fn}~k:child (durable-client-test.child)`)).toBeGreaterThan(at(`${fn}~3 `))
    })
  })
}
