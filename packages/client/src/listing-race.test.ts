// A listing is not a snapshot: it lists the status index one prefix at a time. These tests put a
// status change between those lists (the worst interleaving, forced by holding lists back) and
// check what any listing must guarantee: a workflow is reported only under a status it held
// while the listing ran, or left out. Reading a missing marker as a status would fail them.

import { type Storage, step, type WorkflowStatus } from '@wf/core'
import { interceptStorage } from '@wf/core/testing'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { WorkflowClient } from './index.js'
import { backends, gate } from './test-support/harness.js'

type HeldLists = Storage & { hold: (prefix: string) => boolean; readonly listed: string[]; release(): void }

/** Holds back the `list` calls of the status index that `hold` picks, until `release()`. */
function heldLists(inner: Storage): HeldLists {
  const held = gate()
  const storage: HeldLists = Object.assign(
    interceptStorage(inner, {
      list: async (next, prefix, options) => {
        storage.listed.push(prefix)
        // Only the status prefixes are held: step keys (`workflows/…`) are the runtime's own.
        if (prefix.startsWith('index/') && storage.hold(prefix)) await held.promise
        return next(prefix, options)
      },
    }),
    {
      hold: (_prefix: string) => false,
      listed: [] as string[],
      release: () => {
        storage.hold = () => false
        held.open()
      },
    },
  )
  return storage
}

let failing = gate()
const failsWhenOpened = step(
  'lr-fails',
  async (): Promise<number> => {
    await failing.promise
    throw new Error('failed on purpose')
  },
  { maxRetries: 0 },
)

let attempts = 0
let resumed = gate()
const failsOnceThenWaits = step(
  'lr-flaky',
  async (): Promise<number> => {
    if (++attempts === 1) throw new Error('first attempt fails')
    await resumed.promise
    return 1
  },
  { maxRetries: 0 },
)

describe.each(backends)('on $name storage', (backend) => {
  let storage: HeldLists
  let client: WorkflowClient
  let cleanup: () => Promise<void>

  beforeEach(async () => {
    const opened = await backend.open()
    cleanup = opened.cleanup
    storage = heldLists(opened.storage)
    client = new WorkflowClient({ storage })
  })
  afterEach(async () => {
    storage.release()
    await cleanup()
  })

  /** Starts both listings with `hold` in force, waits until the unheld prefixes were listed. */
  async function listingsHeldBy(hold: (prefix: string) => boolean, unheld: string) {
    storage.hold = hold
    storage.listed.length = 0
    const all = client.listAll()
    const page = client.listWorkflows()
    await vi.waitFor(() => expect(storage.listed.filter((p) => p === unheld)).toHaveLength(2), {
      timeout: 5000,
    })
    return { all, page }
  }

  async function statusesOf(
    workflowId: string,
    listings: {
      all: ReturnType<WorkflowClient['listAll']>
      page: ReturnType<WorkflowClient['listWorkflows']>
    },
  ): Promise<WorkflowStatus[]> {
    const all = await listings.all
    const page = await listings.page
    return [...all, ...page.workflows].filter((w) => w.workflowId === workflowId).map((w) => w.status)
  }

  it('never lists a workflow that fails mid-listing under a status it did not have', async () => {
    failing = gate()
    const handle = await client.runtime.runAsync(failsWhenOpened(), { workflowId: 'x-fails' })
    // FAILED is listed before the workflow fails, every other prefix after.
    const listings = await listingsHeldBy((p) => p !== 'index/FAILED/', 'index/FAILED/')
    failing.open()
    await expect(handle.result()).rejects.toThrow()
    storage.release()
    for (const status of await statusesOf('x-fails', listings))
      expect(['RUNNING', 'FAILED']).toContain(status)
    expect(await client.listAll()).toEqual([{ workflowId: 'x-fails', status: 'FAILED' }])
  })

  it('never lists a FAILED workflow resumed mid-listing under a status it did not have', async () => {
    attempts = 0
    resumed = gate()
    await expect(client.runtime.run(failsOnceThenWaits(), { workflowId: 'x-resumed' })).rejects.toThrow()
    // RUNNING is listed before the resume, every other prefix after.
    const listings = await listingsHeldBy((p) => p !== 'index/RUNNING/', 'index/RUNNING/')
    const handle = await client.resumeAsync('x-resumed')
    storage.release()
    for (const status of await statusesOf('x-resumed', listings)) {
      expect(['FAILED', 'RUNNING']).toContain(status)
    }
    expect(await client.listAll()).toEqual([{ workflowId: 'x-resumed', status: 'RUNNING' }])
    resumed.open()
    expect(await handle.result()).toBe(1)
  })
})
