// Engine behaviour the `wf worker` command relies on, found while building it.

import { createWorker, MemoryStorage, Runtime, step } from '@wf/core'
import { interceptStorage } from '@wf/core/testing'
import { afterEach, expect, it } from 'vitest'

/** A storage whose listings take a little real time, like a folder or S3 (not only microtasks). */
const slowListStorage = () =>
  interceptStorage(new MemoryStorage(), {
    list: async (next, ...args) => {
      await new Promise((resolve) => setTimeout(resolve, 20))
      return next(...args)
    },
  })

const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)
afterEach(() => {
  process.off('unhandledRejection', onUnhandled)
})

// Was an engine bug (Execution.run): a run stopped while it was still loading its committed steps
// on resume rejected its settle promise before anyone listened, and Node's unhandled rejection
// killed the process (a worker stopped with SIGTERM just after taking a workflow exited 1).
it('stopping a run while it loads committed steps on resume leaves no unhandled rejection', async () => {
  process.on('unhandledRejection', onUnhandled)
  const runtime = new Runtime(slowListStorage())
  // Committed steps now load before the takeover, so the stop lands just after it, while the
  // first step runs: the same early end, with nothing committed.
  const one = step('engine.one', async () => {
    await new Promise((resolve) => setTimeout(resolve, 50))
    return 1
  })
  await runtime.submit(one(), { workflowId: 'released-while-loading' })
  const released = await runtime.resumeAsync('released-while-loading')
  await runtime.release('released-while-loading')
  await expect(released.result()).rejects.toMatchObject({ code: 'WF_RUNNER_SHUTDOWN' })

  await runtime.submit(one(), { workflowId: 'canceled-while-loading' })
  const canceled = await runtime.resumeAsync('canceled-while-loading')
  await runtime.cancel('canceled-while-loading')
  await expect(canceled.result()).rejects.toMatchObject({ code: 'WF_CANCELED' })
  await new Promise((resolve) => setTimeout(resolve, 50))
  expect(unhandled).toEqual([])
})

// Was an engine bug: `submit()` started polling at once, so a process that only submits (a web
// handler, a cron script) never exited and 1,000 submissions cost 5,000 reads a second.
it('a submitted workflow is not polled until someone asks for its result', async () => {
  // Counts the reads made once `counting` is set.
  const reads = { counting: false, gets: 0 }
  const storage = interceptStorage(new MemoryStorage(), {
    get: (next, key) => {
      if (reads.counting) reads.gets++
      return next(key)
    },
  })
  const runtime = new Runtime(storage)
  const one = step('engine.submitted', async () => 1)
  const handle = await runtime.submit(one(), { workflowId: 'submitted-only' })
  reads.counting = true
  await new Promise((resolve) => setTimeout(resolve, 500))
  expect(reads.gets).toBe(0)
  void handle
})

// Was an engine bug: one workflow the worker could not take (here: code changed under policy
// 'error') ended each poll, so every workflow submitted after it waited forever.
it('a worker that cannot take one workflow (code changed, policy error) still takes the others', async () => {
  const storage = new MemoryStorage()
  const submitter = new Runtime(storage)
  const store = await submitter.store()
  const inc = step('engine.inc', async (n: number) => n + 1)
  await submitter.submit(inc(1), { workflowId: 'changed' })
  // As if submitted by another build: the recorded fingerprint of its step differs.
  const found = await store.requireWorkflow('changed')
  const graph = await store.loadGraph(found.record)
  const changed = { ...graph, fingerprints: { 'engine.inc': 'another-build' } }
  await store.updateWorkflow(found, { ...found.record, graph: changed })
  await new Promise((resolve) => setTimeout(resolve, 5))
  const fine = await submitter.submit(inc(41), { workflowId: 'fine' })

  const errors: unknown[] = []
  const worker = createWorker({
    storage,
    onCodeChange: 'error',
    pollIntervalMs: 10,
    handleSignals: false,
    onWorkflow: ({ outcome, error }) => outcome === 'ERROR' && errors.push(error),
  })
  try {
    const result = await Promise.race([
      fine.result(),
      new Promise((resolve) => setTimeout(() => resolve('still waiting after 2 s'), 2000)),
    ])
    expect(result).toBe(42)
    expect((await store.requireWorkflow('changed')).record.status).toBe('PENDING')
  } finally {
    await worker.stop()
  }
})
