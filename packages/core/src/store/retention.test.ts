// Deleting workflows: the record is marked `deleting` by compare-and-swap before anything else
// goes, so readers find a workflow whole or gone, a resume racing a deletion wins or loses as a
// whole, and a deletion cut short is finished by the next pass; retention passes read the ended
// index by day, not every record, and a dry run deletes nothing.

import { describe, expect, it } from 'vitest'
import {
  ConditionFailedError,
  MemoryStorage,
  Runtime,
  type Storage,
  StorageUnavailableError,
  step,
  storeKeys,
  WorkflowExecutionError,
  WorkflowNotFoundError,
  type WorkflowRecord,
} from '../index.js'
import { interceptStorage } from '../testing/intercept.js'
import { countEnded, runRetentionPass } from './retention.js'
import type { WorkflowStore } from './store.js'

const DAY = 86_400_000
const add = step('ret.add', (a: number, b: number) => a + b)
let failing = true
const flaky = step(
  'ret.flaky',
  (n: number) => {
    if (failing) throw new Error('not yet')
    return n
  },
  { maxRetries: 0 },
)

/** A gate a storage call waits on until the test opens it. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

/** Copies of `workflowId` (an ended workflow) that ended `daysAgo` days ago, through the store's API. */
async function copiesOf(
  store: WorkflowStore,
  workflowId: string,
  ids: string[],
  daysAgo: number,
): Promise<void> {
  const { record } = await store.requireWorkflow(workflowId)
  const endedAt = Date.now() - daysAgo * DAY
  for (const id of ids) {
    const copy: WorkflowRecord = {
      ...record,
      workflowId: id,
      createdAt: endedAt,
      updatedAt: endedAt,
      endedAt,
    }
    delete copy.startBatch
    await store.createWorkflow(copy)
  }
}

/** Every key stored that names `workflowId`. */
async function keysNaming(storage: Storage, workflowId: string): Promise<string[]> {
  const all: string[] = []
  let after: string | undefined
  for (;;) {
    const page = await storage.list('', after === undefined ? {} : { after })
    all.push(...page.keys)
    if (page.next === undefined) break
    after = page.next
  }
  return all.filter((k) => k.split('/').includes(workflowId))
}

describe('deleting a workflow', () => {
  it('marks its record first: while the rest goes, a reader gets WorkflowNotFoundError, never part of it', async () => {
    const held = gate()
    const reached = gate()
    const memory = new MemoryStorage()
    const storage = interceptStorage(memory, {
      deleteMany: async (next, keys) => {
        reached.open()
        await held.promise
        return next(keys)
      },
    })
    const runtime = new Runtime(storage)
    await expect(runtime.run(add(add(1, 2), 3), { workflowId: 'read' })).resolves.toBe(6)
    const store = await runtime.store()
    expect((await store.requireWorkflow('read')).record.status).toBe('SUCCESSFUL')
    const deleting = store.deleteWorkflow('read')
    await reached.promise
    // Its step record is still there, but the workflow is gone for every reader.
    expect((await memory.list(storeKeys.stepsPrefix('read'))).keys).toHaveLength(1)
    expect(await store.readWorkflow('read')).toBeUndefined()
    await expect(store.requireWorkflow('read')).rejects.toBeInstanceOf(WorkflowNotFoundError)
    await expect(runtime.resume('read')).rejects.toBeInstanceOf(WorkflowNotFoundError)
    held.open()
    expect(await deleting).toBe(4) // its step, record, SUCCESSFUL marker and ended entry
    expect(await keysNaming(memory, 'read')).toEqual([])
  })

  it('a resume that claimed first keeps its workflow: the deletion fails its compare-and-swap and removes nothing', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    failing = true
    await expect(runtime.run(add(flaky(1), 2), { workflowId: 'race-1' })).rejects.toBeInstanceOf(
      WorkflowExecutionError,
    )
    const store = await runtime.store()
    const read = await store.readStoredWorkflow('race-1')
    expect(read?.record.status).toBe('FAILED')
    failing = false
    const resumed = runtime.resumeAsync('race-1')
    await resumed
    await expect(store.deleteWorkflow('race-1', read)).rejects.toBeInstanceOf(ConditionFailedError)
    await expect((await resumed).result()).resolves.toBe(3)
    expect((await store.requireWorkflow('race-1')).record.status).toBe('SUCCESSFUL')
    expect(await store.listStepIds('race-1')).toEqual(['ret.add', 'ret.flaky'])
  })

  it('a resume that raced a deletion and lost its compare-and-swap gets WorkflowNotFoundError', async () => {
    const memory = new MemoryStorage()
    let deleteFirst: (() => Promise<unknown>) | undefined
    const storage = interceptStorage(memory, {
      put: async (next, key, data, condition) => {
        // The resume's claim of the record: the deletion marks it just before.
        if (key === storeKeys.workflow('race-2') && condition && 'ifVersion' in condition && deleteFirst) {
          const mark = deleteFirst
          deleteFirst = undefined
          await mark()
        }
        return next(key, data, condition)
      },
    })
    const runtime = new Runtime(storage)
    failing = true
    await expect(runtime.run(add(flaky(1), 2), { workflowId: 'race-2' })).rejects.toThrow()
    const store = await runtime.store()
    failing = false
    deleteFirst = () => store.deleteWorkflow('race-2')
    await expect(runtime.resume('race-2')).rejects.toBeInstanceOf(WorkflowNotFoundError)
    expect(await keysNaming(memory, 'race-2')).toEqual([])
  })

  it('a deletion cut short after its mark leaves a record gone for readers, which the next pass finishes', async () => {
    const memory = new MemoryStorage()
    let fail = true
    const storage = interceptStorage(memory, {
      deleteMany: async (next, keys) => {
        if (fail) throw new StorageUnavailableError('injected: the process died here')
        return next(keys)
      },
    })
    const runtime = new Runtime(storage)
    await runtime.run(add(add(1, 2), 3), { workflowId: 'cut' })
    await runtime.run(add(1, 1), { workflowId: 'kept' })
    const store = await runtime.store()
    await expect(store.deleteWorkflow('cut')).rejects.toBeInstanceOf(StorageUnavailableError)
    expect((await store.readStoredWorkflow('cut'))?.record.deleting).toBeDefined()
    expect(await store.readWorkflow('cut')).toBeUndefined()
    fail = false
    // A pass for another status and a cutoff in the past still finishes it: it is gone already.
    const pass = await runRetentionPass(store, { statuses: ['FAILED'], endedBefore: Date.now() + DAY })
    expect(pass).toMatchObject({ workflows: 1, workflowIds: ['cut'] })
    expect(await keysNaming(memory, 'cut')).toEqual([])
    expect((await store.requireWorkflow('kept')).record.status).toBe('SUCCESSFUL')
  })
})

describe('a retention pass', () => {
  it('reads only the records of workflows that ended on or before the cutoff day, and a dry run deletes nothing', async () => {
    const memory = new MemoryStorage()
    const reads: string[] = []
    const storage = interceptStorage(memory, {
      get: (next, key) => {
        reads.push(key)
        return next(key)
      },
    })
    const runtime = new Runtime(storage)
    await runtime.run(add(1, 2), { workflowId: 'tmpl' })
    const store = await runtime.store()
    const old = ['old-1', 'old-2', 'old-3']
    const recent = Array.from({ length: 20 }, (_, i) => `recent-${i}`)
    await copiesOf(store, 'tmpl', old, 40)
    await copiesOf(store, 'tmpl', recent, 2)
    const endedBefore = Date.now() - 30 * DAY
    expect(await countEnded(store, endedBefore)).toBe(3)
    const before = (await memory.list('')).keys
    reads.length = 0
    const dry = await runRetentionPass(store, { statuses: ['SUCCESSFUL'], endedBefore, dryRun: true })
    expect(dry).toMatchObject({ workflows: 3, workflowIds: old, keys: 9 })
    expect((await memory.list('')).keys).toEqual(before)
    expect(reads.filter((k) => k.endsWith('/workflow')).sort()).toEqual(
      old.map((id) => storeKeys.workflow(id)),
    )
    const done = await runRetentionPass(store, { statuses: ['SUCCESSFUL'], endedBefore })
    expect(done).toMatchObject({ workflows: 3, keys: 9 })
    for (const id of old) expect(await keysNaming(memory, id)).toEqual([])
    for (const id of recent) expect((await store.requireWorkflow(id)).record.status).toBe('SUCCESSFUL')
  })

  it('leaves a FAILED workflow that was resumed since, and drops its stale ended entry', async () => {
    const memory = new MemoryStorage()
    const runtime = new Runtime(memory)
    failing = true
    await expect(runtime.run(add(flaky(5), 1), { workflowId: 'again' })).rejects.toThrow()
    const store = await runtime.store()
    const failedEntry = (await memory.list(storeKeys.endedPrefix)).keys
    expect(failedEntry).toHaveLength(1)
    // Resumed and parked mid-run as a RUNNING record would be: its entry is stale now.
    const found = await store.requireWorkflow('again')
    await store.updateWorkflow(found, { ...found.record, status: 'RUNNING', endedAt: undefined })
    const pass = await runRetentionPass(store, { statuses: ['FAILED'], endedBefore: Date.now() + DAY })
    expect(pass.workflows).toBe(0)
    expect((await memory.list(storeKeys.endedPrefix)).keys).toEqual([])
    expect((await store.requireWorkflow('again')).record.status).toBe('RUNNING')
  })

  it('stops at its limit with a cursor, and goes on from it', async () => {
    const runtime = new Runtime(new MemoryStorage())
    await runtime.run(add(1, 2), { workflowId: 'tmpl' })
    const store = await runtime.store()
    const old = Array.from({ length: 7 }, (_, i) => `page-${i}`)
    await copiesOf(store, 'tmpl', old, 40)
    const options = { statuses: ['SUCCESSFUL' as const], endedBefore: Date.now() - DAY, limit: 3 }
    const first = await runRetentionPass(store, options)
    expect(first.workflowIds).toEqual(old.slice(0, 3))
    expect(first.cursor).toBeDefined()
    const second = await runRetentionPass(store, { ...options, cursor: first.cursor })
    const third = await runRetentionPass(store, { ...options, cursor: second.cursor })
    expect([...second.workflowIds, ...third.workflowIds]).toEqual(old.slice(3))
    expect(third.cursor).toBeUndefined()
  })

  it('finds workflows that ended before the ended index only with full, and indexes the young ones it keeps', async () => {
    const memory = new MemoryStorage()
    const runtime = new Runtime(memory)
    await runtime.run(add(1, 2), { workflowId: 'tmpl' })
    const store = await runtime.store()
    await copiesOf(store, 'tmpl', ['legacy-old'], 40)
    await copiesOf(store, 'tmpl', ['legacy-young'], 2)
    // As earlier versions of wf left them: no ended entries at all.
    for (const key of (await memory.list(storeKeys.endedPrefix)).keys) await memory.delete(key)
    const options = { statuses: ['SUCCESSFUL' as const], endedBefore: Date.now() - 30 * DAY }
    expect((await runRetentionPass(store, options)).workflows).toBe(0)
    const full = await runRetentionPass(store, { ...options, full: true })
    expect(full.workflowIds).toEqual(['legacy-old'])
    expect(await keysNaming(memory, 'legacy-old')).toEqual([])
    // The young one and the template are indexed now: the next passes need no full walk.
    expect((await memory.list(storeKeys.endedPrefix)).keys.map((k) => k.split('/')[2]).sort()).toEqual([
      'legacy-young',
      'tmpl',
    ])
  })
})
