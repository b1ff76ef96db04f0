// The runtime in one process: running a graph, retries and options, workflow ids, resume, cancel,
// values through storage and the writes a run makes.
// Over 400 lines: one describe per part of the runtime, each a few short tests.
import { describe, expect, it } from 'vitest'
import {
  ConditionFailedError,
  CorruptRecordError,
  currentStep,
  InvalidOptionsError,
  InvalidWorkflowIdError,
  MemoryStorage,
  Runtime,
  SerializationError,
  StepAlreadyRegisteredError,
  type StepNode,
  StepTimeoutError,
  step,
  storeKeys,
  WorkflowAlreadyExistsError,
  WorkflowCancelledError,
  WorkflowExecutionError,
  WorkflowNotFoundError,
  WorkflowNotResumableError,
  WorkflowStillActiveError,
} from '../index.js'
import { interceptStorage } from '../testing/intercept.js'

const newRuntime = (options = {}) => {
  const storage = new MemoryStorage()
  return { storage, runtime: new Runtime(storage, options) }
}

// Step bodies count their executions so tests can prove what ran and what did not.
const counts = new Map<string, number>()
const bump = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
const count = (key: string) => counts.get(key) ?? 0

const double = step('rt.double', (x: number) => {
  bump('double')
  return x * 2
})
const sum = step('rt.sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
const add = step('rt.add', (a: number, b: number) => a + b)
const fib = step('rt.fib', (n: number): number | StepNode<number> =>
  n <= 1 ? n : add(fib(n - 1), fib(n - 2)),
)

describe('running a graph', () => {
  it('runs a fan-out and a join, passing each step the outputs of its inputs', async () => {
    const { runtime } = newRuntime()
    const graph = sum([1, 2, 3, 4].map((x) => double(x)))
    await expect(runtime.run(graph, { workflowId: 'fan' })).resolves.toBe(20)
  })

  it('accepts nodes nested inside arrays and plain objects', async () => {
    const { runtime } = newRuntime()
    const describeIt = step('rt.describe', (input: { a: number; list: number[]; nested: { b: number } }) => {
      return `${input.a}:${input.list.join(',')}:${input.nested.b}`
    })
    const graph = describeIt({ a: double(1), list: [double(2), 5], nested: { b: add(1, 1) } })
    await expect(runtime.run(graph)).resolves.toBe('2:4,5:2')
  })

  it('runs a shared upstream node once and gives every dependent its output', async () => {
    const { runtime } = newRuntime()
    const before = count('double')
    const shared = double(21)
    await expect(runtime.run(add(shared, shared), { workflowId: 'shared' })).resolves.toBe(84)
    expect(count('double') - before).toBe(1)
  })

  it('assigns deterministic step ids: the name, then _1, _2 for repeats', async () => {
    const { runtime, storage } = newRuntime()
    await runtime.run(sum([double(1), double(2), double(3)]), { workflowId: 'ids' })
    expect(await (await runtime.store()).listStepIds('ids')).toEqual([
      'rt.double',
      'rt.double_1',
      'rt.double_2',
      'rt.sum',
    ])
    // The root's commit is the final workflow record: no key of its own.
    const { keys } = await storage.list(storeKeys.stepsPrefix('ids'))
    expect(keys).not.toContain(storeKeys.step('ids', 'rt.sum'))
  })

  it('runs continuations: a recursive Fibonacci step', async () => {
    const { runtime } = newRuntime()
    await expect(runtime.run(fib(12), { workflowId: 'fib' })).resolves.toBe(144)
  })

  it('runs data-dependent fan-out through a continuation', async () => {
    const { runtime } = newRuntime()
    const split = step('rt.split', (n: number) => sum(Array.from({ length: n }, (_, i) => double(i))))
    await expect(runtime.run(split(10))).resolves.toBe(90)
  })

  it('keeps at most maxConcurrency steps running at once', async () => {
    const { runtime } = newRuntime({ maxConcurrency: 3 })
    let running = 0
    let peak = 0
    const slow = step('rt.slow', async (i: number) => {
      running++
      peak = Math.max(peak, running)
      await new Promise((r) => setTimeout(r, 5))
      running--
      return i
    })
    await runtime.run(sum(Array.from({ length: 12 }, (_, i) => slow(i))))
    expect(peak).toBe(3)
  })

  it('runs a 10,000-wide fan-out', async () => {
    const { runtime } = newRuntime()
    const one = step('rt.one', (i: number) => i % 2)
    await expect(runtime.run(sum(Array.from({ length: 10_000 }, (_, i) => one(i))))).resolves.toBe(5000)
  })

  it('runs a chain of 20,000 sequential steps without overflowing the stack', async () => {
    const { runtime } = newRuntime()
    const inc = step('rt.inc', (x: number) => x + 1)
    let node = inc(0)
    for (let i = 1; i < 20_000; i++) node = inc(node)
    await expect(runtime.run(node)).resolves.toBe(20_000)
  })

  it('gives a step its context: workflow id, a step id stable across retries, the attempt, a signal', async () => {
    const { runtime } = newRuntime()
    const seen: { stepId: string; attempt: number; workflowId: string; aborted: boolean }[] = []
    const flaky = step(
      'rt.ctx',
      () => {
        const { stepId, attempt, workflowId, signal } = currentStep()
        seen.push({ stepId, attempt, workflowId, aborted: signal.aborted })
        if (attempt < 3) throw new Error('not yet')
        return attempt
      },
      { backoff: { initialDelayMs: 1 } },
    )
    await expect(runtime.run(flaky(), { workflowId: 'ctx' })).resolves.toBe(3)
    expect(seen).toEqual(
      [1, 2, 3].map((attempt) => ({ stepId: 'rt.ctx', attempt, workflowId: 'ctx', aborted: false })),
    )
  })

  it('throws when currentStep() is called outside a step', () => {
    expect(() => currentStep()).toThrow(/only be called while a step is running/)
  })
})

describe('retries, errors and options', () => {
  it('retries a thrown error up to maxRetries, then fails the workflow with WorkflowExecutionError', async () => {
    const { runtime } = newRuntime()
    let attempts = 0
    const boom = new RangeError('always')
    const failing = step(
      'rt.failing',
      () => {
        attempts++
        throw boom
      },
      { maxRetries: 2, backoff: { initialDelayMs: 1 } },
    )
    const error = await runtime.run(failing(), { workflowId: 'fails' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkflowExecutionError)
    expect((error as WorkflowExecutionError).cause).toBe(boom)
    expect((error as WorkflowExecutionError).stepId).toBe('rt.failing')
    expect(attempts).toBe(3)
    const stored = await (await runtime.store()).readWorkflow('fails')
    expect(stored?.record.status).toBe('FAILED')
    expect(stored?.record.error).toMatchObject({
      name: 'RangeError',
      message: 'always',
      stepId: 'rt.failing',
    })
  })

  it('does not retry errors that retryOn rejects', async () => {
    const { runtime } = newRuntime()
    let attempts = 0
    const picky = step(
      'rt.picky',
      () => {
        attempts++
        throw new TypeError('fatal')
      },
      { retryOn: (e) => !(e instanceof TypeError), backoff: { initialDelayMs: 1 } },
    )
    await expect(runtime.run(picky())).rejects.toBeInstanceOf(WorkflowExecutionError)
    expect(attempts).toBe(1)
  })

  it('waits between retries with exponential backoff', async () => {
    const { runtime } = newRuntime()
    const times: number[] = []
    const slowRetry = step(
      'rt.backoff',
      () => {
        times.push(Date.now())
        if (times.length < 3) throw new Error('again')
        return 'ok'
      },
      { backoff: { initialDelayMs: 30, factor: 2 } },
    )
    await runtime.run(slowRetry())
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(25)
    expect((times[2] as number) - (times[1] as number)).toBeGreaterThanOrEqual(55)
  })

  it('with catchExceptions, turns the outcome into a result and lets the workflow go on', async () => {
    const { runtime } = newRuntime()
    const risky = step(
      'rt.risky',
      (fail: boolean) => {
        if (fail) throw new Error('bad input')
        return 7
      },
      { catchExceptions: true, maxRetries: 0 },
    )
    const report = step('rt.report', (a: { ok: boolean }, b: { ok: boolean }) => [a.ok, b.ok])
    await expect(runtime.run(report(risky(false), risky(true)))).resolves.toEqual([true, false])
    const caught = await runtime.run(risky(true))
    expect(caught.ok).toBe(false)
    if (!caught.ok) expect(caught.error.message).toBe('bad input')
  })

  it('aborts the signal and fails the attempt after timeoutMs', async () => {
    const { runtime } = newRuntime()
    let abortedReason: unknown
    const hang = step(
      'rt.hang',
      () =>
        new Promise((_, reject) => {
          currentStep().signal.addEventListener('abort', function onAbort(this: AbortSignal) {
            abortedReason = this.reason
            reject(this.reason)
          })
        }),
      { timeoutMs: 20, maxRetries: 0 },
    )
    const error = await runtime.run(hang()).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkflowExecutionError)
    expect((error as Error).cause).toBeInstanceOf(StepTimeoutError)
    expect(abortedReason).toBeInstanceOf(StepTimeoutError)
  })

  it('rejects a result that cannot be stored with SerializationError naming the step and the path', async () => {
    const { runtime } = newRuntime()
    const bad = step('rt.badResult', () => ({ ok: 1, nested: { fn: () => 1 } }))
    const error = await runtime.run(bad()).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkflowExecutionError)
    const cause = (error as Error).cause as SerializationError
    expect(cause).toBeInstanceOf(SerializationError)
    expect(cause.stepId).toBe('rt.badResult')
    expect(cause.path).toBe('nested.fn')
  })

  it('rejects arguments that cannot be stored before writing anything', async () => {
    const { runtime, storage } = newRuntime()
    const takes = step('rt.takesSymbol', (x: unknown) => x)
    await expect(runtime.run(takes(Symbol('s')))).rejects.toBeInstanceOf(SerializationError)
    expect(storage.size).toBe(0)
  })

  it('rejects a second function under a taken step name, but not the same function again', () => {
    const fn = (x: number) => x
    step('rt.unique', fn)
    expect(() => step('rt.unique', fn)).not.toThrow()
    expect(() => step('rt.unique', (x: number) => x + 1)).toThrow(StepAlreadyRegisteredError)
  })

  it('rejects bad step names and options with clear errors', () => {
    expect(() => step('', () => 1)).toThrow(/step name/)
    expect(() => step('a/b', () => 1)).toThrow(/step name/)
    expect(() => step('rt.opts', () => 1, { maxRetries: -1 })).toThrow(InvalidOptionsError)
    expect(() => step('rt.opts2', () => 1, { timeoutMs: 0 })).toThrow(InvalidOptionsError)
    expect(() => double.options({ backoff: { factor: 0.5 } })).toThrow(InvalidOptionsError)
  })

  it('returns copies with other options from stepFn.options and node.options', async () => {
    const { runtime } = newRuntime()
    let attempts = 0
    const flaky = step('rt.optsCopy', () => {
      attempts++
      throw new Error('x')
    })
    const once = flaky.options({ maxRetries: 0 })
    expect(flaky.stepOptions.maxRetries).toBeUndefined()
    await expect(runtime.run(once())).rejects.toBeInstanceOf(WorkflowExecutionError)
    expect(attempts).toBe(1)
    const node = flaky().options({ maxRetries: 1, backoff: { initialDelayMs: 1 } })
    await expect(runtime.run(node)).rejects.toBeInstanceOf(WorkflowExecutionError)
    expect(attempts).toBe(3)
  })
})

describe('workflow ids and existing workflows', () => {
  it.each(['', '..', '.', '../x', 'a/../../b', 'a\u0000b', 'a\nb', 'x'.repeat(201)])(
    'rejects the workflow id %j before anything is written',
    async (id) => {
      const { runtime, storage } = newRuntime()
      await expect(runtime.run(double(1), { workflowId: id })).rejects.toBeInstanceOf(InvalidWorkflowIdError)
      expect(storage.size).toBe(0)
    },
  )

  it('returns the stored output of a SUCCESSFUL workflow without running anything', async () => {
    const { runtime } = newRuntime()
    await runtime.run(double(5), { workflowId: 'done' })
    const before = count('double')
    await expect(runtime.run(double(100), { workflowId: 'done' })).resolves.toBe(10)
    expect(count('double')).toBe(before)
  })

  it('throws WorkflowAlreadyExistsError for a used id with resumeExisting: false', async () => {
    const { runtime } = newRuntime()
    await runtime.run(double(5), { workflowId: 'taken' })
    await expect(
      runtime.run(double(5), { workflowId: 'taken', resumeExisting: false }),
    ).rejects.toBeInstanceOf(WorkflowAlreadyExistsError)
  })

  it('joins a second run of an id this process is running: the same result, the body run once', async () => {
    const { runtime } = newRuntime()
    let release!: () => void
    let bodies = 0
    const gate = step('rt.gate', () => {
      bodies++
      return new Promise<number>((r) => (release = () => r(1)))
    })
    const first = runtime.run(gate(), { workflowId: 'busy' })
    await new Promise((r) => setTimeout(r, 5))
    const second = runtime.run(gate(), { workflowId: 'busy' })
    // At the same moment, before either is running: they join too.
    const third = runtime.run(double(1), { workflowId: 'busy-twice' })
    const fourth = runtime.run(double(1), { workflowId: 'busy-twice' })
    await expect(runtime.run(gate(), { workflowId: 'busy', resumeExisting: false })).rejects.toBeInstanceOf(
      WorkflowAlreadyExistsError,
    )
    release()
    await expect(first).resolves.toBe(1)
    await expect(second).resolves.toBe(1)
    expect(bodies).toBe(1)
    await expect(Promise.all([third, fourth])).resolves.toEqual([2, 2])
  })

  it('joins a run of an id that waits in the queue under maxRunningWorkflows', async () => {
    const { runtime } = newRuntime({ maxRunningWorkflows: 1 })
    let release!: () => void
    const hold = step('rt.hold', () => new Promise<number>((r) => (release = () => r(7))))
    const running = runtime.run(hold(), { workflowId: 'first-in' })
    await new Promise((r) => setTimeout(r, 5))
    const queued = runtime.run(double(21), { workflowId: 'queued' })
    await new Promise((r) => setTimeout(r, 5))
    const joined = runtime.run(double(21), { workflowId: 'queued' })
    release()
    await expect(Promise.all([running, queued, joined])).resolves.toEqual([7, 42, 42])
  })

  it('tells another process starting an active id how to wait for its result', async () => {
    const storage = new MemoryStorage()
    const a = new Runtime(storage)
    const b = new Runtime(storage)
    let release!: () => void
    const held = step('rt.held', () => new Promise<number>((r) => (release = () => r(3))))
    const first = a.run(held(), { workflowId: 'held-elsewhere' })
    await new Promise((r) => setTimeout(r, 5))
    const error = await b.run(held(), { workflowId: 'held-elsewhere' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkflowStillActiveError)
    expect((error as Error).message).toMatch(/getOutput\(workflowId\)/)
    expect((error as Error).message).toMatch(/wf output <workflowId>/)
    release()
    await expect(first).resolves.toBe(3)
  })

  it('quotes a long workflow id in error messages cut in the middle', async () => {
    const { runtime } = newRuntime()
    const id = `${'a'.repeat(95)}-middle-${'z'.repeat(95)}`
    const error = await runtime.resume(id).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkflowNotFoundError)
    const message = (error as Error).message
    expect(message).toMatch(/"a{40}…z{39}"/)
    expect(message).not.toContain('middle')
    expect((error as WorkflowNotFoundError).workflowId).toBe(id)
  })

  it('resolves runAsync once the workflow is stored, with a handle to its result', async () => {
    const { runtime, storage } = newRuntime()
    const handle = await runtime.runAsync(double(4), { workflowId: 'async', metadata: { team: 'data' } })
    expect(handle.workflowId).toBe('async')
    expect(await storage.get(storeKeys.workflow('async'))).toBeDefined()
    await expect(handle.result()).resolves.toBe(8)
    const stored = await (await runtime.store()).readWorkflow('async')
    expect(stored?.record).toMatchObject({ status: 'SUCCESSFUL', metadata: { team: 'data' } })
  })

  it('makes up a random workflow id when none is given', async () => {
    const { runtime } = newRuntime()
    const a = await runtime.runAsync(double(1))
    const b = await runtime.runAsync(double(1))
    expect(a.workflowId).not.toBe(b.workflowId)
    await Promise.all([a.result(), b.result()])
  })

  it('rejects metadata that is not a JSON object', async () => {
    const { runtime } = newRuntime()
    // @ts-expect-error metadata must be an object
    await expect(runtime.run(double(1), { metadata: [1] })).rejects.toBeInstanceOf(InvalidOptionsError)
  })
})

describe('resume', () => {
  it('resumes a FAILED workflow from the failed step without re-running completed steps', async () => {
    const { runtime } = newRuntime()
    let healthy = false
    let upstreamRuns = 0
    const upstream = step('rt.upstream', (x: number) => {
      upstreamRuns++
      return x + 1
    })
    const fragile = step(
      'rt.fragile',
      (x: number) => {
        if (!healthy) throw new Error('down')
        return x * 10
      },
      { maxRetries: 0 },
    )
    await expect(runtime.run(fragile(upstream(1)), { workflowId: 'resume-failed' })).rejects.toBeInstanceOf(
      WorkflowExecutionError,
    )
    healthy = true
    await expect(runtime.resume('resume-failed')).resolves.toBe(20)
    expect(upstreamRuns).toBe(1)
  })

  it('resumes inside a half-finished continuation', async () => {
    const { runtime } = newRuntime()
    let failOnce = true
    const leafRuns = new Map<number, number>()
    const leaf = step(
      'rt.leaf',
      (i: number) => {
        leafRuns.set(i, (leafRuns.get(i) ?? 0) + 1)
        if (i === 3 && failOnce) {
          failOnce = false
          throw new Error('transient')
        }
        return i
      },
      { maxRetries: 0 },
    )
    const spread = step('rt.spread', (n: number) => sum(Array.from({ length: n }, (_, i) => leaf(i))))
    const outer = add(spread(5), 100)
    await expect(runtime.run(outer, { workflowId: 'half' })).rejects.toBeInstanceOf(WorkflowExecutionError)
    await expect(runtime.resume('half')).resolves.toBe(110)
    for (const [i, runs] of leafRuns) expect(runs, `leaf ${i}`).toBe(i === 3 ? 2 : 1)
  })

  it('a step without checkpoint runs again on resume when a later step needs it', async () => {
    const { runtime } = newRuntime()
    let volatileRuns = 0
    let healthy = false
    const volatile = step(
      'rt.volatile',
      () => {
        volatileRuns++
        return 5
      },
      { checkpoint: false },
    )
    const gate = step(
      'rt.gate2',
      (x: number) => {
        if (!healthy) throw new Error('down')
        return x
      },
      { maxRetries: 0 },
    )
    await expect(runtime.run(gate(volatile()), { workflowId: 'nocp' })).rejects.toBeInstanceOf(
      WorkflowExecutionError,
    )
    healthy = true
    await expect(runtime.resume('nocp')).resolves.toBe(5)
    expect(volatileRuns).toBe(2)
  })

  it('throws WorkflowNotFoundError for an unknown id and writes nothing', async () => {
    const { runtime, storage } = newRuntime()
    await expect(runtime.resume('nope')).rejects.toBeInstanceOf(WorkflowNotFoundError)
    expect(storage.size).toBe(0)
  })

  it('after a takeover, adopts a root result a runner that lost the workflow committed first, instead of overwriting it', async () => {
    const { runtime, storage } = newRuntime()
    const store = await runtime.store()
    let release!: () => void
    const waiter = step('rt.waiter', () => new Promise<number>((r) => (release = () => r(1))))
    await runtime.submit(waiter(), { workflowId: 'adopt' })
    // Taken by a runner that lost it: this run is the second, so the root commits by create-if-absent.
    const found = await store.requireWorkflow('adopt')
    await store.updateWorkflow(found, { ...found.record, status: 'RUNNING', runs: 1 })
    const result = runtime.resume('adopt')
    await new Promise((r) => setTimeout(r, 5))
    // The runner that lost the workflow commits its own result for the root step first.
    const output = await store.storeOutput('adopt', runtime.codec.encode(42))
    await store.commitStep('adopt', 'rt.waiter', {
      v: 1,
      kind: 'value',
      name: 'rt.waiter',
      output,
      startTime: 0,
      endTime: 0,
      attempts: 1,
    })
    release()
    await expect(result).resolves.toBe(42)
    await expect(
      storage.put(storeKeys.step('adopt', 'rt.waiter'), new Uint8Array([1]), { ifAbsent: true }),
    ).rejects.toBeInstanceOf(ConditionFailedError)
    const { record } = await store.requireWorkflow('adopt')
    expect(runtime.codec.decode(await store.loadOutput('adopt', record.output ?? { inline: '' }))).toBe(42)
    expect(record.rootStep).toBeUndefined()
  })

  it('reports a corrupt workflow record with CorruptRecordError naming its key', async () => {
    const { runtime, storage } = newRuntime()
    await storage.put(storeKeys.workflow('broken'), new TextEncoder().encode('{"v":1,'))
    const error = await runtime.resume('broken').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CorruptRecordError)
    expect((error as CorruptRecordError).key).toBe(storeKeys.workflow('broken'))
  })
})

describe('cancel', () => {
  it('cancels a running workflow: in-flight steps see the abort, run() rejects, nothing more is scheduled', async () => {
    const { runtime } = newRuntime()
    let afterRan = false
    let sawAbort = false
    const long = step(
      'rt.long',
      () =>
        new Promise<number>((resolve) => {
          currentStep().signal.addEventListener('abort', () => {
            sawAbort = true
            resolve(1)
          })
        }),
    )
    const after = step('rt.after', (x: number) => {
      afterRan = true
      return x
    })
    const running = runtime.run(after(long()), { workflowId: 'cancel-me' })
    running.catch(() => {}) // it may reject while cancel() is awaited: asserted below
    await new Promise((r) => setTimeout(r, 10))
    await runtime.cancel('cancel-me')
    await expect(running).rejects.toBeInstanceOf(WorkflowCancelledError)
    expect(sawAbort).toBe(true)
    expect(afterRan).toBe(false)
    const stored = await (await runtime.store()).readWorkflow('cancel-me')
    expect(stored?.record.status).toBe('CANCELED')
    await expect(runtime.resume('cancel-me')).rejects.toBeInstanceOf(WorkflowNotResumableError)
  })
})

describe('values through storage', () => {
  it('keeps types of results through a resume: Date, Map, Set, BigInt, URL, RegExp, typed arrays, Buffer, Error, -0, NaN, cycles', async () => {
    const { runtime } = newRuntime()
    const cyclic: { self?: unknown; name: string } = { name: 'loop' }
    cyclic.self = cyclic
    const error = new TypeError('bad', { cause: new Error('root') })
    const value = {
      date: new Date('2026-11-26T00:00:00Z'),
      map: new Map<unknown, unknown>([
        ['a', 1],
        [2, { b: true }],
      ]),
      set: new Set([1, 'two']),
      big: 12345678901234567890n,
      url: new URL('https://example.com/a?b=c'),
      re: /a+b/gi,
      floats: new Float64Array([1.5, -0, Number.NaN]),
      bytes: new Uint8Array([0, 255]),
      buffer: Buffer.from('hello'),
      error,
      specials: [-0, Number.NaN, Number.POSITIVE_INFINITY, undefined],
      cyclic,
    }
    let healthy = false
    const produce = step('rt.produce', () => value)
    const consume = step(
      'rt.consume',
      (v: typeof value) => {
        if (!healthy) throw new Error('down')
        return v
      },
      { maxRetries: 0 },
    )
    await expect(runtime.run(consume(produce()), { workflowId: 'types' })).rejects.toThrow()
    healthy = true
    // On resume, produce's output comes back from storage through the codec.
    const back = await runtime.resume<typeof value>('types')
    expect(back.date).toEqual(value.date)
    expect(back.map).toEqual(value.map)
    expect(back.set).toEqual(value.set)
    expect(back.big).toBe(value.big)
    expect(back.url.href).toBe(value.url.href)
    expect(back.re.source).toBe('a+b')
    expect(back.re.flags).toBe('gi')
    expect(back.floats).toBeInstanceOf(Float64Array)
    expect(Object.is(back.floats[1], -0)).toBe(true)
    expect(back.bytes).toEqual(value.bytes)
    expect(Buffer.isBuffer(back.buffer)).toBe(true)
    expect(back.buffer.toString()).toBe('hello')
    expect(back.error).toBeInstanceOf(TypeError)
    expect(back.error.message).toBe('bad')
    expect((back.error.cause as Error).message).toBe('root')
    expect(back.error.stack).toBe(error.stack)
    expect(Object.is(back.specials[0], -0)).toBe(true)
    expect(back.specials[1]).toBeNaN()
    expect(back.specials[2]).toBe(Number.POSITIVE_INFINITY)
    expect(back.specials).toHaveLength(4)
    expect(back.cyclic.self).toBe(back.cyclic)
  })

  it('stores a large result as a blob referenced from the step record', async () => {
    const { runtime, storage } = newRuntime({ blobThresholdBytes: 1024 })
    const big = step('rt.big', () => 'x'.repeat(5000))
    await expect(runtime.run(big(), { workflowId: 'blob' })).resolves.toHaveLength(5000)
    const { keys } = await storage.list('workflows/blob/blobs/')
    expect(keys).toHaveLength(1)
    expect(keys[0]).toMatch(/blobs\/[0-9a-f]{32}$/)
    const record = await (await runtime.store()).readStep('blob', 'rt.big')
    expect(record?.output).toEqual({ blob: keys[0]?.split('/').pop() })
  })
})

describe('storage writes', () => {
  it('writes one storage record per completed step on the hot path', async () => {
    let puts = 0
    const storage = interceptStorage(new MemoryStorage(), {
      put: (next, ...args) => {
        puts++
        return next(...args)
      },
    })
    const runtime = new Runtime(storage)
    const inc = step('rt.inc2', (x: number) => x + 1)
    let node = inc(0)
    for (let i = 1; i < 100; i++) node = inc(node)
    await runtime.run(node, { workflowId: 'writes' })
    // 100 step records, plus a fixed cost per workflow: graph, record + index marker at start, and at the end.
    expect(puts - 100).toBeLessThanOrEqual(6)
  })
})
