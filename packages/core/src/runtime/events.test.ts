// Events from outside, in one process: waitForEvent takes events sent with sendEvent, buffered
// before it waits, in order, each once; timeouts, idempotency keys, refused sends, start-with-event,
// incarnations, and a parked workflow woken by a send. Processes and S3 in events-processes tests.
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  ConditionFailedError,
  createWorker,
  EventRefusedError,
  InvalidOptionsError,
  MemoryStorage,
  Runtime,
  SerializationError,
  step,
  type Worker,
  WorkflowCanceledError,
  WorkflowNotFoundError,
  waitForEvent,
} from '../index.js'
import type { WorkflowRecord } from '../model/records.js'
import { appendEvent, markTaken } from '../store/events.js'
import { interceptStorage } from '../testing/intercept.js'

const runtimes: Runtime[] = []
const workers: Worker[] = []
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()))
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})

function runtime(storage: MemoryStorage, options: { parkAfterMs?: number; eventPollMs?: number } = {}) {
  const made = new Runtime(storage, {
    parkAfterMs: Number.POSITIVE_INFINITY,
    eventPollMs: 50,
    leaseTtlMs: 3000,
    ...options,
  })
  runtimes.push(made)
  return made
}

async function record(storage: MemoryStorage, workflowId: string): Promise<WorkflowRecord> {
  const found = await storage.get(`workflows/${workflowId}/workflow`)
  if (!found) throw new Error(`no record for ${workflowId}`)
  return JSON.parse(Buffer.from(found.data).toString('utf8')) as WorkflowRecord
}

let made = 0
/** A step that returns what it is given, under a new name for each test. */
function echo<T>() {
  return step(`events-test.echo-${made++}`, (value: T) => value)
}
function all<T>() {
  return step(`events-test.all-${made++}`, (...values: T[]) => values)
}

describe('waitForEvent', () => {
  it('refuses bad names and timeouts when the node is built', () => {
    expect(() => waitForEvent('')).toThrow(InvalidOptionsError)
    expect(() => waitForEvent('has space')).toThrow(InvalidOptionsError)
    expect(() => waitForEvent(42 as unknown as string)).toThrow(InvalidOptionsError)
    expect(() => waitForEvent('ok', { timeout: -5 })).toThrow(InvalidOptionsError)
    expect(() => waitForEvent('ok', { timeout: 'later' })).toThrow(InvalidOptionsError)
    expect(() => waitForEvent('ok', null as unknown as object)).toThrow(InvalidOptionsError)
  })

  it('takes an event sent before it waits, and one sent while it waits', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    let open!: () => void
    const opened = new Promise<void>((resolve) => {
      open = resolve
    })
    const slow = step(`events-test.slow-${made++}`, async () => {
      await opened
      return 'slow done'
    })
    const pair = step(`events-test.pair-${made++}`, (_: string, first: string, second: string) => [
      first,
      second,
    ])
    const handle = await rt.runAsync(
      pair(slow(), waitForEvent<string>('early'), waitForEvent<string>('late')),
      {
        workflowId: 'buffered',
      },
    )
    // Sent while nothing waits for it: it waits in the inbox.
    expect(await rt.sendEvent('buffered', 'early', 'e1')).toMatchObject({ seq: 1, duplicate: false })
    open()
    await new Promise((resolve) => setTimeout(resolve, 100))
    await rt.sendEvent('buffered', 'late', 'e2')
    expect(await handle.result()).toEqual(['e1', 'e2'])
  })

  it('hands events of one name out in order, each to one waiting step', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const n = 30
    const gather = all<number>()
    const handle = await rt.runAsync(
      gather(...Array.from({ length: n }, () => waitForEvent<number>('tick'))),
      {
        workflowId: 'fan-in',
      },
    )
    await Promise.all(Array.from({ length: n }, (_, i) => rt.sendEvent('fan-in', 'tick', i)))
    const got = await handle.result()
    expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i))
    // The order of acceptance decides: the first waiting step took the first event.
    const taken = (await storage.list('workflows/fan-in/taken/')).keys
    expect(taken).toHaveLength(n)
  })

  it('resolves to { received: false } at its timeout, and to the event when one comes first', async () => {
    const rt = runtime(new MemoryStorage())
    const id = echo<unknown>()
    const started = Date.now()
    expect(await rt.run(id(waitForEvent('never', { timeout: 200 })), { workflowId: 'timed-out' })).toEqual({
      received: false,
    })
    expect(Date.now() - started).toBeGreaterThanOrEqual(200)
    const handle = await rt.runAsync(id(waitForEvent('soon', { timeout: '10s' })), { workflowId: 'in-time' })
    await rt.sendEvent('in-time', 'soon', { ok: 1 })
    expect(await handle.result()).toEqual({ received: true, value: { ok: 1 } })
  })

  it('takes one event for sends with one idempotency key, however they race', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const two = all<unknown>()
    const handle = await rt.runAsync(two(waitForEvent('pay'), waitForEvent('pay', { timeout: 400 })), {
      workflowId: 'once',
    })
    const sends = await Promise.all(
      Array.from({ length: 5 }, () =>
        rt.sendEvent('once', 'pay', { amount: 5 }, { idempotencyKey: 'order-1' }),
      ),
    )
    expect(sends.filter((sent) => !sent.duplicate)).toHaveLength(1)
    expect(await handle.result()).toEqual([{ amount: 5 }, { received: false }])
    const again = await rt
      .sendEvent('once', 'pay', { amount: 5 }, { idempotencyKey: 'order-1' })
      .catch((e) => e)
    // Ended: refused whatever the key.
    expect(again).toBeInstanceOf(EventRefusedError)
  })

  it('refuses sends to ended and unknown workflows, writing nothing', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    await rt.run(echo<number>()(1), { workflowId: 'done' })
    const waiting = await rt.runAsync(waitForEvent('x'), { workflowId: 'canceled' })
    await rt.cancel('canceled')
    await expect(waiting.result()).rejects.toBeInstanceOf(WorkflowCanceledError)
    await expect(rt.sendEvent('done', 'x', 1)).rejects.toMatchObject({
      code: 'WF_EVENT_REFUSED',
      status: 'SUCCESSFUL',
    })
    await expect(rt.sendEvent('canceled', 'x', 1)).rejects.toMatchObject({ status: 'CANCELED' })
    await expect(rt.sendEvent('unknown', 'x', 1)).rejects.toBeInstanceOf(WorkflowNotFoundError)
    await expect(rt.sendEvent('done', 'bad name', 1)).rejects.toBeInstanceOf(InvalidOptionsError)
    await expect(rt.sendEvent('done', 'x', 1, { idempotencyKey: '' })).rejects.toBeInstanceOf(
      InvalidOptionsError,
    )
    await expect(rt.sendEvent('done', 'x', () => 1)).rejects.toBeInstanceOf(SerializationError)
    expect((await storage.list('workflows/done/events/')).keys).toEqual([])
    expect((await storage.list('workflows/unknown/')).keys).toEqual([])
  })

  it('starts the workflow with the event when the id is unknown (start), once however many senders race', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const greet = step(`events-test.greet-${made++}`, (hook: { from: string }) => `hello ${hook.from}`)
    const start = greet(waitForEvent<{ from: string }>('hook'))
    const sends = await Promise.all([
      rt.sendEvent('started', 'hook', { from: 'a' }, { start }),
      rt.sendEvent('started', 'hook', { from: 'b' }, { start }),
    ])
    expect(sends.filter((s) => s.started)).toHaveLength(1)
    expect((await record(storage, 'started')).status).toBe('PENDING')
    const output = await rt.resume<string>('started')
    // The first event accepted is the one taken.
    expect(output).toBe(sends[0]?.seq === 1 ? 'hello a' : 'hello b')
  })

  it('never takes an event sent to an earlier workflow under the same id', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const handle = await rt.runAsync(echo<unknown>()(waitForEvent('x', { timeout: 300 })), {
      workflowId: 'reborn',
    })
    const store = await rt.store()
    // A sender that read the record of the workflow deleted before this one, writing late.
    const payload = await store.storeOutput('reborn', JSON.stringify('stale'))
    await appendEvent(store, 'reborn', { name: 'x', payload, incarnation: 'an-earlier-one' }, 0)
    expect(await handle.result()).toEqual({ received: false })
  })

  it('finds an event written into a gap of the inbox, below events it read already', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const store = await rt.store()
    const two = all<string>()
    const handle = await rt.runAsync(two(waitForEvent<string>('x'), waitForEvent<string>('x')), {
      workflowId: 'gap',
    })
    const incarnation = (await record(storage, 'gap')).incarnation as string
    const send = async (value: string, afterSeq: number, to = incarnation) =>
      appendEvent(
        store,
        'gap',
        { name: 'x', payload: await store.storeOutput('gap', rt.codec.encode(value)), incarnation: to },
        afterSeq,
      )
    // This workflow's first event, and one a late sender to a deleted workflow wrote far ahead.
    expect((await send('first', 0)).seq).toBe(1)
    expect((await send('stale', 4, 'an-earlier-one')).seq).toBe(5)
    await new Promise((resolve) => setTimeout(resolve, 200))
    // A sender that knew only event 1 writes the next at 2: below 5, which the runner read.
    expect((await send('second', 1)).seq).toBe(2)
    expect(await handle.result()).toEqual(['first', 'second'])
  })

  it('lets four senders racing for one inbox lose less than one create an event (they back off, then list the tail)', async () => {
    // Each sender keeps its own tail, as separate processes do; every write takes a few ms, as on
    // S3, so that senders that lost together would retry together.
    let lost = 0
    const storage = interceptStorage(new MemoryStorage(), {
      put: async (next, key, data, condition) => {
        await new Promise((resolve) => setTimeout(resolve, 3))
        try {
          return await next(key, data, condition)
        } catch (error) {
          if (error instanceof ConditionFailedError && key.includes('/events/')) lost++
          throw error
        }
      },
    })
    const rt = new Runtime(storage)
    runtimes.push(rt)
    const store = await rt.store()
    await rt.submit(waitForEvent('x'), { workflowId: 'race' })
    const { record } = (await store.readWorkflow('race')) as { record: WorkflowRecord }
    const payload = await store.storeOutput('race', rt.codec.encode('v'))
    const seqs: number[] = []
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        let tail = 0
        for (let n = 0; n < 25; n++) {
          const event = { name: 'x', payload, incarnation: record.incarnation as string }
          tail = (await appendEvent(store, 'race', event, tail)).seq
          seqs.push(tail)
        }
      }),
    )
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    expect(lost).toBeLessThan(100)
  })

  it('takes after a crash the event an earlier run marked for it, not the first one', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage)
    const store = await rt.store()
    await rt.submit(echo<string>()(waitForEvent<string>('x')), { workflowId: 'marked' })
    for (const value of ['first', 'second']) await rt.sendEvent('marked', 'x', value)
    // What a run that crashed after marking event 2 for its step, before committing it, left.
    await markTaken(store, 'marked', 2, 'wf:receive')
    expect(await rt.resume('marked')).toBe('second')
  })

  it('stops waiting at once when the workflow is canceled', async () => {
    const rt = runtime(new MemoryStorage())
    const handle = await rt.runAsync(waitForEvent('x'), { workflowId: 'cancel-waiting' })
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(await rt.cancel('cancel-waiting')).toBe('CANCELED')
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowCanceledError)
  })
})

describe('a workflow parked on an event', () => {
  it('is parked PENDING with the events it waits for, and woken at once by a send from this process', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage, { parkAfterMs: 0 })
    const handle = await rt.runAsync(echo<string>()(waitForEvent<string>('go')), { workflowId: 'parked' })
    await vi.waitFor(async () => expect((await record(storage, 'parked')).status).toBe('PENDING'))
    const parked = await record(storage, 'parked')
    expect(parked.parkedEvents).toEqual(['go'])
    expect(parked.owner).toBeUndefined()
    const sentAt = Date.now()
    await rt.sendEvent('parked', 'go', 'now')
    expect(await handle.result()).toBe('now')
    expect(Date.now() - sentAt).toBeLessThan(5000)
  })

  it('is held for parkAfterMs of waiting, then parked', async () => {
    const storage = new MemoryStorage()
    const rt = runtime(storage, { parkAfterMs: 300 })
    const handle = await rt.runAsync(echo<string>()(waitForEvent<string>('go')), {
      workflowId: 'held-then-parked',
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await record(storage, 'held-then-parked')).status).toBe('RUNNING')
    await vi.waitFor(async () => expect((await record(storage, 'held-then-parked')).status).toBe('PENDING'))
    await rt.sendEvent('held-then-parked', 'go', 'late')
    expect(await handle.result()).toBe('late')
  })

  it('is woken by a worker after a send from another process', async () => {
    const storage = new MemoryStorage()
    const owner = runtime(storage, { parkAfterMs: 0 })
    const handle = await owner.runAsync(echo<number>()(waitForEvent<number>('go')), { workflowId: 'remote' })
    handle.result().catch(() => {})
    await vi.waitFor(async () => expect((await record(storage, 'remote')).status).toBe('PENDING'))
    await owner.close()
    const sender = runtime(storage)
    await sender.sendEvent('remote', 'go', 7)
    const outcomes: string[] = []
    workers.push(
      createWorker({
        storage,
        handleSignals: false,
        pollIntervalMs: 50,
        runtime: runtime(storage, { parkAfterMs: 0 }),
        onWorkflow: (event) => outcomes.push(event.outcome),
      }),
    )
    await vi.waitFor(() => expect(outcomes).toContain('SUCCESSFUL'), { timeout: 5000 })
    expect((await record(storage, 'remote')).status).toBe('SUCCESSFUL')
    expect((await storage.list('due/')).keys).toEqual([])
  })

  it('rejects an eventPollMs that is not a positive integer', () => {
    expect(() => new Runtime(new MemoryStorage(), { eventPollMs: 0 })).toThrow(InvalidOptionsError)
  })
})
