// What the API shows of waiting, on a real folder and on the real S3 gateway: a parked workflow's
// `waitingFor` (the events it waits for, or until when it sleeps) in its view and in the runs list,
// the events sent to it with the step that took each, and the schedules with their state, pause
// and resume behind the same guards as the other actions (token, origin, read-only).

import { WorkflowClient } from '@wf/client'
import {
  createWorker,
  Runtime,
  type Storage,
  schedule,
  sleep,
  step,
  unschedule,
  type WorkflowHandle,
  waitForEvent,
} from '@wf/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startUi, type UiServer } from './index.js'
import { type Reply, request, testedBackends } from './test-support/harness.js'

const pick = step('ui-wait.pick', (first: { n: number }, second: { n: number }) => first.n + second.n)
const label = step('ui-wait.label', (wokeAt: number) => `woke at ${wokeAt}`)
const beat = step('ui-wait.beat', (tick: string) => tick)

const tested = testedBackends('api-waiting.test.ts')

describe.each(tested)('waiting and schedules in the API on $name', (backend) => {
  let storage: Storage
  let cleanup: () => Promise<void>
  let runtime: Runtime
  let client: WorkflowClient
  let ui: UiServer
  let readOnly: UiServer
  const live: WorkflowHandle<unknown>[] = []
  // Unique per backend: schedule() declarations are process-wide.
  const nightlyId = `ui-nightly-${backend.name}`
  const everyId = `ui-every-${backend.name}`
  // Unique per backend too: core keeps the inbox tail it last saw per workflow id, process-wide.
  const approval = `approval-${backend.name}`
  const get = (path: string, server = ui): Promise<Reply> =>
    request(server.port, 'GET', path, { authorization: `Bearer ${server.token}` })
  const post = (path: string, server = ui, headers: Record<string, string> = {}): Promise<Reply> =>
    request(server.port, 'POST', path, {
      authorization: `Bearer ${server.token}`,
      origin: server.origin,
      ...headers,
    })

  beforeAll(async () => {
    ;({ storage, cleanup } = await backend.open())
    // parkAfterMs 0: a workflow waiting for an event or a sleep is parked at once.
    runtime = new Runtime(storage, { parkAfterMs: 0 })
    client = new WorkflowClient({ runtime })
    ui = await startUi({ client, port: 0 })
    readOnly = await startUi({ client, port: 0, readOnly: true })
  })

  afterAll(async () => {
    unschedule(nightlyId)
    unschedule(everyId)
    await ui?.close()
    await readOnly?.close()
    await runtime?.close()
    await Promise.allSettled(live.map((h) => h.result()))
    await cleanup?.()
  })

  it('shows which events a parked workflow waits for, and each event sent with the step that took it', async () => {
    const handle = await runtime.runAsync(pick(waitForEvent('first'), waitForEvent('second')), {
      workflowId: approval,
    })
    live.push(handle)
    await vi.waitFor(async () =>
      expect((await get(`/api/workflows/${approval}`)).json.workflow.waitingFor).toBeDefined(),
    )
    const parked = (await get(`/api/workflows/${approval}`)).json
    expect(parked.workflow.status).toBe('PENDING')
    expect(parked.workflow.waitingFor).toEqual({
      events: ['first', 'second'],
      steps: ['wf:receive', 'wf:receive_1'],
    })
    expect(parked.events).toEqual([])
    const list = (await get('/api/workflows?status=PENDING')).json.workflows
    expect(list).toEqual([
      expect.objectContaining({ workflowId: approval, waitingFor: parked.workflow.waitingFor }),
    ])

    await client.sendEvent(approval, 'first', { n: 1 })
    await vi.waitFor(
      async () =>
        expect((await get(`/api/workflows/${approval}`)).json.events[0]?.takenBy).toBe('wf:receive'),
      { timeout: 20_000 },
    )
    const half = (await get(`/api/workflows/${approval}`)).json
    expect(half.events).toEqual([
      { seq: 1, name: 'first', sentAt: expect.any(Number), takenBy: 'wf:receive' },
    ])
    await client.sendEvent(approval, 'second', { n: 41 })
    expect(await handle.result()).toBe(42)
    const done = (await get(`/api/workflows/${approval}`)).json
    expect(done.workflow.status).toBe('SUCCESSFUL')
    expect(done.workflow.waitingFor).toBeUndefined()
    expect(done.events.map((e: { name: string; takenBy: string }) => [e.name, e.takenBy])).toEqual([
      ['first', 'wf:receive'],
      ['second', 'wf:receive_1'],
    ])
  }, 60_000)

  it('shows until when a parked workflow sleeps, and in which step', async () => {
    const before = Date.now()
    const handle = await runtime.runAsync(label(sleep('1h')), { workflowId: 'sleeper' })
    live.push(handle)
    await vi.waitFor(async () =>
      expect((await get('/api/workflows/sleeper')).json.workflow.waitingFor).toBeDefined(),
    )
    const { workflow, events } = (await get('/api/workflows/sleeper')).json
    expect(workflow.status).toBe('PENDING')
    expect(workflow.waitingFor.steps).toEqual(['wf:sleep~wf:timer'])
    expect(workflow.waitingFor.until).toBeGreaterThanOrEqual(before + 3_600_000)
    expect(workflow.waitingFor.events).toBeUndefined()
    expect(events).toEqual([])
    expect(await client.cancel('sleeper')).toBe('CANCELED')
  })

  it('lists the schedules with their spec in words, state, last run, next tick and skipped ticks; pauses and resumes them', async () => {
    const nightly = schedule(nightlyId, { cron: '0 3 * * *', timezone: 'Europe/Berlin' }, (t) =>
      beat(t.toISOString()),
    )
    const every = schedule(everyId, { every: '1s' }, (t) => beat(t.toISOString()))
    // A worker stores a schedule's record at its first poll; then it is stopped (nothing more fires).
    const worker = createWorker({
      runtime: new Runtime(storage),
      schedules: [nightly, every],
      handleSignals: false,
      pollIntervalMs: 50,
    })
    await vi.waitFor(async () => expect((await get('/api/schedules')).json.schedules).toHaveLength(2))
    await worker.stop()
    const createdAt = Date.now()

    const reply = await get('/api/schedules')
    expect(reply.status).toBe(200)
    const byId = (r: Reply, id: string) =>
      r.json.schedules.find((s: { scheduleId: string }) => s.scheduleId === id)
    expect(byId(reply, nightlyId)).toMatchObject({
      spec: { cron: '0 3 * * *', timezone: 'Europe/Berlin' },
      description: 'At 03:00, Europe/Berlin',
      paused: false,
      overlap: 'skip',
      catchUp: 'latest',
      lastTick: expect.any(Number),
      nextTick: expect.any(Number),
      skipped: [],
    })
    expect(byId(reply, everyId)).toMatchObject({ description: 'Every second', paused: false })

    const paused = await post(`/api/schedules/${everyId}/pause`)
    expect(paused.status).toBe(200)
    expect(paused.json.schedule).toMatchObject({ scheduleId: everyId, paused: true })
    expect(byId(await get('/api/schedules'), everyId).paused).toBe(true)
    // Resumed a tick later: the ticks of the pause are recorded skipped, not caught up.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, createdAt + 1100 - Date.now())))
    const resumed = await post(`/api/schedules/${everyId}/resume`)
    expect(resumed.status).toBe(200)
    expect(resumed.json.schedule.paused).toBe(false)
    expect(byId(await get('/api/schedules'), everyId).skipped).toEqual([
      expect.objectContaining({ reason: 'paused', tick: expect.any(Number) }),
    ])
  })

  it('refuses pause and resume on a read-only server, from another origin, without the token, and for an unknown schedule', async () => {
    for (const action of ['pause', 'resume']) {
      const refused = await post(`/api/schedules/${nightlyId}/${action}`, readOnly)
      expect(refused.status, action).toBe(403)
      expect(refused.json.error.code).toBe('WF_UI_READ_ONLY')
    }
    expect((await get('/api/schedules', readOnly)).status).toBe(200)
    const crossOrigin = await post(`/api/schedules/${nightlyId}/pause`, ui, { origin: 'http://evil.example' })
    expect(crossOrigin.status).toBe(403)
    expect(crossOrigin.json.error.code).toBe('WF_UI_CROSS_ORIGIN')
    const noToken = await request(ui.port, 'POST', `/api/schedules/${nightlyId}/pause`, { origin: ui.origin })
    expect(noToken.status).toBe(401)
    expect((await get('/api/schedules')).json.schedules.every((s: { paused: boolean }) => !s.paused)).toBe(
      true,
    )
    const unknown = await post('/api/schedules/nope/pause')
    expect(unknown.status).toBe(404)
    expect(unknown.json.error.code).toBe('WF_SCHEDULE_NOT_FOUND')
    const wrongMethod = await get(`/api/schedules/${nightlyId}/pause`)
    expect(wrongMethod.status).toBe(405)
    expect(wrongMethod.headers.allow).toBe('POST')
    expect((await post('/api/schedules/a%2Fb/pause')).status).toBe(400)
  })
  it('backfills the ticks of a range as PENDING runs (once), deletes a schedule, and refuses both read-only or from another origin', async () => {
    const send = (method: string, path: string, server = ui, body?: unknown, origin = server.origin) =>
      request(
        server.port,
        method,
        path,
        { authorization: `Bearer ${server.token}`, origin, 'content-type': 'application/json' },
        '127.0.0.1',
        body === undefined ? undefined : JSON.stringify(body),
      )
    const to = Date.now()
    const range = { from: new Date(to - 3 * 86_400_000).toISOString(), to }
    for (const [method, path, body] of [
      ['POST', `/api/schedules/${nightlyId}/backfill`, range],
      ['DELETE', `/api/schedules/${everyId}`, undefined],
    ] as const) {
      const refused = await send(method, path, readOnly, body)
      expect(refused.status, path).toBe(403)
      expect(refused.json.error.code).toBe('WF_UI_READ_ONLY')
      const crossOrigin = await send(method, path, ui, body, 'http://evil.example')
      expect(crossOrigin.status, path).toBe(403)
    }
    const filled = await send('POST', `/api/schedules/${nightlyId}/backfill`, ui, range)
    expect(filled.status).toBe(202)
    // 03:00 in Berlin, three times in three days.
    expect(filled.json.created).toHaveLength(3)
    expect(filled.json.existing).toEqual([])
    const pending = (await get('/api/workflows?status=PENDING')).json.workflows.map(
      (w: { workflowId: string }) => w.workflowId,
    )
    for (const id of filled.json.created) expect(pending).toContain(id)
    const again = await send('POST', `/api/schedules/${nightlyId}/backfill`, ui, range)
    expect(again.json).toMatchObject({ created: [], existing: filled.json.created })
    const bad = await send('POST', `/api/schedules/${nightlyId}/backfill`, ui, { from: 'yesterday', to })
    expect(bad.status).toBe(400)
    expect(bad.json.error.message).toMatch(/from must be/)
    for (const id of filled.json.created) await client.cancel(id)

    const deleted = await send('DELETE', `/api/schedules/${everyId}`)
    expect(deleted.status).toBe(200)
    expect(deleted.json).toEqual({ scheduleId: everyId, deleted: true })
    const ids = (await get('/api/schedules')).json.schedules.map((s: { scheduleId: string }) => s.scheduleId)
    expect(ids).toEqual([nightlyId])
  })
})
