// The JSON API on a real folder and on the real S3 gateway: the runs list with counts, filters and
// paging, a workflow's graph with statuses and errors, a step's output as text, and the actions:
// cancel a running workflow, resume (only with the step modules imported), delete, and none of
// them on a read-only server.

import { WorkflowClient } from '@wf/client'
import { Runtime, type Storage } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startUi, type UiServer } from './index.js'
import { type Reply, request, testedBackends } from './test-support/harness.js'
import {
  add,
  big,
  closeGate,
  dated,
  double,
  echo,
  flags,
  flaky,
  gates,
  held,
  markup,
} from './test-support/steps.mjs'

/** The ids of rows in the order the API must give them: newest first, then by id. */
function newestFirst(rows: { workflowId: string; createdAt: number }[]): string[] {
  return [...rows]
    .sort((a, b) => b.createdAt - a.createdAt || (a.workflowId < b.workflowId ? -1 : 1))
    .map((r) => r.workflowId)
}

const stepsModule = new URL('./test-support/steps.mjs', import.meta.url).href

describe.each(testedBackends('api.test.ts'))('the API on $name', (backend) => {
  let storage: Storage
  let cleanup: () => Promise<void>
  let runtime: Runtime
  let ui: UiServer
  let readOnly: UiServer
  const auth = () => ({ authorization: `Bearer ${ui.token}` })
  const get = (path: string, server = ui): Promise<Reply> =>
    request(server.port, 'GET', path, { authorization: `Bearer ${server.token}` })
  const post = (path: string, server = ui, method = 'POST'): Promise<Reply> =>
    request(server.port, method, path, { authorization: `Bearer ${server.token}`, origin: server.origin })

  beforeAll(async () => {
    ;({ storage, cleanup } = await backend.open())
    runtime = new Runtime(storage)
    flags.fail = true
    closeGate()
    await runtime.run(double(add(1)), { workflowId: 'ok-1', metadata: { team: 'data' } })
    await runtime.run(add(2), { workflowId: 'ok-2' })
    await runtime.run(markup(), { workflowId: 'xss' })
    await runtime.run(big(300_000), { workflowId: 'big' })
    await runtime.run(dated(), { workflowId: 'dated' })
    await expect(runtime.run(double(flaky(5)), { workflowId: 'failed-1' })).rejects.toThrow(
      'flaky failed on 5',
    )
    await runtime.runAsync(add(held(1)), { workflowId: 'running-1' })
    // The server drives what it resumes and cancels through the same runtime as the runs here.
    const client = new WorkflowClient({ runtime })
    ui = await startUi({ client, port: 0, importModules: [stepsModule] })
    readOnly = await startUi({ client, port: 0, readOnly: true })
  })

  afterAll(async () => {
    gates.release()
    await ui?.close()
    await readOnly?.close()
    await cleanup?.()
  })

  it('lists workflows with their status, times and metadata, and counts per status', async () => {
    const reply = await get('/api/workflows')
    expect(reply.status).toBe(200)
    expect(reply.json.counts).toMatchObject({ SUCCESSFUL: 5, FAILED: 1, RUNNING: 1, CANCELED: 0 })
    expect(reply.json.total).toBe(7)
    const ids = reply.json.workflows.map((w: { workflowId: string }) => w.workflowId)
    expect([...ids].sort()).toEqual(['big', 'dated', 'failed-1', 'ok-1', 'ok-2', 'running-1', 'xss'])
    // Newest first (the creation-time index), the last started at the top.
    expect(ids).toEqual(newestFirst(reply.json.workflows))
    expect(ids[0]).toBe('running-1')
    expect(ids.at(-1)).toBe('ok-1')
    const ok1 = reply.json.workflows.find((w: { workflowId: string }) => w.workflowId === 'ok-1')
    expect(ok1).toMatchObject({ status: 'SUCCESSFUL', metadata: { team: 'data' } })
    expect(ok1.endedAt).toBeGreaterThanOrEqual(ok1.createdAt)
    const running = reply.json.workflows.find((w: { workflowId: string }) => w.workflowId === 'running-1')
    expect(running.status).toBe('RUNNING')
    expect(running.endedAt).toBeUndefined()
  })

  it('filters by status and id prefix, and pages with a cursor', async () => {
    const failed = await get('/api/workflows?status=FAILED,RUNNING')
    expect(failed.json.workflows.map((w: { workflowId: string }) => w.workflowId)).toEqual([
      'running-1',
      'failed-1',
    ])
    // Counts stay those of the whole storage, for the status tabs.
    expect(failed.json.counts.SUCCESSFUL).toBe(5)
    const prefixed = await get('/api/workflows?prefix=ok-')
    expect(prefixed.json.workflows.map((w: { workflowId: string }) => w.workflowId).sort()).toEqual([
      'ok-1',
      'ok-2',
    ])
    const all = (await get('/api/workflows')).json.workflows.map((w: { workflowId: string }) => w.workflowId)
    const first = await get('/api/workflows?limit=4')
    expect(first.json.workflows).toHaveLength(4)
    expect(first.json.cursor).toEqual(expect.any(String))
    const second = await get(`/api/workflows?limit=4&cursor=${first.json.cursor}`)
    // The next page goes on where the first stopped: the three oldest.
    expect(
      [...first.json.workflows, ...second.json.workflows].map((w: { workflowId: string }) => w.workflowId),
    ).toEqual(all)
    expect(second.json.workflows).toHaveLength(3)
    expect(second.json.cursor).toBeUndefined()
  })

  it('filters by creation time and metadata, paging through the records it has to read', async () => {
    const team = await get(`/api/workflows?metadata=${encodeURIComponent('{"team":"data"}')}`)
    expect(team.json.workflows.map((w: { workflowId: string }) => w.workflowId)).toEqual(['ok-1'])
    const okOne = team.json.workflows[0]
    const since = await get(`/api/workflows?createdAfter=${okOne.createdAt + 1}`)
    const ids = since.json.workflows.map((w: { workflowId: string }) => w.workflowId)
    expect(ids).not.toContain('ok-1')
    expect(ids).toContain('running-1') // started after ok-1
    const before = await get(`/api/workflows?createdBefore=${new Date(okOne.createdAt + 1).toISOString()}`)
    const earlier = before.json.workflows.map((w: { workflowId: string }) => w.workflowId)
    expect(earlier).toContain('ok-1')
    expect(earlier).not.toContain('running-1')
    // One per page: the cursor goes on after the last id examined, not the last one returned.
    const first = await get(`/api/workflows?limit=1&createdAfter=${okOne.createdAt + 1}`)
    expect(first.json.workflows).toHaveLength(1)
    const second = await get(
      `/api/workflows?limit=1&createdAfter=${okOne.createdAt + 1}&cursor=${first.json.cursor}`,
    )
    expect(second.json.workflows).toHaveLength(1)
    expect(second.json.workflows[0].workflowId).not.toBe(first.json.workflows[0].workflowId)
    expect(second.json.workflows[0].createdAt).toBeLessThanOrEqual(first.json.workflows[0].createdAt)
  })

  it('lists a workflow without a creation-time entry (made before the index): read-only merges it in, a writable server adds the entry', async () => {
    const key = (await storage.list('created/')).keys.find((k) => k.endsWith('-dated')) as string
    expect(key).toBeDefined()
    await storage.delete(key)
    const order = async (server: UiServer) => {
      const reply = await get('/api/workflows', server)
      expect(reply.status).toBe(200)
      return reply.json.workflows as { workflowId: string; createdAt: number }[]
    }
    const lookOnly = await startUi({ client: new WorkflowClient({ storage }), port: 0, readOnly: true })
    try {
      const rows = await order(lookOnly)
      expect(rows.map((r) => r.workflowId)).toContain('dated')
      expect(rows.map((r) => r.workflowId)).toEqual(newestFirst(rows))
      // Merged on its own page too: a page of one, then on after it.
      const dated = rows.findIndex((r) => r.workflowId === 'dated')
      let cursor: string | undefined
      const paged: string[] = []
      do {
        const page = await get(`/api/workflows?limit=1${cursor ? `&cursor=${cursor}` : ''}`, lookOnly)
        paged.push(...page.json.workflows.map((w: { workflowId: string }) => w.workflowId))
        cursor = page.json.cursor
      } while (cursor)
      expect(paged).toEqual(rows.map((r) => r.workflowId))
      expect(paged[dated]).toBe('dated')
      expect((await storage.list('created/')).keys).not.toContain(key)
    } finally {
      await lookOnly.close()
    }
    const fixing = await startUi({ client: new WorkflowClient({ storage }), port: 0 })
    try {
      expect((await order(fixing)).map((r) => r.workflowId)).toContain('dated')
      expect((await storage.list('created/')).keys).toContain(key)
    } finally {
      await fixing.close()
    }
  })

  it('refuses an unknown status, a bad limit and a forged cursor with 400', async () => {
    for (const path of [
      '/api/workflows?status=DONE',
      '/api/workflows?limit=0',
      '/api/workflows?cursor=%25%25',
    ]) {
      const reply = await get(path)
      expect(reply.status, path).toBe(400)
      expect(reply.json.error.code).toBe('WF_UI_BAD_REQUEST')
    }
  })

  it("gives a workflow's metadata and its graph with each step's status", async () => {
    const reply = await get('/api/workflows/ok-1')
    expect(reply.status).toBe(200)
    expect(reply.json.workflow).toMatchObject({
      workflowId: 'ok-1',
      status: 'SUCCESSFUL',
      userMetadata: { team: 'data' },
    })
    const steps = reply.json.graph.steps
    expect(steps.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual([
      ['ui-add', 'SUCCESSFUL'],
      ['ui-double', 'SUCCESSFUL'],
    ])
    expect(steps[0].attempts).toBe(1)
    expect(steps[1].dependsOn).toEqual([steps[0].stepId])
  })

  it('gives the failed step of a FAILED workflow with its error and stack', async () => {
    const reply = await get('/api/workflows/failed-1')
    expect(reply.json.workflow.status).toBe('FAILED')
    const failedStep = reply.json.graph.steps.find((s: { name: string }) => s.name === 'ui-flaky')
    expect(failedStep.status).toBe('FAILED')
    expect(failedStep.error).toMatchObject({ name: 'RangeError', message: 'flaky failed on 5' })
    expect(failedStep.error.stack).toContain('flaky failed on 5')
    expect(failedStep.failures.attempts).toBe(1)
    const downstream = reply.json.graph.steps.find((s: { name: string }) => s.name === 'ui-double')
    expect(downstream.status).toBe('PENDING')
  })

  it('answers 404 for an unknown workflow and 400 for an invalid id, as JSON errors', async () => {
    const missing = await get('/api/workflows/nope')
    expect(missing.status).toBe(404)
    expect(missing.json.error.code).toBe('WF_NOT_FOUND')
    const invalid = await get(`/api/workflows/${'x'.repeat(300)}`)
    expect(invalid.status).toBe(400)
    expect(invalid.json.error.code).toBe('WF_INVALID_WORKFLOW_ID')
    const route = await get('/api/nothing-here')
    expect(route.status).toBe(404)
    expect(route.json.error.code).toBe('WF_UI_NOT_FOUND')
  })

  it("gives a step's output as text: JSON when it is JSON, inspected otherwise, cut when large", async () => {
    const stepOf = async (id: string) => (await get(`/api/workflows/${id}`)).json.graph.rootStepId as string
    const xss = await get(`/api/workflows/xss/steps/${await stepOf('xss')}/output`)
    expect(xss.status).toBe(200)
    expect(xss.json).toMatchObject({ json: true, truncated: false, text: '"<img src=x onerror=alert(1)>"' })
    expect(xss.headers['content-type']).toBe('application/json; charset=utf-8')
    const dated = await get(`/api/workflows/dated/steps/${await stepOf('dated')}/output`)
    expect(dated.json.json).toBe(false)
    expect(dated.json.text).toContain('Map(1)')
    expect(dated.json.text).toContain('1970-01-01T00:00:00.000Z')
    const large = await get(`/api/workflows/big/steps/${await stepOf('big')}/output`)
    expect(large.json.truncated).toBe(true)
    expect(large.json.text.length).toBe(256 * 1024)
    expect(large.json.length).toBe(300_002)
  })

  it('gives the whole output as a download, past the limit the page shows', async () => {
    const root = (await get('/api/workflows/big')).json.graph.rootStepId as string
    const reply = await get(`/api/workflows/big/steps/${root}/output?download=1`)
    expect(reply.status).toBe(200)
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(reply.headers['content-disposition']).toMatch(/^attachment; filename="big-[\w.-]+\.json"$/)
    expect(reply.text).toBe(JSON.stringify('x'.repeat(300_000)))
    const datedRoot = (await get('/api/workflows/dated')).json.graph.rootStepId as string
    const inspected = await get(`/api/workflows/dated/steps/${datedRoot}/output?download=1`)
    expect(inspected.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(inspected.text).toContain('Map(1)')
  })

  it('answers 409 for the output of a step that has not committed, 404 for an unknown step', async () => {
    const detail = (await get('/api/workflows/failed-1')).json
    const flakyStep = detail.graph.steps.find((s: { name: string }) => s.name === 'ui-flaky')
    const pending = await get(`/api/workflows/failed-1/steps/${flakyStep.stepId}/output`)
    expect(pending.status).toBe(409)
    expect(pending.json.error.code).toBe('WF_STEP_NOT_COMMITTED')
    const unknown = await get('/api/workflows/failed-1/steps/no-such-step/output')
    expect(unknown.status).toBe(404)
    expect(unknown.json.error.code).toBe('WF_STEP_NOT_FOUND')
  })

  it('refuses every action on a read-only server, and still reads', async () => {
    expect((await get('/api/workflows', readOnly)).status).toBe(200)
    expect((await get('/api/info', readOnly)).json).toMatchObject({ readOnly: true, canResume: false })
    for (const [method, path] of [
      ['POST', '/api/workflows/running-1/cancel'],
      ['POST', '/api/workflows/failed-1/resume'],
      ['DELETE', '/api/workflows/ok-2'],
    ] as const) {
      const reply = await post(path, readOnly, method)
      expect(reply.status, `${method} ${path}`).toBe(403)
      expect(reply.json.error.code).toBe('WF_UI_READ_ONLY')
    }
    expect((await get('/api/workflows/running-1')).json.workflow.status).toBe('RUNNING')
    expect((await get('/api/workflows/ok-2')).status).toBe(200)
  })

  it('refuses resume with 409 when the server has not imported the step modules', async () => {
    const bare = await startUi({ client: new WorkflowClient({ runtime }), port: 0 })
    try {
      expect((await get('/api/info', bare)).json).toMatchObject({ canResume: false })
      const reply = await post('/api/workflows/failed-1/resume', bare)
      expect(reply.status).toBe(409)
      expect(reply.json.error.code).toBe('WF_UI_RESUME_UNAVAILABLE')
      expect(reply.json.error.message).toContain('--import')
    } finally {
      await bare.close()
    }
  })

  it('resumes a FAILED workflow when the step modules are imported', async () => {
    flags.fail = false
    const reply = await post('/api/workflows/failed-1/resume')
    expect(reply.status).toBe(202)
    await vi.waitFor(async () =>
      expect((await get('/api/workflows/failed-1')).json.workflow.status).toBe('SUCCESSFUL'),
    )
    const detail = (await get('/api/workflows/failed-1')).json
    const root = await get(`/api/workflows/failed-1/steps/${detail.graph.rootStepId}/output`)
    expect(root.json.text).toBe('10')
  })

  it('cancels a running workflow (a step waiting on a gate): it reads CANCELED', async () => {
    expect((await get('/api/workflows/running-1')).json.workflow.status).toBe('RUNNING')
    const reply = await post('/api/workflows/running-1/cancel')
    expect(reply.status).toBe(200)
    expect(reply.json).toEqual({ workflowId: 'running-1', status: 'CANCELED' })
    expect((await get('/api/workflows/running-1')).json.workflow.status).toBe('CANCELED')
    expect((await get('/api/workflows')).json.counts.CANCELED).toBe(1)
  })

  it('deletes a workflow, and refuses to delete a running one with 409', async () => {
    const reply = await post('/api/workflows/ok-2', ui, 'DELETE')
    expect(reply.status).toBe(200)
    expect(reply.json).toEqual({ workflowId: 'ok-2', deleted: true })
    expect((await get('/api/workflows/ok-2')).status).toBe(404)
    closeGate()
    await runtime.runAsync(held(7), { workflowId: 'running-2' })
    const refused = await post('/api/workflows/running-2', ui, 'DELETE')
    expect(refused.status).toBe(409)
    expect(refused.json.error.code).toBe('WF_STILL_ACTIVE')
    gates.release()
  })

  it('answers 405 with Allow for a method a route does not take', async () => {
    const reply = await post('/api/workflows', ui, 'DELETE')
    expect(reply.status).toBe(405)
    expect(reply.headers.allow).toBe('GET')
    void auth
  })
  it("gives a step's arguments as text, the places upstream outputs fill marked, cut when large with the whole as a download", async () => {
    const steps = (await get('/api/workflows/ok-1')).json.graph.steps as { stepId: string; name: string }[]
    const addStep = steps.find((s) => s.name === 'ui-add') as { stepId: string }
    const doubleStep = steps.find((s) => s.name === 'ui-double') as { stepId: string }
    const plain = await get(`/api/workflows/ok-1/steps/${addStep.stepId}/args`)
    expect(plain.status).toBe(200)
    expect(plain.json).toMatchObject({ json: true, truncated: false, text: '[\n  1\n]', refs: [] })
    const fed = await get(`/api/workflows/ok-1/steps/${doubleStep.stepId}/args`)
    expect(fed.json.refs).toEqual([{ path: [0], stepId: addStep.stepId }])
    expect(JSON.parse(fed.json.text)).toEqual([`<output of ${addStep.stepId}>`])
    await runtime.run(echo('<b>x</b>'.repeat(40_000)), { workflowId: 'long-args' })
    const root = (await get('/api/workflows/long-args')).json.graph.rootStepId as string
    const long = await get(`/api/workflows/long-args/steps/${root}/args`)
    expect(long.json.truncated).toBe(true)
    expect(long.json.text.length).toBe(256 * 1024)
    const whole = await get(`/api/workflows/long-args/steps/${root}/args?download=1`)
    expect(whole.headers['content-disposition']).toMatch(
      /^attachment; filename="long-args-[\w.-]+-args\.json"$/,
    )
    expect(JSON.parse(whole.text)).toEqual(['<b>x</b>'.repeat(40_000)])
    const unknown = await get('/api/workflows/ok-1/steps/no-such-step/args')
    expect(unknown.status).toBe(404)
  })
})
