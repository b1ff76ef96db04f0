// Compile-time checks of durable functions' types (`workflow()`, `ctx.run`): `pnpm typecheck` fails
// if inference through them regresses. The bodies are never run; the runtime assertions only keep
// vitest from reporting an empty file.
import { describe, expectTypeOf, it } from 'vitest'
import {
  type EventResult,
  type StepNode,
  type StepResult,
  step,
  type WorkflowContext,
  waitForEvent,
  workflow,
} from './index.js'

interface Item {
  sku: string
  qty: number
}
interface Order {
  id: string
  items: Item[]
  total: number
}

const loadOrder = step(
  'durable-types.loadOrder',
  async (id: string): Promise<Order> => ({ id, items: [], total: 0 }),
)
const reserve = step('durable-types.reserve', (item: Item) => ({ sku: item.sku, held: true as const }))
const count = step('durable-types.count', (n: number) => `${n}`)
const add = step('durable-types.add', (a: number, b: number) => a + b)
const safe = step('durable-types.safe', (n: number) => n * 2, { catchExceptions: true })

describe('durable function types', () => {
  it('ctx.run resolves to the output of a node, of a graph ending in one, and of arrays, tuples and objects of nodes', () => {
    workflow('durable-types.run', async (ctx) => {
      expectTypeOf(ctx.run(loadOrder('o-1'))).toEqualTypeOf<Promise<Order>>()
      expectTypeOf(ctx.run(count(1), { key: 'count-1' })).toEqualTypeOf<Promise<string>>()
      // A whole graph: its last step's output.
      expectTypeOf(ctx.run(count(add(add(1, 2), 3)))).toEqualTypeOf<Promise<string>>()
      // A step with catchExceptions: the body gets its StepResult, not a rejection.
      expectTypeOf(ctx.run(safe(1))).toEqualTypeOf<Promise<StepResult<number>>>()
      const order = await ctx.run(loadOrder('o-1'))
      expectTypeOf(ctx.run(order.items.map(reserve))).toEqualTypeOf<Promise<{ sku: string; held: true }[]>>()
      expectTypeOf(ctx.run([count(1), add(1, 2)] as const)).toEqualTypeOf<
        Promise<readonly [string, number]>
      >()
      expectTypeOf(ctx.run({ label: count(1), sum: add(1, 2) })).toEqualTypeOf<
        Promise<{ readonly label: string; readonly sum: number }>
      >()
      return order
    })
  })

  it("a workflow's parameters and awaited result flow into its node", () => {
    const processOrder = workflow(
      'durable-types.processOrder',
      async (ctx, orderId: string, rush: boolean) => {
        const order = await ctx.run(loadOrder(orderId))
        return { orderId: order.id, rush }
      },
    )
    expectTypeOf(processOrder).parameters.toEqualTypeOf<
      [orderId: string | StepNode<string>, rush: boolean | StepNode<boolean>]
    >()
    expectTypeOf(processOrder('o-1', false)).toEqualTypeOf<StepNode<{ orderId: string; rush: boolean }>>()
    expectTypeOf(() => processOrder('o-1', true).run()).returns.toEqualTypeOf<
      Promise<{ orderId: string; rush: boolean }>
    >()
    // A body that returns a node (a graph to run next): its output, as a continuation's.
    const chained = workflow('durable-types.chained', (_ctx, n: number) => add(n, 1))
    expectTypeOf(chained(1)).toEqualTypeOf<StepNode<number>>()
    const plain = workflow('durable-types.plain', (_ctx) => 'done')
    expectTypeOf(plain()).toEqualTypeOf<StepNode<string>>()
    const caught = workflow('durable-types.caught', async (_ctx, n: number) => n, { catchExceptions: true })
    expectTypeOf(caught(1)).toEqualTypeOf<StepNode<StepResult<number>>>()
    // @ts-expect-error a number where the workflow takes a string
    processOrder(42, true)
    // @ts-expect-error a node of the wrong type as an argument
    processOrder(count(1), add(1, 2))
    // @ts-expect-error a missing argument
    processOrder('o-1')
  })

  it('a durable function is a step of a graph and can be awaited by another durable function', () => {
    const double = workflow('durable-types.double', async (ctx, n: number) => ctx.run(add(n, n)))
    // As a step argument of a graph, and fed by one.
    expectTypeOf(count(double(add(1, 2)))).toEqualTypeOf<StepNode<string>>()
    // @ts-expect-error its output is a number, not an Item
    reserve(double(1))
    const parent = workflow('durable-types.parent', async (ctx, n: number) => {
      const child = await ctx.run(double(n))
      expectTypeOf(child).toEqualTypeOf<number>()
      // An array literal is a tuple (ctx.run's parameter is `const`).
      const both = await ctx.run([double(1), count(2)])
      expectTypeOf(both).toEqualTypeOf<readonly [number, string]>()
      return ctx.run(count(child))
    })
    expectTypeOf(parent(1)).toEqualTypeOf<StepNode<string>>()
  })

  it('ctx.waitForEvent resolves to the event without a timeout, to an EventResult with one', () => {
    workflow('durable-types.events', async (ctx) => {
      expectTypeOf(ctx.waitForEvent<{ ok: boolean }>('approved')).toEqualTypeOf<Promise<{ ok: boolean }>>()
      expectTypeOf(ctx.waitForEvent('any')).toEqualTypeOf<Promise<unknown>>()
      expectTypeOf(ctx.waitForEvent<number>('n', { key: 'first-n' })).toEqualTypeOf<Promise<number>>()
      expectTypeOf(ctx.waitForEvent<number>('n', { timeout: '1h' })).toEqualTypeOf<
        Promise<EventResult<number>>
      >()
      expectTypeOf(ctx.waitForEvent<number>('n', { timeout: 1000, key: 'k' })).toEqualTypeOf<
        Promise<EventResult<number>>
      >()
      // The graph's own waitForEvent node, run through ctx.run, types the same way.
      expectTypeOf(ctx.run(waitForEvent<string>('s'))).toEqualTypeOf<Promise<string>>()
      expectTypeOf(ctx.sleep('1h')).toEqualTypeOf<Promise<number>>()
      expectTypeOf(ctx.sleepUntil(new Date())).toEqualTypeOf<Promise<number>>()
      expectTypeOf(ctx.now()).toEqualTypeOf<Promise<number>>()
      expectTypeOf(ctx.random()).toEqualTypeOf<Promise<number>>()
      expectTypeOf(ctx.uuid()).toEqualTypeOf<Promise<string>>()
      expectTypeOf(ctx.patched('change')).toEqualTypeOf<Promise<boolean>>()
    })
  })

  it('rejects what ctx.run and the context do not take', () => {
    workflow('durable-types.wrong', async (ctx: WorkflowContext) => {
      // @ts-expect-error a plain value is not a node
      await ctx.run(42)
      // @ts-expect-error a key is a string
      await ctx.run(count(1), { key: 7 })
      // @ts-expect-error an unknown option
      await ctx.run(count(1), { retries: 3 })
      // @ts-expect-error a step called with the wrong argument inside the body
      await ctx.run(count('1'))
      // @ts-expect-error the output is a string, not a number
      const n: number = await ctx.run(count(1))
      // @ts-expect-error a duration is a number or a string such as '1h'
      await ctx.sleep(true)
      // @ts-expect-error an event name is a string
      await ctx.waitForEvent(1)
      return n
    })
    // Never called: workflow() checks its options when it is called, and would throw.
    const misuse = () => {
      // @ts-expect-error the body's first parameter is the context, not an argument
      workflow('durable-types.noContext', async (orderId: string) => orderId)
      // @ts-expect-error isolation is an option of steps, not of durable functions
      workflow('durable-types.isolated', async () => 1, { isolate: true })
    }
    expectTypeOf(misuse).toBeFunction()
  })
})
