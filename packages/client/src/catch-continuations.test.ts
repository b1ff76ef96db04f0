// `catchExceptions` covers a step's whole continuation, as in Ray: a step failing for good
// anywhere inside it (its output step, any other step, continuations it returns in turn, at any
// depth) makes the catching step's result `{ ok: false, error }`, committed once beside it; the
// rest of that continuation is not run, and a resume does not run it again. Memory and a folder.

import { type Runtime, type StepNode, type Storage, step, storeKeys, WorkflowExecutionError } from '@wf/core'
import { beforeEach, describe, expect, it } from 'vitest'
import type { WorkflowClient } from './index.js'
import { backends, eachTestOn } from './test-support/harness.js'

const runs: Record<string, number> = {}
const ran = (name: string) => {
  runs[name] = (runs[name] ?? 0) + 1
}
let failDownstream = true

const bad = step(
  'cc-bad',
  (n: number): number => {
    ran('bad')
    throw new RangeError(`bad ${n}`)
  },
  { maxRetries: 1, backoff: { initialDelayMs: 1 } },
)
const good = step('cc-good', (n: number) => {
  ran('good')
  return n
})
const add = step('cc-add', (a: number, b: number) => {
  ran('add')
  return a + b
})
const slow = step('cc-slow', async (n: number) => {
  ran('slow')
  await new Promise((resolve) => setTimeout(resolve, 100))
  return n
})
const afterSlow = step('cc-after-slow', (n: number) => {
  ran('afterSlow')
  return n
})
/** Returns a continuation `depth` levels deep whose innermost step fails. */
const deep = step('cc-deep', (depth: number): StepNode<number> => (depth <= 1 ? bad(depth) : deep(depth - 1)))
const catching = step('cc-catching', (depth: number): StepNode<number> => deep(depth), {
  catchExceptions: true,
})
/** A continuation whose failing step is not its output step, beside a slow branch. */
const beside = step(
  'cc-beside',
  (n: number): StepNode<number> => add(add(bad(n), good(n)), afterSlow(slow(n))),
  { catchExceptions: true },
)
const fine = step('cc-fine', (n: number): StepNode<number> => add(good(n), good(n + 1)), {
  catchExceptions: true,
})
const report = step(
  'cc-report',
  (outcome: { ok: boolean; error?: Error }) => {
    ran('report')
    if (failDownstream) throw new Error('report failed')
    return outcome.ok ? 'ok' : `caught ${outcome.error?.message}`
  },
  { maxRetries: 0 },
)

for (const backend of backends) {
  describe(`catchExceptions across a continuation (${backend.name})`, () => {
    let storage: Storage
    let runtime: Runtime
    let client: WorkflowClient
    eachTestOn(backend, (bed) => {
      ;({ storage, runtime, client } = bed)
    })
    beforeEach(() => {
      for (const key of Object.keys(runs)) delete runs[key]
      failDownstream = true
    })

    for (const depth of [1, 2, 5]) {
      it(`catches a failure ${depth} continuation(s) deep`, async () => {
        const result = await runtime.run(catching(depth), { workflowId: `cc-depth-${depth}` })
        expect(result).toMatchObject({ ok: false, error: { name: 'RangeError', message: 'bad 1' } })
        expect(runs.bad).toBe(2) // the failing step's own retries came first
        expect(await storage.get(storeKeys.caught(`cc-depth-${depth}`, 'cc-catching'))).toBeDefined()
      })
    }

    it('catches a failure of a step that is not the output of the continuation, and runs no more of it', async () => {
      const result = await runtime.run(beside(3), { workflowId: 'cc-beside' })
      expect(result).toMatchObject({ ok: false, error: { message: 'bad 3' } })
      // The slow branch was running: it finished (its commit is kept), nothing after it ran.
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(runs.slow).toBe(1)
      expect(runs.afterSlow).toBeUndefined()
      expect(runs.add).toBeUndefined()
      // The failing step's attempts are recorded where `wf show` reads them.
      const graph = await client.getGraph('cc-beside')
      const failedStep = [...graph.byId.values()].find((view) => view.name === 'cc-bad')
      expect(failedStep?.failures?.attempts).toBe(2)
      expect(failedStep?.failures?.errors.at(-1)?.message).toBe('bad 3')
      expect(graph.byId.get('cc-beside')).toMatchObject({ status: 'SUCCESSFUL', caughtContinuation: true })
    })

    it('gives { ok: true, value } when nothing in the continuation fails', async () => {
      await expect(runtime.run(fine(1), { workflowId: 'cc-fine' })).resolves.toEqual({ ok: true, value: 3 })
    })

    it('does not run the caught continuation again on resume', async () => {
      const graph = report(catching(2))
      const error = await runtime.run(graph, { workflowId: 'cc-resume' }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(WorkflowExecutionError)
      expect(runs).toMatchObject({ bad: 2, report: 1 })
      failDownstream = false
      await expect(client.resume('cc-resume')).resolves.toBe('caught bad 1')
      expect(runs).toMatchObject({ bad: 2, report: 2 })
    })
  })
}
