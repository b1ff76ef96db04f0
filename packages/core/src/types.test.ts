// Compile-time checks of the public types: `pnpm typecheck` fails if inference regresses.
// The runtime assertions only keep vitest from reporting an empty file.
import { describe, expectTypeOf, it } from 'vitest'
import { type StepNode, type StepResult, step } from './index.js'

const parse = step('types.parse', (text: string) => Number.parseInt(text, 10))
const add = step('types.add', (a: number, b: number) => a + b)
const total = step(
  'types.total',
  (xs: number[], opts: { scale: number }) => xs.reduce((a, b) => a + b, 0) * opts.scale,
)
const later = step('types.later', async (n: number) => `${n}`)
const fib = step('types.fib', (n: number): number | StepNode<number> =>
  n <= 1 ? n : add(fib(n - 1), fib(n - 2)),
)
const safe = step('types.safe', (n: number) => n * 2, { catchExceptions: true })

describe('types', () => {
  it('infers argument and result types through the graph', () => {
    expectTypeOf(parse('1')).toEqualTypeOf<StepNode<number>>()
    expectTypeOf(add(parse('1'), 2)).toEqualTypeOf<StepNode<number>>()
    expectTypeOf(total([parse('1'), 2, add(1, 2)], { scale: parse('3') })).toEqualTypeOf<StepNode<number>>()
    expectTypeOf(later(1)).toEqualTypeOf<StepNode<string>>()
    expectTypeOf(fib(10)).toEqualTypeOf<StepNode<number>>()
    expectTypeOf(() => fib(10).run()).returns.toEqualTypeOf<Promise<number>>()
    expectTypeOf(safe(1)).toEqualTypeOf<StepNode<StepResult<number>>>()
    expectTypeOf(parse.options({ catchExceptions: true })('1')).toEqualTypeOf<StepNode<StepResult<number>>>()
    expectTypeOf(parse.options({ maxRetries: 1 })('1')).toEqualTypeOf<StepNode<number>>()
    // @ts-expect-error a string node where a number is expected
    add(later(1), 2)
    // @ts-expect-error wrong plain argument
    parse(1)
    // @ts-expect-error wrong nested node type
    total([later(1)], { scale: 1 })
  })

  it('gives a continuation that returns nodes in arrays and plain objects their outputs in place', () => {
    const fan = step('types.fan', (ns: number[]) => ns.map((n) => add(n, n)))
    expectTypeOf(fan([1, 2])).toEqualTypeOf<StepNode<number[]>>()
    const pair = step('types.pair', (n: number) => [parse(`${n}`), later(n)] as const)
    expectTypeOf(pair(1)).toEqualTypeOf<StepNode<readonly [number, string]>>()
    const report = step('types.report', async (n: number) => ({
      total: add(n, 1),
      parts: [later(n), 'x'],
      nested: { deep: [{ value: parse('1') }] },
      at: new Date(0),
    }))
    expectTypeOf(report(1)).toEqualTypeOf<
      StepNode<{ total: number; parts: string[]; nested: { deep: { value: number }[] }; at: Date }>
    >()
    // A structure with a node feeds a step that wants the plain values.
    expectTypeOf(total(fan([1]), { scale: 1 })).toEqualTypeOf<StepNode<number>>()
    const safeFan = step('types.safeFan', (ns: number[]) => ns.map((n) => add(n, 1)), {
      catchExceptions: true,
    })
    expectTypeOf(safeFan([1])).toEqualTypeOf<StepNode<StepResult<number[]>>>()
  })

  it('keeps result types without nodes as they are: classes, recursive types, unions', () => {
    class Money {
      readonly #cents: number
      constructor(cents: number) {
        this.#cents = cents
      }
      get cents(): number {
        return this.#cents
      }
    }
    interface Tree {
      value: number
      children: Tree[]
    }
    expectTypeOf(step('types.money', () => new Money(1))()).toEqualTypeOf<StepNode<Money>>()
    expectTypeOf(step('types.tree', (): Tree => ({ value: 1, children: [] }))()).toEqualTypeOf<
      StepNode<Tree>
    >()
    expectTypeOf(step('types.maybe', (n: number) => (n > 0 ? [n] : null))(1)).toEqualTypeOf<
      StepNode<number[] | null>
    >()
    // @ts-expect-error a fan-out's output is number[], not string[]
    const _wrong: StepNode<string[]> = step('types.fan2', (ns: number[]) => ns.map((n) => add(n, n)))([1])
  })
})
