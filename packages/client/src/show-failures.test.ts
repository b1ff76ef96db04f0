// The text of `wf show` for what a finished workflow on a folder cannot show (see cli-failures.test.ts
// for those): a step of a live run that failed an attempt and waits for its retry, and a step
// that succeeded after failed attempts.

import { MemoryStorage, Runtime, step, storeKeys } from '@wf/core'
import { describe, expect, it, vi } from 'vitest'
import { showText } from './cli/show.js'
import { WorkflowClient } from './index.js'
import { gate } from './test-support/harness.js'

const plain = { color: false, json: false, stdout: () => {}, stderr: () => {} }

describe('wf show, text', () => {
  it('shows a step of a live run with failed attempts and nothing committed, and one that succeeded on a retry', async () => {
    const runtime = new Runtime(new MemoryStorage())
    const client = new WorkflowClient({ runtime })
    const retry = gate()
    let tries = 0
    const flaky = step(
      'sh.flaky',
      async (n: number) => {
        if (++tries === 1) throw new Error('first try fails')
        await retry.promise
        return n
      },
      { backoff: { initialDelayMs: 0 } },
    )
    let wobbles = 0
    const wobbly = step(
      'sh.wobbly',
      (n: number) => {
        if (++wobbles < 3) throw new RangeError(`wobble ${wobbles}`)
        return n
      },
      { backoff: { initialDelayMs: 0 } },
    )
    const add = step('sh.add', (a: number, b: number) => a + b)
    const handle = await runtime.runAsync(add(flaky(1), wobbly(2)), { workflowId: 'live' })
    const store = await runtime.store()
    await vi.waitFor(
      async () => expect((await store.readStep('live', 'sh.wobbly')) !== undefined && tries === 2).toBe(true),
      { timeout: 5000 },
    )

    const text = showText(await client.getMetadata('live'), await client.getGraph('live'), plain)
    expect(text).toMatch(/^sh\.flaky {2}\(failed attempts, nothing committed\) +PENDING +1 +\S+ *$/m)
    expect(text).toMatch(
      /^ {2}sh\.flaky: 1 failed attempt over \S+ \(first started .*\), failing, will be retried$/m,
    )
    expect(text).toMatch(/^ {4}attempt 1 +\S+ \S+ +Error: first try fails$/m)
    expect(text).toMatch(/^sh\.wobbly +SUCCESSFUL +3 /m)
    expect(text).toMatch(/^ {2}sh\.wobbly: 2 failed attempts over \S+ .*, succeeded after retries$/m)
    // No stack for errors that did not decide the step's outcome.
    expect(text).not.toMatch(/^ {4}RangeError: wobble/m)

    retry.open()
    await expect(handle.result()).resolves.toBe(3)
  })

  it("shows the workflow's error and stack for a failed step with no record of failures (an earlier version of wf)", async () => {
    const runtime = new Runtime(new MemoryStorage())
    const client = new WorkflowClient({ runtime })
    const declines = step(
      'sh.declines',
      (): number => {
        throw new TypeError('declined')
      },
      { maxRetries: 0 },
    )
    await expect(runtime.run(declines(), { workflowId: 'old' })).rejects.toThrow()
    const store = await runtime.store()
    await store.storage.delete(storeKeys.failures('old', 'sh.declines'))
    const text = showText(await client.getMetadata('old'), await client.getGraph('old'), plain)
    expect(text).toMatch(/^sh\.declines +FAILED +- +- *$/m)
    expect(text).toMatch(/^failures:\n {2}sh\.declines\n {4}TypeError: declined\n {6}at /m)
  })
})
