// One lease per runner: a runtime keeps `runners/<runnerId>` and renews only that, however many
// workflows it drives; readers take a runner-leased workflow's expiry from there; a runner whose
// lease lapsed re-asserts its workflows before committing; records of earlier versions, with a
// lease of their own, keep their meaning.

import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it, vi } from 'vitest'
import {
  MemoryStorage,
  type RunnerInfo,
  Runtime,
  step,
  storeKeys,
  WorkflowLeaseLostError,
  type WorkflowRecord,
  WorkflowStillActiveError,
  type WorkflowStore,
} from '../index.js'
import { freezable } from '../test-support/freezable-storage.js'
import { soon } from '../test-support/polling.js'
import { interceptStorage } from '../testing/intercept.js'

const lone = step('rl.lone', () => 'resumed')
const old = step('rl.old', () => 'taken over')

/** Makes a submitted workflow RUNNING under the lease of a runner on another machine, as it would have left it. */
async function holdElsewhere(
  store: WorkflowStore,
  workflowId: string,
  runnerId: string,
): Promise<RunnerInfo> {
  const owner = { host: 'another-machine', pid: 1, runnerId }
  const pending = await store.requireWorkflow(workflowId)
  await store.updateWorkflow(pending, {
    ...pending.record,
    status: 'RUNNING',
    owner,
    lease: 'runner',
    runs: 1,
  })
  return owner
}

/** A MemoryStorage that counts puts and gets per key. */
function countingStorage() {
  const puts = new Map<string, number>()
  const gets = new Map<string, number>()
  const bump = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
  const storage = interceptStorage(new MemoryStorage(), {
    put: (next, key, data, condition) => {
      bump(puts, key)
      return next(key, data, condition)
    },
    get: (next, key) => {
      bump(gets, key)
      return next(key)
    },
  })
  const count = (counts: Map<string, number>, test: (key: string) => boolean): number => {
    let n = 0
    for (const [key, c] of counts) if (test(key)) n += c
    return n
  }
  return Object.assign(storage, { puts, gets, count })
}

/** A step whose calls wait until released one by one, in the order they started, with the value they return. */
function gated(name: string) {
  const waiting: ((value: string) => void)[] = []
  const fn = step(name, () => new Promise<string>((resolve) => waiting.push(resolve)))
  return { fn, waiting, started: () => waiting.length }
}

describe('one lease per runner', () => {
  it('a runtime driving 50 workflows for several lease half-lives renews its runner record a few times, never a workflow record', async () => {
    const storage = countingStorage()
    const ttl = 300
    const runtime = new Runtime(storage, { leaseTtlMs: ttl }) // heartbeat: 100 ms
    const runnerKey = storeKeys.runner(runtime.runner.runnerId)
    const hold = step('rl.hold', async (ms: number) => {
      await sleep(ms)
      return ms
    })
    const startedAt = Date.now()
    const runs = Array.from({ length: 50 }, (_, i) => runtime.run(hold(1200), { workflowId: `many-${i}` }))
    // Mid-run, well past the first lease, another runtime sees all of them RUNNING through the
    // renewed runner record, and reads that record once for the 50 of them.
    await sleep(900)
    const observer = new Runtime(storage, { leaseTtlMs: ttl })
    const observerStore = await observer.store()
    storage.gets.clear()
    const statuses = await Promise.all(
      runs.map(async (_, i) =>
        observer.deriveStatus((await observerStore.requireWorkflow(`many-${i}`)).record),
      ),
    )
    expect(new Set(statuses)).toEqual(new Set(['RUNNING']))
    expect(storage.gets.get(runnerKey)).toBe(1)
    await Promise.all(runs)
    const elapsed = Date.now() - startedAt
    // Each workflow record is written twice (submitted, ended): never to renew a lease.
    for (let i = 0; i < 50; i++) expect(storage.puts.get(storeKeys.workflow(`many-${i}`))).toBe(2)
    // The runner record: written once at the start, then renewed at most once per heartbeat (when
    // less than half, or two heartbeats, of the lease is left): O(1) per half-life, not O(50).
    const runnerPuts = storage.puts.get(runnerKey) ?? 0
    expect(runnerPuts).toBeGreaterThanOrEqual(elapsed / ttl)
    expect(runnerPuts).toBeLessThanOrEqual(Math.ceil(elapsed / runtime.heartbeatMs) + 1)
    expect(runnerPuts / (elapsed / (ttl / 2))).toBeLessThanOrEqual(2)
    expect(storage.count(storage.puts, (k) => k.startsWith(storeKeys.runnersPrefix))).toBe(runnerPuts)
  })

  it('200 workflows started at once share one write of the runner record, made before any record names the runner', async () => {
    let runnerPuts = 0
    const violations: string[] = []
    const storage = interceptStorage(new MemoryStorage(), {
      put: async (next, key, data, cond) => {
        if (key === runnerKey) runnerPuts++
        else if (key.endsWith('/workflow')) {
          const record = JSON.parse(Buffer.from(data).toString()) as WorkflowRecord
          if (record.owner?.runnerId === runtime.runner.runnerId) {
            const held = await storage.get(runnerKey)
            const expiry = held && JSON.parse(Buffer.from(held.data).toString()).leaseExpiresAt
            if (!(expiry >= Date.now())) violations.push(key)
          }
        }
        return next(key, data, cond)
      },
    })
    const runtime = new Runtime(storage)
    const runnerKey = storeKeys.runner(runtime.runner.runnerId)
    const inc = step('rl.inc', (x: number) => x + 1)
    const outputs = await Promise.all(
      Array.from({ length: 200 }, (_, i) => runtime.run(inc(inc(i)), { workflowId: `burst-${i}` })),
    )
    expect(outputs).toEqual(Array.from({ length: 200 }, (_, i) => i + 2))
    expect(violations).toEqual([])
    expect(runnerPuts).toBe(1)
  })

  it('a runner paused past its lease whose workflow was taken over meanwhile stops with WorkflowLeaseLostError and never overwrites the new owner', async () => {
    const shared = new MemoryStorage()
    const paused = freezable(shared)
    const a = new Runtime(paused, { leaseTtlMs: 150, heartbeatMs: 30 })
    const b = new Runtime(shared, { leaseTtlMs: 150, heartbeatMs: 30 })
    const store = await b.store()
    const { fn, waiting, started } = gated('rl.paused')
    const first = step('rl.first', () => 'first')
    const then = step('rl.then', (x: string, tag: string) => `${x}+${tag}`)
    const runA = a.run(then(first(), fn()), { workflowId: 'paused' })
    await vi.waitFor(() => expect(started(), 'A to start its gated step').toBe(1), soon)
    // A "pauses": its storage calls (heartbeat, renewals, commits) wait. Its runner lease runs out.
    paused.freeze()
    await vi.waitFor(
      async () =>
        expect(
          b.deriveStatus((await store.requireWorkflow('paused')).record),
          'A’s runner lease to run out',
        ).toBe('RESUMABLE'),
      soon,
    )
    const runB = b.resume('paused')
    await vi.waitFor(() => expect(started(), 'B to take over and start the gated step').toBe(2), soon)
    const takenOver = await store.requireWorkflow('paused')
    expect(takenOver.record.owner?.runnerId).toBe(b.runner.runnerId)
    // A wakes up: its renewal lands after the gap, its step finishes, and its commit must be refused.
    paused.thaw()
    waiting[0]?.('a')
    await expect(runA).rejects.toBeInstanceOf(WorkflowLeaseLostError)
    const after = await store.requireWorkflow('paused')
    expect(after.version).toBe(takenOver.version)
    expect(after.record.owner?.runnerId).toBe(b.runner.runnerId)
    expect(await store.readStep('paused', 'rl.paused')).toBeUndefined()
    waiting[1]?.('b')
    await expect(runB).resolves.toBe('first+b')
  })

  it('a runner paused past its lease that nobody took over re-asserts its workflow and goes on', async () => {
    const shared = countingStorage()
    const paused = freezable(shared)
    const runtime = new Runtime(paused, { leaseTtlMs: 100, heartbeatMs: 30 })
    const { fn, waiting, started } = gated('rl.alone')
    const run = runtime.run(fn(), { workflowId: 'alone' })
    await vi.waitFor(() => expect(started(), 'the step to start').toBe(1), soon)
    paused.freeze()
    await sleep(250)
    paused.thaw()
    waiting[0]?.('done')
    await expect(run).resolves.toBe('done')
    // Submitted, re-asserted once after the gap (compare-and-swap), ended.
    expect(shared.puts.get(storeKeys.workflow('alone'))).toBe(3)
  })

  it('derives RUNNING and RESUMABLE from the runner record, and takes over a workflow of a runner whose record expired or is gone', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage, { leaseTtlMs: 150, heartbeatMs: 30 })
    const store = await runtime.store()
    // A workflow submitted here, then held by a runner on another machine (as it would have left it).
    await runtime.submit(lone(), { workflowId: 'remote' })
    const owner = await holdElsewhere(store, 'remote', 'remote0runner')
    // No runner record (the runner closed): gone.
    expect(runtime.deriveStatus((await store.requireWorkflow('remote')).record)).toBe('RESUMABLE')
    await store.writeRunner({
      v: 1,
      runner: owner,
      leaseExpiresAt: Date.now() + 60_000,
      updatedAt: Date.now(),
    })
    const held = await store.requireWorkflow('remote')
    expect(held.record.leaseExpiresAt).toBeGreaterThan(Date.now())
    expect(runtime.deriveStatus(held.record)).toBe('RUNNING')
    await expect(runtime.resume('remote')).rejects.toBeInstanceOf(WorkflowStillActiveError)
    // A filled-in expiry is never written back: the runner record stays the truth.
    await store.updateWorkflow(held, { ...held.record })
    const raw = await storage.get(storeKeys.workflow('remote'))
    expect(JSON.parse(Buffer.from(raw?.data ?? []).toString()).leaseExpiresAt).toBeUndefined()
    await store.writeRunner({ v: 1, runner: owner, leaseExpiresAt: Date.now() - 1, updatedAt: Date.now() })
    expect(runtime.deriveStatus((await store.requireWorkflow('remote')).record)).toBe('RESUMABLE')
    await expect(runtime.resume('remote')).resolves.toBe('resumed')
  })

  it('a corrupt runner record is a CorruptRecordError naming its key, not a runner taken for gone', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    const store = await runtime.store()
    await runtime.submit(lone(), { workflowId: 'garbled' })
    const owner = await holdElsewhere(store, 'garbled', 'garbled0runner')
    await storage.put(storeKeys.runner(owner.runnerId), Buffer.from('{"v":1,"runn'))
    await expect(store.readWorkflow('garbled')).rejects.toMatchObject({
      code: 'WF_CORRUPT_RECORD',
      key: storeKeys.runner(owner.runnerId),
    })
    // Deleting it, as the error says, makes the workflow RESUMABLE.
    await storage.delete(storeKeys.runner(owner.runnerId))
    expect(runtime.deriveStatus((await store.requireWorkflow('garbled')).record)).toBe('RESUMABLE')
  })

  it('a runtime that closes with no workflow deletes its runner record', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await runtime.run(step('rl.once', () => 1)(), { workflowId: 'once' })
    expect((await storage.list(storeKeys.runnersPrefix)).keys).toEqual([
      storeKeys.runner(runtime.runner.runnerId),
    ])
    await runtime.close()
    expect((await storage.list(storeKeys.runnersPrefix)).keys).toEqual([])
  })
})

describe('records of earlier versions, with a lease of their own', () => {
  async function oldRecord(runtime: Runtime, workflowId: string, leaseExpiresAt: number) {
    const store = await runtime.store()
    await runtime.submit(old(), { workflowId })
    const pending = await store.requireWorkflow(workflowId)
    // As an earlier version wrote it: the owner and its own expiry, no `lease` marker.
    const owner = { host: 'another-machine', pid: 1, runnerId: 'oldrunner' }
    return store.updateWorkflow(pending, {
      ...pending.record,
      status: 'RUNNING',
      owner,
      leaseExpiresAt,
      runs: 1,
    })
  }

  it('derive RUNNING and RESUMABLE from their own expiry, whatever a runner record of that id says', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    const store = await runtime.store()
    const live = await oldRecord(runtime, 'old-live', Date.now() + 60_000)
    expect(runtime.deriveStatus((await store.requireWorkflow('old-live')).record)).toBe('RUNNING')
    await store.writeRunner({
      v: 1,
      runner: live.record.owner as WorkflowRecord['owner'] & object,
      leaseExpiresAt: Date.now() - 1,
      updatedAt: Date.now(),
    })
    expect(runtime.deriveStatus((await store.requireWorkflow('old-live')).record)).toBe('RUNNING')
    await store.updateWorkflow(live, { ...live.record, leaseExpiresAt: Date.now() - 1 })
    expect(runtime.deriveStatus((await store.requireWorkflow('old-live')).record)).toBe('RESUMABLE')
  })

  it('are refused while their lease holds and taken over once it expired, then held under the runner lease', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    const store = await runtime.store()
    const held = await oldRecord(runtime, 'old', Date.now() + 60_000)
    await expect(runtime.resume('old')).rejects.toBeInstanceOf(WorkflowStillActiveError)
    await store.updateWorkflow(held, { ...held.record, leaseExpiresAt: Date.now() - 1 })
    const handle = await runtime.resumeAsync('old')
    const running = JSON.parse(
      Buffer.from((await storage.get(storeKeys.workflow('old')))?.data ?? []).toString(),
    )
    expect(running).toMatchObject({ status: 'RUNNING', lease: 'runner', owner: runtime.runner })
    expect(running.leaseExpiresAt).toBeUndefined()
    await expect(handle.result()).resolves.toBe('taken over')
    const { record } = await store.requireWorkflow('old')
    expect(record.status).toBe('SUCCESSFUL')
    expect(record.lease).toBeUndefined()
    expect(record.owner).toBeUndefined()
  })
})
