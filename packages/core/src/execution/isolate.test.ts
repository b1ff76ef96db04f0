// Isolated steps: each attempt runs in a worker thread or a child process that imports
// test-support/fixtures/isolated-steps.mjs through the build (build core first). The steps
// registered here only name that module; their bodies live in the fixture and must never run in
// the runner.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import {
  InvalidOptionsError,
  IsolateExitedError,
  MemoryStorage,
  Runtime,
  type StepFunction,
  type StepOptions,
  StepTimeoutError,
  step,
  WorkflowCancelledError,
  WorkflowExecutionError,
} from '../index.js'

const FIXTURE = new URL('../test-support/fixtures/isolated-steps.mjs', import.meta.url).href
const KINDS = ['thread', 'process'] as const

const notHere = () => {
  throw new Error('an isolated step ran in the runner')
}

/** The runner's side of a step whose body is in the fixture. */
function isolated<A extends unknown[], R>(name: string, options: StepOptions = {}): StepFunction<A, R> {
  const fn = step(name, notHere, { module: FIXTURE, backoff: { initialDelayMs: 10 }, ...options })
  return fn as unknown as StepFunction<A, R>
}

const kinds = isolated<
  [Map<string, number>, Date, bigint],
  {
    map: Map<string, number>
    date: Date
    big: bigint
    where: { pid: number; isMainThread: boolean; env: string | null }
  }
>('iso.kinds')
const context = isolated<
  [],
  { workflowId: string; stepId: string; attempt: number; aborted: boolean; isMainThread: boolean }
>('iso.context')
const throws = isolated<[string], never>('iso.throws')
const hangs = isolated<[string, boolean], never>('iso.hangs')
const spins = isolated<[string], never>('iso.spins')
const killme = isolated<[string], number>('iso.killme')
const exits = isolated<[string], never>('iso.exits')
const uncaught = isolated<[], never>('iso.uncaught')
const hog = isolated<[], never>('iso.hog')
const continues = isolated<[number], number>('iso.continues')

const newRuntime = () => new Runtime(new MemoryStorage())
const tmp = mkdtempSync(join(tmpdir(), 'wf-isolate-'))
let dirs = 0
const newDir = () => mkdtempSync(join(tmp, `${dirs++}-`))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitForFile(file: string): Promise<string> {
  for (let i = 0; i < 500; i++) {
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8')
      if (text !== '') return text
    }
    await sleep(10)
  }
  throw new Error(`${file} never appeared`)
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The step's heartbeat has stopped: its thread or process is gone. */
async function expectStopped(dir: string): Promise<void> {
  const before = readFileSync(join(dir, 'beat'), 'utf8')
  await sleep(150)
  expect(readFileSync(join(dir, 'beat'), 'utf8')).toBe(before)
}

async function failureOf(promise: Promise<unknown>): Promise<WorkflowExecutionError> {
  const error = await promise.then(
    () => {
      throw new Error('the workflow succeeded')
    },
    (error: unknown) => error,
  )
  expect(error).toBeInstanceOf(WorkflowExecutionError)
  return error as WorkflowExecutionError
}

describe.each(KINDS)('a step isolated in a %s', (kind) => {
  const options = { isolate: kind } as const

  it('returns its result with its types kept, running outside the runner', async () => {
    const runtime = newRuntime()
    const date = new Date('2026-01-02T03:04:05Z')
    const out = await runtime.run(
      kinds.options({ ...options, env: { WF_ISOLATE_TEST: kind } })(new Map([['a', 1]]), date, 2n ** 70n),
    )
    expect(out.map).toEqual(new Map([['a', 1]]))
    expect(out.date).toBeInstanceOf(Date)
    expect(out.date.getTime()).toBe(date.getTime())
    expect(out.big).toBe(2n ** 71n)
    expect(out.where.env).toBe(kind)
    if (kind === 'thread') expect(out.where).toMatchObject({ pid: process.pid, isMainThread: false })
    else expect(out.where.pid).not.toBe(process.pid)
  })

  it('sees its own currentStep(): workflow id, step id, attempt and a live signal', async () => {
    const runtime = newRuntime()
    const out = await runtime.run(context.options(options)(), { workflowId: `ctx-${kind}` })
    expect(out).toEqual({
      workflowId: `ctx-${kind}`,
      stepId: 'iso.context',
      attempt: 1,
      aborted: false,
      isMainThread: kind === 'process',
    })
  })

  it('keeps a thrown error (name, message, stack, code), retries it, then fails the workflow', async () => {
    const runtime = newRuntime()
    const file = join(newDir(), 'attempts')
    const error = await failureOf(
      runtime.run(throws.options({ ...options, maxRetries: 1 })(file), { workflowId: `throws-${kind}` }),
    )
    expect(readFileSync(file, 'utf8')).toBe('xx')
    const cause = error.cause as RangeError & { code: string }
    expect(cause).toBeInstanceOf(RangeError)
    expect(cause.message).toBe('amount out of range')
    expect(cause.code).toBe('E_RANGE')
    expect(cause.stack).toContain('isolated-steps.mjs')
    const store = await runtime.store()
    expect((await store.requireWorkflow(`throws-${kind}`)).record.status).toBe('FAILED')
  })

  it('is aborted by a cancel: its signal aborts, and its isolate is gone when run() rejects', async () => {
    const runtime = newRuntime()
    const dir = newDir()
    const running = runtime.run(hangs.options(options)(dir, true), { workflowId: `cancel-${kind}` })
    running.catch(() => {}) // it may reject while cancel() is awaited: asserted below
    const pid = Number(await waitForFile(join(dir, 'pid')))
    await waitForFile(join(dir, 'beat')) // expectStopped compares beats: let the first one land
    await runtime.cancel(`cancel-${kind}`)
    await expect(running).rejects.toBeInstanceOf(WorkflowCancelledError)
    expect(readFileSync(join(dir, 'aborted'), 'utf8')).toBe('AbortError')
    if (kind === 'process') expect(isAlive(pid)).toBe(false)
    await expectStopped(dir)
  })

  it('is ended after a grace when it ignores its signal', async () => {
    const runtime = newRuntime()
    const dir = newDir()
    const running = runtime.run(hangs.options(options)(dir, false), { workflowId: `ignore-${kind}` })
    running.catch(() => {}) // it may reject while cancel() is awaited: asserted below
    const pid = Number(await waitForFile(join(dir, 'pid')))
    await waitForFile(join(dir, 'beat'))
    const t = Date.now()
    await runtime.cancel(`ignore-${kind}`)
    await expect(running).rejects.toBeInstanceOf(WorkflowCancelledError)
    expect(Date.now() - t).toBeLessThan(5_000)
    if (kind === 'process') expect(isAlive(pid)).toBe(false)
    await expectStopped(dir)
  })

  it('times out a step that blocks its event loop, ending the isolate, then fails with StepTimeoutError', async () => {
    const runtime = newRuntime()
    const dir = newDir()
    // Long enough for a process to start on a loaded machine and spin before it times out.
    const timeoutMs = kind === 'process' ? 5_000 : 300
    const error = await failureOf(
      runtime.run(spins.options({ ...options, timeoutMs, maxRetries: 0 })(dir), {
        workflowId: `spin-${kind}`,
      }),
    )
    expect(error.cause).toBeInstanceOf(StepTimeoutError)
    if (kind === 'process') expect(isAlive(Number(readFileSync(join(dir, 'pid'), 'utf8')))).toBe(false)
  }, 30_000)

  it('fails the step, not the runner, on process.exit(), and retries it', async () => {
    const runtime = newRuntime()
    const file = join(newDir(), 'attempts')
    const error = await failureOf(runtime.run(exits.options({ ...options, maxRetries: 1 })(file)))
    expect(readFileSync(file, 'utf8')).toBe('xx')
    const cause = error.cause as IsolateExitedError
    expect(cause).toBeInstanceOf(IsolateExitedError)
    expect(cause).toMatchObject({
      code: 'WF_ISOLATE_EXITED',
      isolate: kind,
      exitCode: 3,
      stepId: 'iso.exits',
    })
    expect(cause.message).toMatch(
      /step "iso\.exits" died in its (worker thread|child process) .*exited with code 3/,
    )
  })

  it('fails the step on an uncaught exception, keeping it as the cause', async () => {
    const runtime = newRuntime()
    const error = await failureOf(runtime.run(uncaught.options({ ...options, maxRetries: 0 })()))
    const cause = error.cause as IsolateExitedError
    expect(cause).toBeInstanceOf(IsolateExitedError)
    expect(cause.message).toContain('uncaught TypeError: thrown from a timer')
    expect((cause.cause as Error).message).toBe('thrown from a timer')
  })
})

describe('isolated steps', () => {
  it('rejects a returned StepNode: an isolated step must return a value', async () => {
    const runtime = newRuntime()
    const error = await failureOf(runtime.run(continues.options({ isolate: 'thread', maxRetries: 0 })(1)))
    expect((error.cause as Error).message).toContain('must return a value')
  })

  it('fails with a clear error when its module cannot be imported', async () => {
    const runtime = newRuntime()
    const missing = pathToFileURL(join(tmp, 'no-such-module.mjs')).href
    const options = { isolate: 'process', module: missing, maxRetries: 0 } as const
    const error = await failureOf(runtime.run(context.options(options)()))
    expect((error.cause as Error).message).toContain(`its module ${missing} could not be imported`)
  })

  it('fails with a clear error when its module does not register it', async () => {
    const runtime = newRuntime()
    const other = new URL('../../dist/index.js', import.meta.url).href
    const error = await failureOf(
      runtime.run(context.options({ isolate: 'thread', module: other, maxRetries: 0 })()),
    )
    expect((error.cause as Error).message).toContain('does not register it')
  })

  it('retries a process killed from outside, and the next attempt succeeds', async () => {
    const runtime = newRuntime()
    const dir = newDir()
    const running = runtime.run(killme.options({ isolate: 'process' })(dir))
    const pid = Number(await waitForFile(join(dir, 'pid')))
    process.kill(pid, 'SIGKILL')
    await expect(running).resolves.toBe(2)
  })

  it('fails a thread that runs out of its resourceLimits as a step failure', async () => {
    const runtime = newRuntime()
    const step = hog.options({
      isolate: 'thread',
      resourceLimits: { maxOldGenerationSizeMb: 16 },
      maxRetries: 0,
    })
    const error = await failureOf(runtime.run(step()))
    expect((error.cause as Error).message).toContain('ran out of memory')
  })

  it('validates the isolate options, naming the option', () => {
    const bad = (options: Record<string, unknown>) => () => step('iso.bad', notHere, options as StepOptions)
    expect(bad({ isolate: 'thread' })).toThrow(InvalidOptionsError)
    expect(bad({ isolate: 'thread' })).toThrow(/needs module/)
    expect(bad({ isolate: 'docker', module: FIXTURE })).toThrow(/isolate must be 'thread' or 'process'/)
    expect(bad({ isolate: 'thread', module: './relative.mjs' })).toThrow(
      /module must be a file: URL or an absolute path/,
    )
    expect(bad({ module: 42 })).toThrow(/module must be/)
    expect(bad({ env: { A: 1 } })).toThrow(/env must be an object of string values/)
    expect(bad({ execArgv: '--inspect' })).toThrow(/execArgv must be an array of strings/)
    expect(bad({ resourceLimits: { maxOldGenerationSizeMb: -1 } })).toThrow(
      /resourceLimits.maxOldGenerationSizeMb/,
    )
    expect(bad({ resourceLimits: { heapMb: 1 } })).toThrow(/resourceLimits.heapMb is not a resource limit/)
    expect(() => context.options({ isolate: 'process' })).not.toThrow()
    expect(() => step('iso.nomodule', notHere).options({ isolate: 'process' })).toThrow(/needs module/)
  })
})
