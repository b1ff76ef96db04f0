// What a user reads when a value cannot be stored: wf's words (the class by name, a Promise to
// await, a function or a symbol) and where in the value, never the codec library's own message.

import { describe, expect, it } from 'vitest'
import { MemoryStorage, Runtime, SerializationError, step, WorkflowExecutionError } from '../index.js'

const runtime = new Runtime(new MemoryStorage())

class Order {
  constructor(readonly id: number) {}
}

/** The SerializationError a workflow of `node` failed with. */
async function failureOf(node: Parameters<Runtime['run']>[0]): Promise<SerializationError> {
  const error = await runtime.run(node).catch((e: unknown) => e)
  const cause = error instanceof WorkflowExecutionError ? error.cause : error
  expect(cause).toBeInstanceOf(SerializationError)
  return cause as SerializationError
}

describe('serialization errors', () => {
  it('name the class of an unsupported instance and where it is', async () => {
    const error = await failureOf(step('se.orders', () => ({ items: [1, 2, new Order(3)] }))())
    expect(error.path).toBe('items[2]')
    expect(error.stepId).toBe('se.orders')
    expect(error.message).toMatch(
      /^cannot store the result of step "se\.orders": the value at items\[2\] is an instance of class Order, .*register a codec type for Order/,
    )
    expect(error.message).not.toMatch(/POJO/)
  })

  it('say to await a Promise returned inside a value, not what the codec library offers', async () => {
    const error = await failureOf(step('se.promise', () => ({ total: Promise.resolve(1) }))())
    expect(error.message).toContain(
      'a step returned a Promise inside its value (the value at total): await it first',
    )
    expect(error.message).not.toMatch(/stringifyAsync/)
  })

  it('refuse a function with its path', async () => {
    const error = await failureOf(step('se.fn', () => ({ callbacks: { done: () => 1 } }))())
    expect(error.path).toBe('callbacks.done')
    expect(error.message).toContain(
      'the value at callbacks.done is a function, and functions cannot be stored',
    )
  })

  it('refuse a symbol with its path', async () => {
    const error = await failureOf(step('se.symbol', () => [1, Symbol('tag')])())
    expect(error.path).toBe('[1]')
    expect(error.message).toContain('the value at [1] is a symbol, and symbols cannot be stored')
  })

  it('name the argument, and the place in it, of a value that cannot be stored', async () => {
    const takes = step('se.takes', (input: { tag: unknown }, other: unknown) => [input, other])
    const error = await runtime.run(takes({ tag: Symbol('s') }, 1)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SerializationError)
    expect((error as Error).message).toContain(
      'cannot store the arguments of step "se.takes": the value at tag of argument 1 is a symbol',
    )
    const promised = await runtime.run(takes({ tag: 1 }, Promise.resolve(2))).catch((e: unknown) => e)
    expect((promised as Error).message).toContain('argument 2 is a Promise: await it first')
  })
})
