// A worker meeting a workflow record it cannot read: it runs the others and reports the skipped
// one once (not at every poll), through `onWorkflow` with `skipped: true`.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createWorker, MemoryStorage, Runtime, step, storeKeys, type Worker } from '../index.js'
import { countingView } from '../test-support/counting-view.js'
import { soon } from '../test-support/polling.js'

const triple = step('unreadable.triple', (n: number) => n * 3)

const workers: Worker[] = []
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()))
})

describe('a worker and an unreadable record', () => {
  it('runs the readable workflows and reports the unreadable one once, as skipped', async () => {
    const storage = new MemoryStorage()
    const submitter = new Runtime(storage)
    const good = await submitter.submit(triple(2), { workflowId: 'good' })
    await submitter.submit(triple(3), { workflowId: 'garbled' })
    await storage.put(storeKeys.workflow('garbled'), new TextEncoder().encode('{"v":1,"workfl'))
    const events: { workflowId: string; outcome: string; skipped?: boolean; code?: string }[] = []
    const view = countingView(storage)
    const worker = createWorker({
      storage: view,
      handleSignals: false,
      pollIntervalMs: 5,
      onWorkflow: ({ workflowId, outcome, skipped, error }) =>
        events.push({ workflowId, outcome, skipped, code: (error as { code?: string } | undefined)?.code }),
    })
    workers.push(worker)
    expect(await good.result()).toBe(6)
    await vi.waitFor(() => expect(view.lists, '20 polls').toBeGreaterThanOrEqual(40), soon)
    expect(events.filter((e) => e.workflowId === 'garbled')).toEqual([
      { workflowId: 'garbled', outcome: 'ERROR', skipped: true, code: 'WF_CORRUPT_RECORD' },
    ])
    expect(events).toContainEqual({
      workflowId: 'good',
      outcome: 'SUCCESSFUL',
      skipped: undefined,
      code: undefined,
    })
  })
})
