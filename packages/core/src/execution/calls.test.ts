// Durable functions (`workflow()`) in one process: calls keyed by their order or their key, a
// resume that replays committed calls without running them, errors thrown into the body and
// committed, every kind of non-determinism found, `ctx.patched`, recorded values, sleeps that park,
// and functions mixed with graphs. The SIGKILL tests run real processes (client
// durable-processes.test.ts).
// Over 400 lines: one test per kind of call and per kind of non-determinism, read best together.
import { afterEach, describe, expect, it } from 'vitest'
import {
  createWorker,
  defaultCodec,
  InvalidOptionsError,
  InvalidStepNameError,
  MemoryStorage,
  Runtime,
  step,
  WorkflowCanceledError,
  WorkflowCodeChangedError,
  type WorkflowContext,
  WorkflowExecutionError,
  WorkflowNondeterminismError,
  workflow,
} from '../index.js'
import type { StepRecord, WorkflowRecord } from '../model/records.js'

const runtimes: Runtime[] = []
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})

function runtime(storage = new MemoryStorage(), parkAfterMs = 60_000): Runtime {
  const made = new Runtime(storage, { parkAfterMs, leaseTtlMs: 3000 })
  runtimes.push(made)
  return made
}

async function read<T>(storage: MemoryStorage, key: string): Promise<T> {
  const found = await storage.get(key)
  if (!found) throw new Error(`no ${key}`)
  return JSON.parse(Buffer.from(found.data).toString('utf8')) as T
}

async function stepIds(storage: MemoryStorage, workflowId: string): Promise<string[]> {
  const prefix = `workflows/${workflowId}/steps/`
  return (await storage.list(prefix)).keys.map((key) => key.slice(prefix.length))
}

let made = 0
/** Steps that count their runs (new names for each test: names are registered once). */
function counted() {
  const runs: string[] = []
  const tag = `calls-test.${made++}`
  const add = step(`${tag}.add`, (a: number, b: number) => {
    runs.push(`add ${a} ${b}`)
    return a + b
  })
  const fail = step(
    `${tag}.fail`,
    (why: string): number => {
      runs.push(`fail ${why}`)
      throw new Error(why)
    },
    { maxRetries: 0 },
  )
  const mul = step(`${tag}.mul`, (a: number, b: number) => {
    runs.push(`mul ${a} ${b}`)
    return a * b
  })
  return { tag, runs, add, mul, fail }
}

describe('durable functions', () => {
  it('runs a loop of awaited steps with a branch, each call under the key of its order', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const { tag, runs, add } = counted()
    const sum = workflow(`${tag}.sum`, async (ctx, n: number) => {
      let total = 0
      for (let i = 0; i < n; i++) total = await ctx.run(add(total, i))
      if (total > 5) total = await ctx.run(add(total, 100))
      return total
    })
    expect(await rt.run(sum(4), { workflowId: 'loop' })).toBe(106)
    expect(runs).toEqual(['add 0 0', 'add 0 1', 'add 1 2', 'add 3 3', 'add 6 100'])
    const fn = `${tag}.sum`
    expect(await stepIds(storage, 'loop')).toEqual([0, 1, 2, 3, 4].map((n) => `${fn}~${n}`))
    const record = await read<StepRecord>(storage, `workflows/loop/steps/${fn}~2`)
    expect(record.name).toBe(`${tag}.add`)
    expect(record.call).toMatch(/^[0-9a-f]{16}$/)
  })

  it('numbers calls in the order the body makes them, not the order they finish', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const tag = `calls-test.${made++}`
    const slow = step(`${tag}.slow`, async (ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms))
      return ms
    })
    const race = workflow(`${tag}.race`, async (ctx) =>
      Promise.all([ctx.run(slow(60)), ctx.run(slow(1)), ctx.run(slow(30))]),
    )
    expect(await rt.run(race(), { workflowId: 'race' })).toEqual([60, 1, 30])
    for (const [n, ms] of [60, 1, 30].entries()) {
      const record = await read<StepRecord>(storage, `workflows/race/steps/${tag}.race~${n}`)
      expect(await rt.run(race(), { workflowId: `race-${n}` })).toEqual([60, 1, 30])
      expect(defaultCodec.decode((record.output as { inline: string }).inline)).toEqual({
        ok: true,
        value: ms,
      })
    }
  })

  it('runs arrays and objects of nodes side by side, and whole graphs, under one key', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const { tag, add } = counted()
    const fan = workflow(`${tag}.fan`, async (ctx) => {
      const list = await ctx.run([add(1, 1), add(2, 2)])
      const named = await ctx.run({ a: add(1, 0), b: add(add(1, 1), 1) })
      const chained = await ctx.run(add(add(10, 1), 1))
      return { list, named, chained }
    })
    expect(await rt.run(fan(), { workflowId: 'fan' })).toEqual({
      list: [2, 4],
      named: { a: 1, b: 3 },
      chained: 12,
    })
    const ids = await stepIds(storage, 'fan')
    const fn = `${tag}.fan`
    expect(ids).toContain(`${fn}~0`)
    expect(ids).toContain(`${fn}~1~${tag}.add_1`)
    expect(ids).toContain(`${fn}~2~${tag}.add`)
    expect(ids.filter((id) => id.split('~').length === 2).sort()).toEqual([`${fn}~0`, `${fn}~1`, `${fn}~2`])
  })

  it('resumes by replaying committed calls without running them again', async () => {
    const storage = new MemoryStorage()
    const { tag, runs, add } = counted()
    let crash = true
    const fn = workflow(`${tag}.crashy`, async (ctx) => {
      const a = await ctx.run(add(1, 2))
      const [b, c] = await ctx.run([add(a, 1), add(a, 2)])
      if (crash) throw new Error('the body crashed')
      return ctx.run(add(b, c))
    })
    const first = runtime(storage)
    await expect(first.run(fn(), { workflowId: 'crashy' })).rejects.toBeInstanceOf(WorkflowExecutionError)
    expect(runs).toEqual(['add 1 2', 'add 3 1', 'add 3 2'])
    crash = false
    const second = runtime(storage)
    expect(await second.resume('crashy')).toBe(9)
    expect(runs).toEqual(['add 1 2', 'add 3 1', 'add 3 2', 'add 4 5'])
  })

  it('throws a failed step into the body, where try/catch works, and commits the error at its key', async () => {
    const storage = new MemoryStorage()
    const { tag, runs, add, fail } = counted()
    let crash = true
    const fn = workflow(`${tag}.catching`, async (ctx) => {
      let caught = ''
      try {
        await ctx.run(fail('no stock'))
      } catch (error) {
        caught = (error as Error).message
      }
      if (crash) throw new Error('the body crashed')
      return `${caught} ${await ctx.run(add(1, 1))}`
    })
    const first = runtime(storage)
    await expect(first.run(fn(), { workflowId: 'catching' })).rejects.toBeInstanceOf(WorkflowExecutionError)
    crash = false
    expect(await runtime(storage).resume('catching')).toBe('no stock 2')
    // Replayed: the failed step did not run again.
    expect(runs).toEqual(['fail no stock', 'add 1 1'])
  })

  it('fails the workflow when the body throws, naming the function', async () => {
    const { tag, fail } = counted()
    const fn = workflow(`${tag}.uncaught`, async (ctx) => ctx.run(fail('gone')))
    const error = await runtime()
      .run(fn(), { workflowId: 'uncaught' })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkflowExecutionError)
    expect((error as WorkflowExecutionError).stepId).toBe(`${tag}.uncaught`)
  })

  it('gives a step with catchExceptions its StepResult instead of throwing', async () => {
    const { tag, fail } = counted()
    const fn = workflow(`${tag}.result`, async (ctx) => {
      const result = await ctx.run(fail.options({ catchExceptions: true })('soft'))
      return result.ok ? 'ok' : result.error.message
    })
    expect(await runtime().run(fn(), { workflowId: 'result' })).toBe('soft')
  })

  it('uses explicit keys, once each, checked by the step-name rules', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const { tag, add } = counted()
    const keyed = workflow(`${tag}.keyed`, async (ctx, items: number[]) => {
      const out: number[] = []
      for (const item of items) out.push(await ctx.run(add(item, 1), { key: `item-${item}` }))
      return out
    })
    expect(await rt.run(keyed([7, 3]), { workflowId: 'keyed' })).toEqual([8, 4])
    expect(await stepIds(storage, 'keyed')).toEqual([`${tag}.keyed~k:item-3`, `${tag}.keyed~k:item-7`])
    const twice = workflow(`${tag}.twice`, async (ctx) => {
      await ctx.run(add(1, 1), { key: 'same' })
      return ctx.run(add(2, 2), { key: 'same' })
    })
    await expect(rt.run(twice(), { workflowId: 'twice' })).rejects.toMatchObject({
      cause: expect.any(InvalidOptionsError),
    })
    const bad = workflow(`${tag}.bad`, async (ctx) => ctx.run(add(1, 1), { key: 'no spaces' }))
    await expect(rt.run(bad(), { workflowId: 'bad' })).rejects.toMatchObject({
      cause: expect.any(InvalidStepNameError),
    })
    const notNode = workflow(`${tag}.notNode`, async (ctx) => ctx.run(42 as never))
    await expect(rt.run(notNode(), { workflowId: 'not-node' })).rejects.toMatchObject({
      cause: expect.any(InvalidOptionsError),
    })
  })

  it('refuses step-only options and a reused name', () => {
    const tag = `calls-test.${made++}`
    expect(() => workflow(`${tag}.x`, async () => 1, { timeoutMs: 5 } as never)).toThrow(InvalidOptionsError)
    expect(() => workflow(`wf:${tag}`, async () => 1)).toThrow(InvalidStepNameError)
    workflow(`${tag}.y`, async () => 1)
    expect(() => workflow(`${tag}.y`, async () => 2)).toThrow(/registered/)
  })

  it('does not deadlock with maxConcurrency 1: a body waiting for its calls holds no slot', async () => {
    const storage = new MemoryStorage()
    const rt = new Runtime(storage, { maxConcurrency: 1 } as never)
    runtimes.push(rt)
    const { tag, add } = counted()
    const inner = workflow(`${tag}.inner`, async (ctx, x: number) => ctx.run(add(x, 1)))
    const outer = workflow(`${tag}.outer`, async (ctx) => {
      const [a, b] = await ctx.run([inner(1), inner(2)])
      return ctx.run(add(a, b))
    })
    expect(await rt.run(outer(), { workflowId: 'one-slot' })).toBe(5)
  })
})

describe('non-determinism', () => {
  /** A function whose calls depend on `version`: each test changes the code between runs so. */
  function versioned(
    tag: string,
    add: ReturnType<typeof counted>['add'],
    body: (ctx: WorkflowContext, version: number) => Promise<number>,
  ) {
    const state = { version: 1, crash: true }
    const fn = workflow(`${tag}.versioned`, async (ctx) => {
      const out = await body(ctx, state.version)
      if (state.crash) throw new Error('the body crashed')
      return out + (await ctx.run(add(0, 0), { key: 'last' }))
    })
    return { state, fn }
  }

  type Steps = ReturnType<typeof counted>
  const changes: [
    string,
    (ctx: WorkflowContext, add: Steps['add'], v: number, mul: Steps['mul']) => Promise<number>,
  ][] = [
    [
      'a reordered call',
      async (ctx, add, v) => {
        const [x, y] = v === 1 ? [1, 2] : [2, 1]
        return (await ctx.run(add(x, 0))) + (await ctx.run(add(y, 0)))
      },
    ],
    ['changed arguments', async (ctx, add, v) => ctx.run(add(1, v === 1 ? 1 : 2))],
    ['another step', async (ctx, add, v, mul) => (v === 1 ? ctx.run(add(1, 1)) : ctx.run(mul(1, 1)))],
    [
      'a removed call',
      async (ctx, add, v) => {
        const a = v === 1 ? await ctx.run(add(1, 1)) : 0
        return a + (await ctx.run(add(1, 2), { key: 'kept' }))
      },
    ],
    [
      'a call removed at the end',
      async (ctx, add, v) => {
        const a = await ctx.run(add(1, 1))
        return v === 1 ? a + (await ctx.run(add(a, 1))) : a
      },
    ],
  ]

  for (const [what, body] of changes) {
    it(`fails the workflow with WorkflowNondeterminismError for ${what}, and resumes once the old code is back`, async () => {
      const storage = new MemoryStorage()
      const { tag, add, mul } = counted()
      const { state, fn } = versioned(tag, add, (ctx, v) => body(ctx, add, v, mul))
      const id = `nd-${made}`
      await expect(runtime(storage).run(fn(), { workflowId: id })).rejects.toBeInstanceOf(
        WorkflowExecutionError,
      )
      state.version = 2
      state.crash = false
      const error = await runtime(storage)
        .resume(id)
        .catch((e: unknown) => e)
      expect(error).toBeInstanceOf(WorkflowExecutionError)
      expect((error as WorkflowExecutionError).cause).toBeInstanceOf(WorkflowNondeterminismError)
      const record = await read<WorkflowRecord>(storage, `workflows/${id}/workflow`)
      expect(record.status).toBe('FAILED')
      expect(record.error?.name).toBe('WorkflowNondeterminismError')
      state.version = 1
      expect(typeof (await runtime(storage).resume(id))).toBe('number')
    })
  }

  it('names the key, what was recorded and what the code asked for', async () => {
    const storage = new MemoryStorage()
    const { tag, add } = counted()
    const { state, fn } = versioned(tag, add, (ctx, v) => ctx.run(add(1, v)))
    await expect(runtime(storage).run(fn(), { workflowId: 'named' })).rejects.toThrow()
    state.version = 2
    state.crash = false
    const error = (await runtime(storage)
      .resume('named')
      .catch((e: unknown) => e)) as WorkflowExecutionError
    const cause = error.cause as WorkflowNondeterminismError
    expect(cause.key).toBe(`${tag}.versioned~0`)
    expect(cause.recorded).toMatch(new RegExp(`step "${tag}.add" \\(call [0-9a-f]{16}\\)`))
    expect(cause.requested).toMatch(new RegExp(`step "${tag}.add" \\(call [0-9a-f]{16}\\)`))
    expect(cause.recorded).not.toBe(cause.requested)
  })

  it('lets new code branch with ctx.patched while old runs replay the old path', async () => {
    const storage = new MemoryStorage()
    const { tag, runs, add } = counted()
    const state = { patched: false, crash: true }
    const fn = workflow(`${tag}.patching`, async (ctx) => {
      const a = await ctx.run(add(1, 0))
      let b = 0
      if (state.patched && (await ctx.patched('bonus'))) b = await ctx.run(add(100, 0), { key: 'bonus' })
      const c = await ctx.run(add(2, 0))
      if (state.crash) throw new Error('the body crashed')
      return a + b + c
    })
    // An old run got past the patch point before the new code was deployed: it keeps the old path.
    await expect(runtime(storage).run(fn(), { workflowId: 'old-run' })).rejects.toThrow()
    state.patched = true
    state.crash = false
    expect(await runtime(storage).resume('old-run')).toBe(3)
    // A new run takes the new path, and keeps it when it resumes.
    state.crash = true
    await expect(runtime(storage).run(fn(), { workflowId: 'new-run' })).rejects.toThrow()
    state.crash = false
    expect(await runtime(storage).resume('new-run')).toBe(103)
    expect(runs.filter((r) => r === 'add 100 0')).toHaveLength(1)
  })

  it("checks a replayed call's step code under the code-change policy", async () => {
    const storage = new MemoryStorage()
    const { tag, add } = counted()
    let crash = true
    const fn = workflow(`${tag}.changed`, async (ctx) => {
      const a = await ctx.run(add(1, 0))
      if (crash) throw new Error('the body crashed')
      return a
    })
    await expect(runtime(storage).run(fn(), { workflowId: 'changed' })).rejects.toThrow()
    const key = `workflows/changed/steps/${tag}.changed~0`
    const record = await read<StepRecord>(storage, key)
    expect(record.fingerprint).toMatch(/^[0-9a-f]{16}$/)
    // As if the step's code had changed since it ran.
    await storage.put(key, Buffer.from(JSON.stringify({ ...record, fingerprint: '0123456789abcdef' })))
    crash = false
    const error = await runtime(storage)
      .resume('changed', { onCodeChange: 'error' })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkflowCodeChangedError)
    expect(await runtime(storage).resume('changed', { onCodeChange: 'ignore' })).toBe(1)
  })

  it('runs a step with checkpoint: false again on resume, between replayed calls, without a false alarm', async () => {
    const storage = new MemoryStorage()
    const { tag, runs, add } = counted()
    let crash = true
    const fn = workflow(`${tag}.transient`, async (ctx) => {
      const a = await ctx.run(add(1, 0))
      const b = await ctx.run(add.options({ checkpoint: false })(2, 0))
      const c = await ctx.run(add(3, 0))
      if (crash) throw new Error('the body crashed')
      return a + b + c
    })
    await expect(runtime(storage).run(fn(), { workflowId: 'transient' })).rejects.toThrow()
    crash = false
    expect(await runtime(storage).resume('transient')).toBe(6)
    expect(runs).toEqual(['add 1 0', 'add 2 0', 'add 3 0', 'add 2 0'])
  })

  it('records ctx.now(), ctx.random() and ctx.uuid() so a resume gets the same values', async () => {
    const storage = new MemoryStorage()
    const tag = `calls-test.${made++}`
    let crash = true
    const seen: unknown[] = []
    const fn = workflow(`${tag}.values`, async (ctx) => {
      const values = [await ctx.now(), await ctx.random(), await ctx.uuid()]
      seen.push(values)
      if (crash) throw new Error('the body crashed')
      return values
    })
    await expect(runtime(storage).run(fn(), { workflowId: 'values' })).rejects.toThrow()
    crash = false
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(await runtime(storage).resume('values')).toEqual(seen[0])
    expect(seen[1]).toEqual(seen[0])
    expect(typeof (seen[0] as unknown[])[2]).toBe('string')
  })
})

describe('durable functions with sleeps and graphs', () => {
  it('parks a sleeping body and replays it when it wakes, running nothing twice', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage, 0)
    const { tag, runs, add } = counted()
    const fn = workflow(`${tag}.sleepy`, async (ctx) => {
      const a = await ctx.run(add(1, 1))
      const woke = await ctx.sleep(400)
      return { a: a + (await ctx.run(add(a, 1))), woke }
    })
    const started = Date.now()
    const handle = await rt.runAsync(fn(), { workflowId: 'sleepy' })
    const out = (await handle.result()) as { a: number; woke: number }
    expect(out.a).toBe(5)
    expect(out.woke).toBeGreaterThanOrEqual(started + 400)
    expect(runs).toEqual(['add 1 1', 'add 2 1'])
    const record = await read<WorkflowRecord>(storage, 'workflows/sleepy/workflow')
    expect(record.status).toBe('SUCCESSFUL')
  })

  it('mixes functions and graphs: a function in a graph, a graph in a function, a function awaiting another', async () => {
    const { tag, add } = counted()
    const child = workflow(`${tag}.child`, async (ctx, x: number) => (await ctx.run(add(x, 1))) * 10)
    const parent = workflow(`${tag}.parent`, async (ctx, x: number) => {
      const viaGraph = await ctx.run(add(child(x), add(x, 0)))
      return viaGraph + (await ctx.run(child(0)))
    })
    const graph = add(parent(1), child(2))
    // parent(1): add(child(1)=20, 1) = 21, + child(0)=10 → 31; child(2) = 30.
    expect(await runtime().run(graph, { workflowId: 'mixed' })).toBe(61)
  })

  it('is canceled like a graph: the running call is aborted and the body makes no more calls', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const tag = `calls-test.${made++}`
    const ran: string[] = []
    const wait = step(`${tag}.wait`, async (i: number) => {
      ran.push(`wait ${i}`)
      await new Promise((resolve) => setTimeout(resolve, 200))
      return i
    })
    const fn = workflow(`${tag}.loop`, async (ctx) => {
      for (let i = 0; i < 100; i++) await ctx.run(wait(i))
      return 'done'
    })
    const handle = await rt.runAsync(fn(), { workflowId: 'cancel-fn' })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await rt.cancel('cancel-fn')).toBe('CANCELED')
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowCanceledError)
    const count = ran.length
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(ran.length).toBe(count)
    expect(count).toBeLessThan(4)
  })

  it('is run by a worker from a submission, like any node', async () => {
    const storage = new MemoryStorage()
    const { tag, add } = counted()
    const fn = workflow(`${tag}.submitted`, async (ctx, x: number) =>
      ctx.run(add(await ctx.run(add(x, 1)), 1)),
    )
    const submitter = runtime(storage)
    const handle = await submitter.submit(fn(5), { workflowId: 'submitted' })
    const worker = createWorker({ storage, handleSignals: false, pollIntervalMs: 50 })
    try {
      expect(await handle.result()).toBe(7)
    } finally {
      await worker.stop()
    }
  })
})
