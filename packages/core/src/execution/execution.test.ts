// The execution's hot path runs a step that returns a plain value without any await of its own:
// these pin down what must still hold there (context, thenables, errors, stack depth, memory).
import { stringify } from 'devalue'
import { describe, expect, it } from 'vitest'
import {
  type CodecType,
  createCodec,
  currentStep,
  defaultCodec,
  MemoryStorage,
  Runtime,
  type StepNode,
  step,
} from '../index.js'
import { encodePlain } from '../model/codec.js'
import { planGraph } from '../plan/graph.js'
import { WorkflowStore } from '../store/store.js'
import { LazyAbortController } from '../util/lazy-abort.js'
import { Execution, ExecutionStopped } from './execution.js'

const newRuntime = () => new Runtime(new MemoryStorage())

describe('running steps', () => {
  it('gives currentStep() to a synchronous body, and after every await of an async one', async () => {
    const seen: string[] = []
    const syncStep = step('ex.sync', (x: number) => {
      seen.push(`sync ${currentStep().stepId}`)
      return x + 1
    })
    const asyncStep = step('ex.async', async (x: number) => {
      seen.push(`before ${currentStep().stepId}`)
      await new Promise((resolve) => setTimeout(resolve, 1))
      seen.push(`after ${currentStep().stepId}`)
      await Promise.resolve()
      return x + currentStep().attempt
    })
    const out = await newRuntime().run(asyncStep(syncStep(asyncStep(syncStep(1)))), { workflowId: 'ctx' })
    expect(out).toBe(5)
    expect(seen).toEqual([
      'sync ex.sync',
      'before ex.async',
      'after ex.async',
      'sync ex.sync_1',
      'before ex.async_1',
      'after ex.async_1',
    ])
    expect(() => currentStep()).toThrow(/only be called while a step is running/)
  })

  it('gives each of many parallel async steps its own context', async () => {
    const echo = step('ex.echo', async (i: number) => {
      await new Promise((resolve) => setTimeout(resolve, (i * 7) % 5))
      return `${i}:${currentStep().stepId}`
    })
    const all = step('ex.all', (xs: string[]) => xs)
    const out = await newRuntime().run(all(Array.from({ length: 20 }, (_, i) => echo(i))), {
      workflowId: 'par',
    })
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => `${i}:${i === 0 ? 'ex.echo' : `ex.echo_${i}`}`))
  })

  it('adopts a thenable that is not a promise, inside the step context', async () => {
    const thenable = step('ex.thenable', (x: number) => ({
      // biome-ignore lint/suspicious/noThenProperty: the point of the test
      then(resolve: (v: number) => void) {
        resolve(x + currentStep().attempt)
      },
    }))
    expect(await newRuntime().run(thenable(41), { workflowId: 'thenable' })).toBe(42)
  })

  it('retries a synchronous throw like a rejection', async () => {
    let calls = 0
    const flaky = step(
      'ex.flaky',
      () => {
        calls++
        if (calls < 3) throw new Error('not yet')
        return calls
      },
      { backoff: { initialDelayMs: 1 } },
    )
    expect(await newRuntime().run(flaky(), { workflowId: 'flaky' })).toBe(3)
  })

  it('fails the workflow, not the process, when retryOn itself throws', async () => {
    const picky = step(
      'ex.picky',
      () => {
        throw new Error('step error')
      },
      {
        retryOn: () => {
          throw new Error('retryOn broke')
        },
      },
    )
    await expect(newRuntime().run(picky(), { workflowId: 'picky' })).rejects.toThrow(/retryOn broke/)
  })

  it('runs 30,000 uncheckpointed synchronous steps in a chain without growing the stack', async () => {
    const next = step('ex.next', (x: number) => x + 1, { checkpoint: false })
    let node: StepNode<number> = next(0)
    for (let i = 1; i < 30_000; i++) node = next(node)
    expect(await newRuntime().run(node, { workflowId: 'deep' })).toBe(30_000)
  })

  it('adopts what another runner committed first, also for a body that returns at once', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    const store = await runtime.store()
    const now = step('ex.now', () => 1)
    const pass = step('ex.pass', (x: number) => x)
    // A duplicate runner got there first (its record is already stored when this one commits).
    await store.commitStep('early', 'ex.now', {
      v: 1,
      kind: 'value',
      name: 'ex.now',
      output: { inline: runtime.codec.encode(42) },
      startTime: 0,
      endTime: 0,
      attempts: 1,
    })
    expect(await runtime.run(pass(now()), { workflowId: 'early' })).toBe(42)
  })

  it('waits for the lease check before each commit, and stops the workflow when it fails', async () => {
    const inc = step('ex.leased', (x: number) => x + 1)
    const run = (beforeCommit: () => Promise<void> | undefined) => {
      const plan = planGraph(inc(inc(inc(0))), '', defaultCodec)
      return new Execution({
        workflowId: 'leased',
        store: new WorkflowStore(new MemoryStorage()),
        codec: defaultCodec,
        maxConcurrency: 10,
        abort: new LazyAbortController(),
        beforeCommit,
      }).run(plan, false)
    }
    let checks = 0
    expect(await run(() => new Promise((resolve) => setTimeout(() => resolve(void checks++), 1)))).toBe(3)
    expect(checks).toBe(3)
    const lost = new Error('lease lost')
    let calls = 0
    const error = await run(() => (++calls === 2 ? Promise.reject(lost) : undefined)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ExecutionStopped)
    expect((error as ExecutionStopped).failure).toEqual({ kind: 'infrastructure', error: lost })
    expect(calls).toBe(2)
  })

  it('drops what started steps no longer need, so a long chain does not keep its whole plan', async () => {
    const inc = step('ex.inc', (x: number) => x + 1)
    let node: StepNode<number> = inc(0)
    for (let i = 1; i < 2_000; i++) node = inc(node)
    const plan = planGraph(node, '', defaultCodec)
    expect(plan.nodes[1]?.deps).toEqual([plan.nodes[0]])
    const execution = new Execution({
      workflowId: 'collect',
      store: new WorkflowStore(new MemoryStorage()),
      codec: defaultCodec,
      maxConcurrency: 10,
      abort: new LazyAbortController(),
    })
    expect(await execution.run(plan, false)).toBe(2_000)
    // No node links upstream any more, and only the root keeps its output.
    expect(plan.nodes.filter((n) => n.deps.length > 0 || n.refs.length > 0 || n.args)).toEqual([])
    expect(plan.nodes.filter((n) => n.output !== undefined)).toEqual([plan.root])
  })
})

describe('planning', () => {
  it('numbers steps as every earlier version did: depth first, arguments in order, names that clash skipped', () => {
    // The expected ids were produced by the planner before it was split in two passes; step ids
    // are durable (continuations are prefixed by their parent's id), so they must never change.
    const fn = (..._: unknown[]) => 0
    const a = step('a', fn)
    const b = step('b', fn)
    const a1 = step('a_1', fn)
    const c = step('c', fn)
    const shared = a(1)
    const x = b(shared, { k: [shared, a(2)], z: { deep: a1(shared) } }, [c(), c(a(3))])
    const y = a1(x, shared, a(x))
    const d1 = a(9)
    const dd = b(d1, d1, [d1, c(d1)], { q: d1 })
    const root = c(y, [x, b(y, a1())], 'lit', { o: null }, dd, dd, c(dd, shared))
    const plan = planGraph(root, 'p~', defaultCodec)
    expect(plan.nodes.map((n) => n.id)).toEqual(
      'p~a p~a_1 p~a_1_1 p~c p~a_2 p~c_1 p~b p~a_3 p~a_1_2 p~a_1_3 p~b_1 p~a_4 p~c_2 p~b_2 p~c_3 p~c_4'.split(
        ' ',
      ),
    )
    expect(plan.stored.nodes.find((n) => n.id === 'p~b_2')).toEqual({
      id: 'p~b_2',
      name: 'b',
      options: {},
      args: '[[1,1,2,3],null,[1,1],{"q":1}]',
      refs: [
        [[0], 'p~a_4'],
        [[1], 'p~a_4'],
        [[2, 0], 'p~a_4'],
        [[2, 1], 'p~c_2'],
        [[3, 'q'], 'p~a_4'],
      ],
    })
  })
})

/** `[1, <hole>, 2]`. */
function holey(): unknown[] {
  const array = [1, 2, 3]
  delete array[1]
  return array
}

describe('encoding plain values', () => {
  const samples: unknown[] = [
    0,
    -1,
    1.5,
    1e21,
    5e-324,
    '',
    'a "quoted" \\ string </script> \u2028',
    '\ud800 lone surrogate',
    true,
    false,
    null,
    undefined,
    [],
    [1, undefined, 'x', null, true, 2.5],
  ]
  it.each(samples.map((value) => [value]))('reads back %j as devalue would', (value) => {
    const text = encodePlain(value)
    expect(text).toBeDefined()
    expect(defaultCodec.decode(text as string)).toEqual(value)
    expect(defaultCodec.encode(value)).toBe(text)
  })

  it.each([
    [-0],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [1n],
    [holey()],
    [[[1]]],
    [{}],
    [new Date(0)],
    [[Number.NaN]],
  ])('leaves %o to devalue', (value) => {
    expect(encodePlain(value)).toBeUndefined()
    expect(defaultCodec.decode(defaultCodec.encode(value))).toEqual(value)
  })

  it('writes arguments with upstream nodes cut out as devalue does (one shared null)', () => {
    for (const args of [[null], [null, 1, null], [null, 'a', true, null, undefined]]) {
      expect(encodePlain(args)).toBe(stringify(args))
    }
  })

  it('leaves plain values to devalue when extra types could claim them', () => {
    const answer: CodecType<number, string> = {
      test: (value: unknown): value is number => value === 42,
      reduce: () => 'forty-two',
      revive: () => 42,
    }
    const codec = createCodec({ types: { Answer: answer as CodecType<never, never> } })
    expect(codec.encode(42)).toContain('x:Answer')
    expect(codec.decode(codec.encode(42))).toBe(42)
  })
})
