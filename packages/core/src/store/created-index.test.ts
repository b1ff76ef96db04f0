// The creation-time index (`created/`): newest first, a page at a time, time ranges as key ranges,
// removed with the workflow, and checked and repaired against the status index.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemoryStorage, Runtime, step } from '../index.js'
import {
  checkCreatedIndex,
  createdEntryHolds,
  createdKey,
  listCreated,
  parseCreatedKey,
  storeKeys,
  type WorkflowStore,
} from '../internal.js'

const echo = step('created.echo', (x: number) => x)

/** Runs one workflow per [id, creation time], with the clock set to each time in turn. */
async function runAt(runtime: Runtime, runs: [string, number][]): Promise<void> {
  vi.useFakeTimers({ toFake: ['Date'] })
  for (const [id, at] of runs) {
    vi.setSystemTime(at)
    await runtime.run(echo(1), { workflowId: id })
  }
  vi.useRealTimers()
}

async function ids(store: WorkflowStore, options: Parameters<typeof listCreated>[1] = {}): Promise<string[]> {
  return (await listCreated(store, options)).entries.map((e) => e.workflowId)
}

afterEach(() => {
  vi.useRealTimers()
})

describe('the creation-time index', () => {
  it('lists workflows newest first, a page at a time', async () => {
    const runtime = new Runtime(new MemoryStorage())
    await runAt(runtime, [
      ['old', 1_000_000],
      ['mid', 2_000_000],
      ['new', 3_000_000],
    ])
    const store = await runtime.store()
    expect(await ids(store)).toEqual(['new', 'mid', 'old'])
    const first = await listCreated(store, { limit: 2 })
    expect(first.entries.map((e) => [e.workflowId, e.createdAt])).toEqual([
      ['new', 3_000_000],
      ['mid', 2_000_000],
    ])
    expect(first.next).toBeTypeOf('string')
    const second = await listCreated(store, { limit: 2, after: first.next })
    expect(second.entries.map((e) => e.workflowId)).toEqual(['old'])
    expect(second.next).toBeUndefined()
  })

  it('lists a time range as a key range: created at or after, and before', async () => {
    const runtime = new Runtime(new MemoryStorage())
    await runAt(runtime, [
      ['a', 1_000],
      ['b', 2_000],
      ['c', 2_000],
      ['d', 3_000],
      ['e', 4_000],
    ])
    const store = await runtime.store()
    expect(await ids(store, { createdBefore: 3_000 })).toEqual(['b', 'c', 'a'])
    expect(await ids(store, { createdAfter: 2_000 })).toEqual(['e', 'd', 'b', 'c'])
    expect(await ids(store, { createdAfter: 2_000, createdBefore: 4_000 })).toEqual(['d', 'b', 'c'])
    expect(await ids(store, { createdAfter: 5_000 })).toEqual([])
    await expect(listCreated(store, { createdAfter: Number.NaN })).rejects.toThrow(/createdAfter/)
    await expect(listCreated(store, { limit: 0 })).rejects.toThrow(/limit/)
  })

  it('keys carry the id and the time, and parse back', () => {
    const key = createdKey(1_765_000_000_123, 'run-1')
    expect(key).toBe(`created/${9_999_999_999_999 - 1_765_000_000_123}-run-1`)
    expect(parseCreatedKey(key)).toEqual({ key, workflowId: 'run-1', createdAt: 1_765_000_000_123 })
    expect(parseCreatedKey('created/12-x')).toBeUndefined()
  })

  it('drops the entry when the workflow is deleted', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await runAt(runtime, [['gone', 5_000]])
    const store = await runtime.store()
    expect(await ids(store)).toEqual(['gone'])
    await store.deleteWorkflow('gone')
    expect((await storage.list('created/')).keys).toEqual([])
  })

  it('reports a workflow without an entry (an earlier version, a crash) and adds it with fix', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await runAt(runtime, [
      ['kept', 1_000],
      ['lost', 2_000],
    ])
    const store = await runtime.store()
    await storage.delete(createdKey(2_000, 'lost'))
    expect(await ids(store)).toEqual(['kept'])
    const report = await checkCreatedIndex(store)
    expect(report.missing).toEqual([{ workflowId: 'lost', createdAt: 2_000 }])
    expect(report.added).toBe(0)
    const fixed = await checkCreatedIndex(store, { fix: true })
    expect(fixed.added).toBe(1)
    expect(await ids(store)).toEqual(['lost', 'kept'])
    expect((await checkCreatedIndex(store)).missing).toEqual([])
  })

  it('skips and, once old, drops entries no record backs (no record, or a lost race of another time)', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await runAt(runtime, [['won', 10_000]])
    const store = await runtime.store()
    // A submission of the same id that lost its create-if-absent race, and one that crashed.
    await storage.put(createdKey(9_000, 'won'), new Uint8Array())
    await storage.put(createdKey(8_000, 'crashed'), new Uint8Array())
    const listed = (await listCreated(store)).entries
    expect(listed.map((e) => e.workflowId)).toEqual(['won', 'won', 'crashed'])
    const record = (await store.readWorkflow('won'))?.record
    expect(listed.map((e) => createdEntryHolds(e, record))).toEqual([true, false, false])
    // Young entries may be submissions in flight: left.
    expect((await checkCreatedIndex(store, { now: 9_500, graceMs: 1_000 })).stale).toEqual([
      createdKey(8_000, 'crashed'),
    ])
    const fixed = await checkCreatedIndex(store, { fix: true, now: 100_000, graceMs: 1_000 })
    expect(fixed.dropped).toBe(2)
    expect(await ids(store)).toEqual(['won'])
  })

  it('leaves the entries of a record it cannot read, and takes the ids of a status scan the caller made', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await runAt(runtime, [
      ['fine', 1_000],
      ['broken', 2_000],
    ])
    const store = await runtime.store()
    // A second entry makes `broken` a suspect (its record is read), and the record is not JSON.
    await storage.put(createdKey(1_500, 'broken'), new Uint8Array())
    await storage.put(storeKeys.workflow('broken'), new TextEncoder().encode('{not json'))
    const fixed = await checkCreatedIndex(store, { fix: true, now: 100_000, graceMs: 1_000 })
    expect(fixed).toMatchObject({ stale: [], dropped: 0 })
    expect(await ids(store)).toEqual(['broken', 'broken', 'fine'])
    // Given the status index's ids (here one it lacks an entry for), no scan of its own.
    await storage.delete(createdKey(1_000, 'fine'))
    const given = await checkCreatedIndex(store, { indexed: Promise.resolve(['fine', 'broken']) })
    expect(given.missing).toEqual([{ workflowId: 'fine', createdAt: 1_000 }])
    expect(await checkCreatedIndex(store)).toEqual(given)
  })
})
