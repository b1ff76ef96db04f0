// The actions that landed with fork, events and schedules, on a real folder and on the real S3
// gateway: fork from a chosen step (run here with the step modules imported, else PENDING for a
// worker), send an event with a JSON payload (idempotent with a key), trigger a declared schedule;
// each behind the same token, origin and read-only guards as cancel.

import { WorkflowClient } from '@wf/client'
import { Runtime, type Storage, schedule, step, unschedule, waitForEvent } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startUi, type UiServer } from './index.js'
import { type Reply, request, testedBackends } from './test-support/harness.js'
import { add, double, flags, flaky } from './test-support/steps.mjs'

const stepsModule = new URL('./test-support/steps.mjs', import.meta.url).href
const echo = step('ui-act.echo', (payload: unknown) => payload)
const beat = step('ui-act.beat', (tick: string) => tick)

describe.each(testedBackends('api-actions.test.ts'))(
  'fork, events and schedule triggers in the API on $name',
  (backend) => {
    let storage: Storage
    let cleanup: () => Promise<void>
    let runtime: Runtime
    let client: WorkflowClient
    let ui: UiServer
    let workersOnly: UiServer
    let readOnly: UiServer
    // Unique per backend: schedule() declarations are process-wide, and so are inbox tails per id.
    const hourly = `ui-act-hourly-${backend.name}`
    const waiting = `ui-act-waiting-${backend.name}`
    const get = (path: string, server = ui): Promise<Reply> =>
      request(server.port, 'GET', path, { authorization: `Bearer ${server.token}` })
    const post = (
      path: string,
      body?: string,
      server = ui,
      headers: Record<string, string> = {},
    ): Promise<Reply> =>
      request(
        server.port,
        'POST',
        path,
        { authorization: `Bearer ${server.token}`, origin: server.origin, ...headers },
        '127.0.0.1',
        body,
      )
    const statusOf = async (id: string) => (await get(`/api/workflows/${id}`)).json.workflow?.status

    beforeAll(async () => {
      ;({ storage, cleanup } = await backend.open())
      runtime = new Runtime(storage, { parkAfterMs: 0 })
      client = new WorkflowClient({ runtime })
      flags.fail = true
      await runtime.run(double(add(1)), { workflowId: 'ok-1', metadata: { team: 'data' } })
      await expect(runtime.run(double(flaky(5)), { workflowId: 'failed-1' })).rejects.toThrow(
        'flaky failed on 5',
      )
      schedule(hourly, { every: '1h' }, (t) => beat(t.toISOString()))
      ui = await startUi({ client, port: 0, importModules: [stepsModule] })
      workersOnly = await startUi({ client, port: 0 })
      readOnly = await startUi({ client, port: 0, readOnly: true })
    })

    afterAll(async () => {
      unschedule(hourly)
      flags.fail = true
      await ui?.close()
      await workersOnly?.close()
      await readOnly?.close()
      await cleanup?.()
    })

    it('forks a failed workflow from its failed step and runs the fork here, with the step modules imported', async () => {
      flags.fail = false
      const reply = await post('/api/workflows/failed-1/fork')
      expect(reply.status).toBe(202)
      expect(reply.json).toMatchObject({ workflowId: 'failed-1-fork-1', status: 'RUNNING', kept: [] })
      expect(reply.json.forkedFrom.workflowId).toBe('failed-1')
      await vi.waitFor(async () => expect(await statusOf('failed-1-fork-1')).toBe('SUCCESSFUL'))
      expect(await client.getOutput('failed-1-fork-1')).toBe(10)
      expect(await statusOf('failed-1')).toBe('FAILED') // the original is kept as it was
    })

    it('forks from a chosen step under a chosen id, keeping what does not depend on it', async () => {
      const graph = (await get('/api/workflows/ok-1')).json.graph
      const byName = (name: string) => graph.steps.find((s: { name: string }) => s.name === name).stepId
      const reply = await post(
        '/api/workflows/ok-1/fork',
        JSON.stringify({ fromStep: byName('ui-double'), workflowId: 'ok-1-again' }),
      )
      expect(reply.status).toBe(202)
      expect(reply.json).toMatchObject({ workflowId: 'ok-1-again', kept: [byName('ui-add')] })
      await vi.waitFor(async () => expect(await statusOf('ok-1-again')).toBe('SUCCESSFUL'))
      expect(await client.getOutput('ok-1-again')).toBe(4)
      expect((await get('/api/workflows/ok-1-again')).json.workflow.userMetadata).toEqual({ team: 'data' })
    })

    it('stores a fork PENDING for a worker when the server has not imported the step modules', async () => {
      const reply = await post(
        '/api/workflows/ok-1/fork',
        '{"fromStep":"ui-add","workflowId":"ok-1-later"}',
        workersOnly,
      )
      expect(reply.status).toBe(202)
      expect(reply.json).toMatchObject({ workflowId: 'ok-1-later', status: 'PENDING' })
      expect(await statusOf('ok-1-later')).toBe('PENDING')
    })

    it('refuses a fork from an unknown step (404), under a taken id (409), and a body that is not an object of strings (400)', async () => {
      const unknown = await post('/api/workflows/ok-1/fork', '{"fromStep":"nope"}')
      expect(unknown.status).toBe(404)
      expect(unknown.json.error.code).toBe('WF_STEP_NOT_FOUND')
      const taken = await post('/api/workflows/ok-1/fork', '{"fromStep":"ui-add","workflowId":"failed-1"}')
      expect(taken.status).toBe(409)
      expect(taken.json.error.code).toBe('WF_ALREADY_EXISTS')
      for (const body of ['not json', '[1]', '{"fromStep":3}']) {
        const bad = await post('/api/workflows/ok-1/fork', body)
        expect(bad.status, body).toBe(400)
        expect(bad.json.error.code).toBe('WF_UI_BAD_REQUEST')
      }
    })

    it('sends an event with its JSON body as the payload: the waiting step takes it, a resend with the same key is a duplicate', async () => {
      const handle = await runtime.runAsync(echo(waitForEvent('approved')), { workflowId: waiting })
      const reply = await post(`/api/workflows/${waiting}/events/approved`, '{"by":"ana","ok":true}', ui, {
        'idempotency-key': 'k-1',
      })
      expect(reply.status).toBe(202)
      expect(reply.json).toMatchObject({ workflowId: waiting, name: 'approved', duplicate: false })
      const again = await post(`/api/workflows/${waiting}/events/approved?idempotencyKey=k-1`, '{"by":"bo"}')
      expect(again.json).toMatchObject({ duplicate: true, seq: reply.json.seq })
      // The workflow was parked: a worker, here the runtime's own resume, takes the event.
      await vi.waitFor(async () => {
        if ((await statusOf(waiting)) !== 'SUCCESSFUL') await runtime.resume(waiting).catch(() => {})
        expect(await statusOf(waiting)).toBe('SUCCESSFUL')
      })
      await handle.result().catch(() => {})
      expect(await client.getOutput(waiting)).toEqual({ by: 'ana', ok: true })
      const events = (await get(`/api/workflows/${waiting}`)).json.events
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({ name: 'approved', takenBy: expect.any(String) })
    })

    it('refuses an event to an ended workflow (409), to an unknown one (404), and a body that is not JSON (400)', async () => {
      const ended = await post('/api/workflows/ok-1/events/approved', '1')
      expect(ended.status).toBe(409)
      expect(ended.json.error.code).toBe('WF_EVENT_REFUSED')
      const unknown = await post('/api/workflows/nobody/events/approved', '1')
      expect(unknown.status).toBe(404)
      const bad = await post('/api/workflows/failed-1/events/approved', '{not json')
      expect(bad.status).toBe(400)
    })

    it('triggers a schedule declared in this process: a PENDING run for a worker; 409 for one declared elsewhere', async () => {
      const reply = await post(`/api/schedules/${hourly}/trigger`)
      expect(reply.status).toBe(202)
      expect(reply.json.scheduleId).toBe(hourly)
      expect(reply.json.workflowId).toMatch(new RegExp(`^${hourly}@manual-`))
      expect(await statusOf(reply.json.workflowId)).toBe('PENDING')
      const elsewhere = await post('/api/schedules/not-declared-here/trigger')
      expect(elsewhere.status).toBe(409)
      expect(elsewhere.json.error.code).toBe('WF_SCHEDULE_NOT_DECLARED')
    })

    it('refuses every one of these actions read-only, from another origin and without the token', async () => {
      const actions = [
        '/api/workflows/failed-1/fork',
        '/api/workflows/failed-1/events/approved',
        `/api/schedules/${hourly}/trigger`,
      ]
      for (const path of actions) {
        const refused = await post(path, '{}', readOnly)
        expect(refused.status, path).toBe(403)
        expect(refused.json.error.code).toBe('WF_UI_READ_ONLY')
        const crossOrigin = await post(path, '{}', ui, { origin: 'http://evil.example' })
        expect(crossOrigin.status, path).toBe(403)
        expect(crossOrigin.json.error.code).toBe('WF_UI_CROSS_ORIGIN')
        const noToken = await request(ui.port, 'POST', path, { origin: ui.origin }, '127.0.0.1', '{}')
        expect(noToken.status, path).toBe(401)
      }
      expect((await get('/api/workflows/failed-1/events/approved')).status).toBe(405)
      expect((await get('/api/workflows?prefix=failed-1-fork-2')).json.workflows).toEqual([])
    })

    it('refuses a body over 1 MiB with 413', async () => {
      const reply = await post(
        '/api/workflows/failed-1/events/big',
        JSON.stringify('x'.repeat(1024 * 1024 + 1)),
      )
      expect(reply.status).toBe(413)
      expect(reply.json.error.code).toBe('WF_UI_BODY_TOO_LARGE')
    })
  },
)
