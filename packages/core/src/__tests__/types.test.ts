// Compile-time checks of the public types: `pnpm typecheck` fails if inference regresses.
// The runtime assertions only keep vitest from reporting an empty file.
import { describe, expectTypeOf, it } from 'vitest'
import { type StepNode, type StepResult, step } from '../index.js'

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
    expectTypeOf(fib(10).run()).toEqualTypeOf<Promise<number>>()
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
})
