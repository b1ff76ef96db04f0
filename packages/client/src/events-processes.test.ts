// Events across real processes, on a real folder and on the real S3 gateway (when WF_S3_ENDPOINT
// is set): a runner, a worker and senders are child processes (fixtures/events-child.mjs, on the
// built packages), killed with SIGKILL where a crash is the point. What the workflow took is read
// back from storage: the step records, the taken markers and the inbox.
// Over 400 lines: nine process scenarios on two backends, each with its children and read-back.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Runtime, type Storage, step, storeKeys, type WorkflowStore } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WorkflowClient } from './client.js'
import { type Child, spawnChild } from './test-support/child-process.js'
import { fixtures } from './test-support/cli-run.js'
import { folderStorage } from './test-support/harness.js'
import { createS3Bucket, importStorageS3, s3, warnIfS3Skipped } from './test-support/places.js'
import { atScale } from './test-support/scale.js'

const CHILD = join(fixtures, 'events-child.mjs')
const s3Credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }

type Where =
  | { kind: 'folder'; dir: string }
  | {
      kind: 's3'
      bucket: string
      prefix: string
      endpoint: string
      credentials: { accessKeyId: string; secretAccessKey: string }
    }

const children: Child[] = []

function child(where: Where, job: Record<string, unknown>): Child {
  const made = spawnChild([CHILD, JSON.stringify(job)], { env: { WF_TEST_STORAGE: JSON.stringify(where) } })
  children.push(made)
  return made
}

async function kill(c: Child): Promise<void> {
  c.proc.kill('SIGKILL')
  await c.exited
}

/** What a `send` child printed: the events it sent and the sends refused. */
async function sends(
  c: Child,
  timeoutMs?: number,
): Promise<{
  sent: { seq: number; n: number; duplicate: boolean; started: boolean }[]
  refused: { code: string; name: string }[]
}> {
  await c.line('done', timeoutMs)
  expect((await c.exited).code, c.err()).toBe(0)
  const parse = (prefix: string) =>
    c
      .lines()
      .filter((l) => l.startsWith(prefix))
      .map((l) => JSON.parse(l.slice(prefix.length)))
  return { sent: parse('SENT '), refused: parse('REFUSED ') }
}

const resultOf = async (c: Child, timeoutMs = 50_000): Promise<unknown> =>
  JSON.parse((await c.line('RESULT ', timeoutMs)).slice(7))

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

interface Backend {
  name: string
  /** Events per sender in the fan-out (four senders). */
  perSender: number
  /** The same with the runner killed (one send at a time per sender: slower). */
  perSenderKilled: number
  /** The time the fan-out tests are given (S3 accepts events into one workflow at tens a second). */
  fanTimeoutMs: number
  open(): Promise<{ where: () => Where; storage: (where: Where) => Promise<Storage>; close(): Promise<void> }>
}

const backends: Backend[] = [
  {
    name: 'folder',
    perSender: 250,
    perSenderKilled: 250,
    fanTimeoutMs: 60_000,
    open: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'wf-events-processes-'))
      return {
        where: () => ({ kind: 'folder', dir }),
        storage: (where) => folderStorage((where as { dir: string }).dir),
        close: () => rm(dir, { recursive: true, force: true, maxRetries: 3 }),
      }
    },
  },
]
if (s3.available) {
  const endpoint = s3.endpoint as string
  backends.push({
    name: 'S3',
    perSender: atScale(250, 50),
    perSenderKilled: atScale(250, 20),
    fanTimeoutMs: 600_000,
    open: async () => {
      const { bucket, remove } = await createS3Bucket('wf-events')
      const { S3Storage } = await importStorageS3()
      let prefix = 0
      return {
        // A prefix per test: each test sees only its own workflows.
        where: () => ({
          kind: 's3',
          bucket,
          prefix: `t${prefix++}/`,
          endpoint,
          credentials: s3Credentials,
        }),
        storage: async (where) => new S3Storage(where as Extract<Where, { kind: 's3' }>),
        close: remove,
      }
    },
  })
}
warnIfS3Skipped('events-processes.test.ts')

const done = step('events-processes.done', () => 'done')
const fails = step(
  'events-processes.fails',
  (): string => {
    throw new Error('fails on purpose')
  },
  { maxRetries: 0 },
)

describe.each(backends)('events across processes on $name', (backend) => {
  let opened: Awaited<ReturnType<Backend['open']>>
  beforeAll(async () => {
    opened = await backend.open()
  })
  afterAll(async () => {
    await Promise.all(children.splice(0).map(kill))
    await opened.close()
  })

  /** A place of the test's own and a client, runtime and store on it. */
  async function place(): Promise<{
    where: Where
    client: WorkflowClient
    runtime: Runtime
    store: WorkflowStore
    close(): Promise<void>
  }> {
    const where = opened.where()
    const storage = await opened.storage(where)
    const runtime = new Runtime(storage, { parkAfterMs: Number.POSITIVE_INFINITY })
    const client = new WorkflowClient({ runtime })
    return {
      where,
      client,
      runtime,
      store: await runtime.store(),
      close: async () => {
        await runtime.close()
        await storage.close?.()
      },
    }
  }

  it('delivers an event sent before the waiter exists, one sent while it waits, and one sent while it is parked with no process', {
    timeout: 60_000,
  }, async () => {
    const p = await place()
    try {
      // Before: the workflow is stored PENDING, nothing runs it; a worker started later takes the event.
      expect(
        (await child(p.where, { cmd: 'submit', workflowId: 'before', graph: { kind: 'one' } }).exited).code,
      ).toBe(0)
      const early = await sends(
        child(p.where, { cmd: 'send', workflowId: 'before', name: 'go', count: 1, from: 'early' }),
      )
      expect(early.sent).toMatchObject([{ seq: 1, duplicate: false }])

      // While it waits: a runner holds it (never parks); the send comes from another process.
      const runner = child(p.where, { cmd: 'run', workflowId: 'held', graph: { kind: 'one' } })
      await runner.line('started')
      await until(async () => (await p.client.getStatus('held')) === 'RUNNING', 10_000, 'the runner')
      await sends(child(p.where, { cmd: 'send', workflowId: 'held', name: 'go', count: 1, from: 'late' }))
      expect(await resultOf(runner)).toMatchObject({ got: { from: 'late', n: 0 } })

      // Parked: the runner parks at once and is killed; a send writes a due entry for now.
      const parker = child(p.where, {
        cmd: 'run',
        workflowId: 'parked',
        graph: { kind: 'one' },
        parkAfterMs: 0,
      })
      await until(
        async () => (await p.store.readWorkflow('parked'))?.record.parkedEvents !== undefined,
        20_000,
        'the workflow to park',
      )
      expect((await p.client.getMetadata('parked')).waitingFor).toMatchObject({ events: ['go'] })
      await kill(parker)
      expect(await p.client.getStatus('parked')).toBe('PENDING')
      const beforeSend = Date.now()
      await sends(child(p.where, { cmd: 'send', workflowId: 'parked', name: 'go', count: 1, from: 'parked' }))
      const due = (await p.store.listAllKeys(storeKeys.duePrefix)).filter((k) => k.endsWith('/parked'))
      expect(
        due.some(
          (k) => Number(k.split('/')[1]) >= beforeSend - 1000 && Number(k.split('/')[1]) <= Date.now(),
        ),
      ).toBe(true)

      const worker = child(p.where, { cmd: 'worker' })
      await worker.line('ready')
      await until(
        async () =>
          (await p.client.getStatus('before')) === 'SUCCESSFUL' &&
          (await p.client.getStatus('parked')) === 'SUCCESSFUL',
        30_000,
        'the worker to finish both',
      )
      expect(await p.client.getOutput('before')).toMatchObject({ got: { from: 'early', n: 0 } })
      expect(await p.client.getOutput('parked')).toMatchObject({ got: { from: 'parked', n: 0 } })
      for (const id of ['before', 'held', 'parked']) {
        expect(await p.client.listEvents(id)).toEqual([
          expect.objectContaining({ seq: 1, name: 'go', takenBy: 'wf:receive' }),
        ])
      }
      await kill(worker)
    } finally {
      await p.close()
    }
  })

  it('commits exactly one outcome when the event arrives right at the deadline: the event, or the timeout with the event left untaken', {
    timeout: 60_000,
  }, async () => {
    const p = await place()
    const TIMEOUT = 2500
    // Around the deadline, with two a second from it whose outcome is known.
    const offsets = [-1000, -20, -5, 0, 5, 20, 1000]
    try {
      const runs = offsets.map((offset, i) => ({
        offset,
        id: `race-${i}`,
        runner: child(p.where, {
          cmd: 'run',
          workflowId: `race-${i}`,
          graph: { kind: 'timeout', timeoutMs: TIMEOUT },
          eventPollMs: 1000,
        }),
      }))
      // Each sender waits in its own process for the deadline its workflow committed, then sends.
      const senders = runs.map((run) =>
        child(p.where, {
          cmd: 'send',
          workflowId: run.id,
          name: 'go',
          count: 1,
          from: run.offset,
          deadlineOffset: run.offset,
        }),
      )
      const outcomes: string[] = []
      for (const [i, run] of runs.entries()) {
        const result = (await resultOf(run.runner)) as { got: { received: boolean; value?: unknown } }
        const sent = await sends(senders[i] as Child)
        const events = await p.client.listEvents(run.id)
        const stepIds = await p.store.listStepIds(run.id)
        const receive = stepIds.find((s) => s.endsWith('wf:receive'))
        expect(receive, stepIds.join()).toBeDefined()
        if (result.got.received) {
          outcomes.push('event')
          expect(result.got.value).toEqual({ from: run.offset, n: 0 })
          expect(events).toEqual([expect.objectContaining({ seq: 1, takenBy: receive })])
        } else {
          outcomes.push(sent.sent.length === 1 ? 'timeout, event left' : 'timeout, send refused')
          // The event was either refused (the workflow had ended) or left in the inbox untaken.
          if (sent.sent.length === 1) expect(events).toEqual([expect.objectContaining({ seq: 1 })])
          else expect(sent.refused).toEqual([expect.objectContaining({ code: 'WF_EVENT_REFUSED' })])
          for (const e of events) expect(e.takenBy).toBeUndefined()
        }
      }
      console.log(
        `events-processes (${backend.name}): at the deadline ${offsets.map((o, i) => `${o} ms: ${outcomes[i]}`).join('; ')}`,
      )
      expect(outcomes[0]).toBe('event')
      // A second after the deadline: refused, or (a slow gateway has not stored the outcome yet) left.
      expect(outcomes[outcomes.length - 1]).toMatch(/^timeout/)
    } finally {
      await p.close()
    }
  })

  /** Four senders of `count` events each (`concurrency` sends at a time); resolves with every payload sent, as "from:n". */
  async function fourSenders(
    where: Where,
    workflowId: string,
    count = backend.perSender,
    concurrency = 2,
  ): Promise<string[]> {
    const senders = [0, 1, 2, 3].map((from) =>
      child(where, { cmd: 'send', workflowId, name: 'e', count, from, concurrency }),
    )
    const payloads: string[] = []
    for (const [from, s] of senders.entries()) {
      const { sent, refused } = await sends(s, backend.fanTimeoutMs - 10_000)
      expect(refused).toEqual([])
      for (const e of sent) payloads.push(`${from}:${e.n}`)
    }
    return payloads
  }

  /** Checks that workflow `workflowId` took each of `payloads` exactly once, each by its own step. */
  async function takenOnce(p: Awaited<ReturnType<typeof place>>, workflowId: string, payloads: string[]) {
    const output = (await p.client.getOutput(workflowId)) as { from: number; n: number }[]
    const got = output.map((e) => `${e.from}:${e.n}`)
    expect(new Set(got).size).toBe(got.length)
    expect([...got].sort()).toEqual([...payloads].sort())
    const events = await p.client.listEvents(workflowId)
    expect(events).toHaveLength(payloads.length)
    const takers = events.map((e) => e.takenBy)
    expect(takers.every((t) => t?.startsWith('wf:receive'))).toBe(true)
    expect(new Set(takers).size).toBe(payloads.length)
  }

  it('takes every event of four concurrent senders exactly once into a fan-out of waiters', {
    timeout: backend.fanTimeoutMs,
  }, async () => {
    const p = await place()
    const total = 4 * backend.perSender
    try {
      const runner = child(p.where, { cmd: 'run', workflowId: 'fan', graph: { kind: 'fan', n: total } })
      await runner.line('started')
      const started = Date.now()
      const payloads = await fourSenders(p.where, 'fan')
      const sentMs = Date.now() - started
      await resultOf(runner, backend.fanTimeoutMs - 10_000)
      console.log(
        `events-processes (${backend.name}): ${total} events from 4 senders in ${sentMs} ms, all taken ${Date.now() - started} ms after the first send began`,
      )
      expect(payloads).toHaveLength(total)
      await takenOnce(p, 'fan', payloads)
    } finally {
      await p.close()
    }
  })

  it('takes every event exactly once when the waiting runner is SIGKILLed at random moments and workers resume it', {
    timeout: backend.fanTimeoutMs,
  }, async () => {
    const p = await place()
    const total = 4 * backend.perSenderKilled
    try {
      const runner = child(p.where, {
        cmd: 'run',
        workflowId: 'fan-killed',
        graph: { kind: 'fan', n: total },
      })
      await runner.line('started')
      // One send at a time per sender: the sends last long enough for the kills to fall among them.
      const sending = fourSenders(p.where, 'fan-killed', backend.perSenderKilled, 1)
      // Kill whoever holds it three times while the events come in (once a quarter, a half and
      // three quarters of them are taken, then at a random moment within 150 ms); a worker
      // process resumes it each time.
      let holder = runner
      let kills = 0
      const taken = async () => (await p.store.listAllKeys(storeKeys.takenPrefix('fan-killed'))).length
      for (const share of [0.25, 0.5, 0.75]) {
        await until(
          async () => (await taken()) >= share * total,
          backend.fanTimeoutMs / 3,
          `${share * total} events to be taken`,
        )
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 150))
        if ((await p.client.getStatus('fan-killed')) === 'SUCCESSFUL') break
        await kill(holder)
        kills++
        holder = child(p.where, { cmd: 'worker' })
        await holder.line('ready')
      }
      const payloads = await sending
      await until(
        async () => (await p.client.getStatus('fan-killed')) === 'SUCCESSFUL',
        backend.fanTimeoutMs / 2,
        'the workflow to end',
      )
      console.log(
        `events-processes (${backend.name}): the runner of ${total} waiters was killed ${kills} times`,
      )
      // At least one kill lands among the events: on a fast machine the workers that resume it may
      // take the rest before the next share is reached (then the workflow has ended).
      expect(kills).toBeGreaterThanOrEqual(1)
      await takenOnce(p, 'fan-killed', payloads)
      await kill(holder)
    } finally {
      await p.close()
    }
  })

  it('delivers every event to a runner holding a reused id, whatever the senders sent to the workflow deleted before', {
    timeout: 30_000,
  }, async () => {
    const p = await place()
    try {
      // This process sends ten events to a first workflow under the id, which is then deleted.
      await expect(p.runtime.run(fails(), { workflowId: 'reused' })).rejects.toThrow('fails on purpose')
      for (let n = 0; n < 10; n++) await p.runtime.sendEvent('reused', 'e', { from: 'old', n })
      await p.client.delete('reused')

      // A new workflow under the id waits for three events, held by a runner process.
      const runner = child(p.where, { cmd: 'run', workflowId: 'reused', graph: { kind: 'fan', n: 3 } })
      await runner.line('started')
      const other = child(p.where, {
        cmd: 'send',
        workflowId: 'reused',
        name: 'e',
        count: 1,
        from: 'other',
        again: true,
      })
      await other.line('waiting')
      await p.runtime.sendEvent('reused', 'e', { from: 'this', n: 0 })
      await until(
        async () => (await p.store.listAllKeys(storeKeys.takenPrefix('reused'))).length === 2,
        10_000,
        'two events taken',
      )
      other.proc.stdin.write('next\n')
      expect((await sends(other)).sent).toHaveLength(2)
      // The third event is in the inbox: the runner, which lists it every 100 ms, takes it at once.
      const inbox = (await p.store.listAllKeys(storeKeys.eventsPrefix('reused'))).map((k) =>
        k.split('/').pop(),
      )
      expect(await resultOf(runner, 5000).catch(() => `never ended; the inbox: ${inbox.join(', ')}`)).toEqual(
        [
          { from: 'other', n: 0 },
          { from: 'this', n: 0 },
          { from: 'other', n: 1 },
        ],
      )
    } finally {
      await p.close()
    }
  })

  it('takes an idempotent send to a reused id even when a late sender to the deleted workflow wrote the same key', {
    timeout: 30_000,
  }, async () => {
    const p = await place()
    try {
      // A send with key pay-1 to a first workflow under the id: its key record and its event.
      await expect(p.runtime.run(fails(), { workflowId: 'late' })).rejects.toThrow('fails on purpose')
      await p.runtime.sendEvent('late', 'go', { from: 'old', n: 0 }, { idempotencyKey: 'pay-1' })
      const written = []
      for (const prefix of [storeKeys.eventsPrefix('late'), 'workflows/late/event-keys/']) {
        for (const key of await p.store.listAllKeys(prefix)) {
          written.push({ key, data: (await p.store.storage.get(key))?.data as Uint8Array })
        }
      }
      expect(written).toHaveLength(2)
      await p.client.delete('late')

      // A new workflow under the id waits for 'go'; the first one's sender, racing the delete
      // (it read the old record before), lands its two writes only now.
      const runner = child(p.where, { cmd: 'run', workflowId: 'late', graph: { kind: 'one' } })
      await runner.line('started')
      for (const { key, data } of written) await p.store.storage.put(key, data)

      // The new workflow's own send with that key is a new event, and the runner takes it.
      const sent = await sends(
        child(p.where, { cmd: 'send', workflowId: 'late', name: 'go', count: 1, from: 'new', key: 'pay-1' }),
      )
      expect(sent.sent).toMatchObject([{ duplicate: false }])
      expect(await resultOf(runner, 5000).catch(() => 'never ended')).toMatchObject({
        got: { from: 'new', n: 0 },
      })
    } finally {
      await p.close()
    }
  })

  it('starts an unknown workflow once when two processes send to it with start at once, and it takes both events', {
    timeout: 30_000,
  }, async () => {
    const p = await place()
    try {
      const at = Date.now() + 1500
      const racing = ['a', 'b'].map((from) =>
        child(p.where, {
          cmd: 'send',
          workflowId: 'webhook',
          name: 'e',
          count: 1,
          from,
          at,
          start: { kind: 'fan', n: 2 },
        }),
      )
      const results = await Promise.all(racing.map((c) => sends(c)))
      const sent = results.flatMap((r) => r.sent)
      expect(sent.map((e) => e.seq).sort()).toEqual([1, 2])
      expect(sent.filter((e) => e.started)).toHaveLength(1)
      const worker = child(p.where, { cmd: 'worker' })
      await until(
        async () => (await p.client.getStatus('webhook')) === 'SUCCESSFUL',
        20_000,
        'the worker to run it',
      )
      const output = (await p.client.getOutput('webhook')) as { from: string }[]
      expect(output.map((e) => e.from).sort()).toEqual(['a', 'b'])
      await kill(worker)
    } finally {
      await p.close()
    }
  })

  it('keeps one event for one idempotency key sent from two processes at once', {
    timeout: 30_000,
  }, async () => {
    const p = await place()
    try {
      await p.runtime.submit(done(), { workflowId: 'keyed' })
      // Submitted, not run (no worker here): PENDING, and sends are accepted.
      const at = Date.now() + 1500
      const [a, b] = await Promise.all(
        ['a', 'b'].map((from) =>
          sends(
            child(p.where, { cmd: 'send', workflowId: 'keyed', name: 'go', count: 1, from, key: 'k-1', at }),
          ),
        ),
      )
      const all = [...(a?.sent ?? []), ...(b?.sent ?? [])]
      expect(all).toHaveLength(2)
      expect(all.filter((e) => !e.duplicate)).toHaveLength(1)
      expect(await p.client.listEvents('keyed')).toEqual([expect.objectContaining({ name: 'go' })])
    } finally {
      await p.close()
    }
  })

  it('refuses sends to SUCCESSFUL, CANCELED and unknown workflows with typed errors, writing nothing', {
    timeout: 30_000,
  }, async () => {
    const p = await place()
    try {
      await p.runtime.run(done(), { workflowId: 'ended' })
      await p.runtime.submit(done(), { workflowId: 'canceled' })
      expect(await p.client.cancel('canceled')).toBe('CANCELED')
      const refused = await Promise.all(
        ['ended', 'canceled', 'nobody'].map((workflowId) =>
          sends(child(p.where, { cmd: 'send', workflowId, name: 'go', count: 1, from: 'x', key: 'k' })),
        ),
      )
      expect(refused.map((r) => r.sent)).toEqual([[], [], []])
      expect(refused.map((r) => r.refused)).toEqual([
        [{ n: 0, name: 'EventRefusedError', code: 'WF_EVENT_REFUSED' }],
        [{ n: 0, name: 'EventRefusedError', code: 'WF_EVENT_REFUSED' }],
        [{ n: 0, name: 'WorkflowNotFoundError', code: 'WF_NOT_FOUND' }],
      ])
      for (const id of ['ended', 'canceled', 'nobody']) {
        expect(await p.store.listAllKeys(storeKeys.eventsPrefix(id))).toEqual([])
        expect(await p.store.listAllKeys(`workflows/${id}/event-keys/`)).toEqual([])
      }
      expect(await p.store.listAllKeys('workflows/nobody/')).toEqual([])
    } finally {
      await p.close()
    }
  })
})
