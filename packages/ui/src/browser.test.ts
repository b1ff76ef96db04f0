// The page in a real headless Chromium (Debian's, driven by playwright-core; Playwright's own
// browser download does not work offline): the runs page, its filters, its "more" rows kept by the
// refresh, a workflow's graph with its statuses, a failed step's error, the actions (cancel, resume
// offered only with the steps imported, fork, an event, delete after a confirmation) and none of
// them read-only, a stored `<img onerror>` shown as text, and the guards as a browser meets them (no
// token, a server bound to every interface, a foreign Host as DNS rebinding gives it). With
// WF_UI_SCREENSHOTS=1 it also writes the README's screenshots, docs/ui-runs.png and docs/ui-graph.png.
//
// Without Chromium the tests are skipped with a message, except in CI (CI=true), where they fail:
// scripts/install-chromium.sh installs it, and .ci/run runs that script first (pnpm test too, as root).

import { existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { WorkflowClient } from '@wf/client'
import { createWorker, Runtime, type Storage, schedule, unschedule, waitForEvent } from '@wf/core'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUi, type UiServer } from './index.js'
import { folderBackend } from './test-support/harness.js'
import {
  add,
  closeGate,
  count,
  double,
  fan,
  flags,
  flaky,
  gates,
  held,
  markup,
  sum,
} from './test-support/steps.mjs'

const executablePath = process.env.WF_CHROMIUM || '/usr/bin/chromium'
const ci = process.env.CI === 'true' || process.env.CI === '1'
const present = existsSync(executablePath)
const screenshots = process.env.WF_UI_SCREENSHOTS === '1'
const docs = fileURLToPath(new URL('../../../docs/', import.meta.url))
// A name no DNS answers: Chromium maps it to loopback, as a rebound DNS name would.
const FOREIGN = 'rebound.example'

// Waits for the page: generous, since CI runs the browser beside the other test files on 2 cores.
const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 20_000, interval: 50 })

if (!present && !ci)
  console.warn(
    `@wf/ui browser tests skipped: no Chromium at ${executablePath}. Install it with scripts/install-chromium.sh (as root), or set WF_CHROMIUM to a Chromium binary.`,
  )

it.runIf(ci)('has Chromium to run in: in CI the browser tests never skip', () => {
  expect(present, `no Chromium at ${executablePath}: scripts/install-chromium.sh installs it`).toBe(true)
})

describe.skipIf(!present && !ci)('the page in headless Chromium', { timeout: 60_000 }, () => {
  let storage: Storage
  let cleanup: () => Promise<void>
  let runtime: Runtime
  let ui: UiServer
  let browser: Browser
  let page: Page

  beforeAll(async () => {
    if (!present)
      throw new Error(
        `no Chromium at ${executablePath}: CI must install it (scripts/install-chromium.sh), the browser tests do not skip in CI`,
      )
    ;({ storage, cleanup } = await folderBackend.open())
    runtime = new Runtime(storage)
    flags.fail = true
    closeGate()
    for (const day of [1, 2, 3, 4])
      await runtime.run(double(add(day)), {
        workflowId: `daily-2026-12-0${day}`,
        metadata: { team: 'data', day },
      })
    await runtime.run(add(2), { workflowId: 'ok-2', metadata: { team: 'ops' } })
    await runtime.run(sum(fan(2), double(add(3))), { workflowId: 'report-1', metadata: { team: 'data' } })
    await runtime.run(markup(), { workflowId: 'xss' })
    await runtime.run(count(...Array.from({ length: 400 }, (_, i) => add(i))), { workflowId: 'wide-1' })
    await expect(runtime.run(sum(fan(2), double(flaky(5))), { workflowId: 'failed-1' })).rejects.toThrow(
      'flaky failed on 5',
    )
    await runtime.runAsync(add(held(1)), { workflowId: 'running-1', metadata: { team: 'ops' } })
    await runtime.runAsync(add(waitForEvent<number>('approved')), { workflowId: 'waiting-1' })
    ui = await startUi({ client: new WorkflowClient({ runtime }), port: 0 })
    browser = await chromium.launch({
      executablePath,
      headless: true,
      // As Debian's Chromium runs here: no sandbox as root, nothing fetched from the network.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--host-resolver-rules=MAP ${FOREIGN} 127.0.0.1`,
      ],
    })
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    page.setDefaultTimeout(20_000)
    await page.goto(ui.url)
  }, 120_000)

  afterAll(async () => {
    gates.release()
    await browser?.close()
    await ui?.close()
    await cleanup?.()
  })

  const rowIds = async (p: Page = page): Promise<string[]> =>
    (await p.locator('main table tbody tr td.id').allTextContents()).sort()

  it('opens the runs page from the printed URL: the token leaves the address, the table lists every workflow', async () => {
    expect(page.url()).toBe(`${ui.origin}/`)
    await poll(() => rowIds()).toHaveLength(11)
    expect(await rowIds()).toContain('running-1')
    await poll(() => page.locator('nav.counts').textContent()).toMatch(/all 11/)
    const counts = await page.locator('nav.counts').textContent()
    expect(counts).toMatch(/SUCCESSFUL 8/)
    expect(counts).toMatch(/FAILED 1/)
    expect(counts).toMatch(/RUNNING 2/)
    if (screenshots) {
      mkdirSync(docs, { recursive: true })
      await page.screenshot({ path: `${docs}ui-runs.png` })
    }
  })

  it('lists the newest workflow first', async () => {
    await page.goto(`${ui.origin}/#/`)
    await poll(() => page.locator('main table tbody tr td.id').allTextContents()).toHaveLength(11)
    const shown = await page.locator('main table tbody tr td.id').allTextContents()
    // The last two were started without waiting for each other (maybe in one millisecond).
    expect(shown.slice(0, 2).sort()).toEqual(['running-1', 'waiting-1'])
    expect(shown.slice(2)).toEqual([
      'failed-1',
      'wide-1',
      'xss',
      'report-1',
      'ok-2',
      'daily-2026-12-04',
      'daily-2026-12-03',
      'daily-2026-12-02',
      'daily-2026-12-01',
    ])
  })

  it('filters by creation time, kept in the address and shown in its inputs', async () => {
    const client = new WorkflowClient({ runtime })
    const at = (await client.getMetadata('ok-2')).stats.startTime
    // Up to ok-2: the four dailies and ok-2, created first.
    await page.goto(`${ui.origin}/#/?createdBefore=${encodeURIComponent(new Date(at + 1).toISOString())}`)
    await poll(() => page.locator('main table tbody tr td.id').allTextContents()).toEqual([
      'ok-2',
      'daily-2026-12-04',
      'daily-2026-12-03',
      'daily-2026-12-02',
      'daily-2026-12-01',
    ])
    expect(await page.locator('input[type="datetime-local"]').last().inputValue()).not.toBe('')
    await page.goto(`${ui.origin}/#/?createdAfter=${encodeURIComponent(new Date(at + 1).toISOString())}`)
    await poll(() => page.locator('main table tbody tr td.id').allTextContents()).toHaveLength(6)
    expect(await rowIds()).not.toContain('ok-2')
    await page.goto(`${ui.origin}/#/`)
    await poll(() => rowIds()).toHaveLength(11)
  })

  it('filters by id prefix, by status and by metadata, kept in the address', async () => {
    await page.fill('input[placeholder="id prefix"]', 'daily-')
    await page.press('input[placeholder="id prefix"]', 'Enter')
    await poll(() => rowIds()).toEqual([
      'daily-2026-12-01',
      'daily-2026-12-02',
      'daily-2026-12-03',
      'daily-2026-12-04',
    ])
    expect(page.url()).toContain('prefix=daily-')
    await page.goto(`${ui.origin}/#/`)
    await poll(() => rowIds()).toHaveLength(11)
    await page.locator('nav.counts a', { hasText: 'FAILED' }).click()
    await poll(() => rowIds()).toEqual(['failed-1'])
    await page.goto(`${ui.origin}/#/`)
    await poll(() => rowIds()).toHaveLength(11) // the unfiltered page is drawn: fill its input
    await page.fill('input[placeholder^="metadata"]', '{"team":"ops"}')
    await page.press('input[placeholder^="metadata"]', 'Enter')
    await poll(() => rowIds()).toEqual(['ok-2', 'running-1'])
  })

  it('keeps the rows "more" loaded when it refreshes while a workflow waits, and says why a "more" failed', async () => {
    // A storage of its own: more than a page of workflows (200 rows), one of them parked.
    const bed = await folderBackend.open()
    const busy = new Runtime(bed.storage, { parkAfterMs: 0 })
    const server = await startUi({ client: new WorkflowClient({ runtime: busy }), port: 0 })
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    let parked: { result(): Promise<unknown> } | undefined
    try {
      for (let i = 0; i < 205; i += 15)
        await Promise.all(
          Array.from({ length: Math.min(15, 205 - i) }, (_, j) =>
            busy.run(add(i + j), { workflowId: `bulk-${String(i + j).padStart(3, '0')}` }),
          ),
        )
      parked = await busy.runAsync(add(waitForEvent<number>('never')), { workflowId: 'bulk-waiting' })
      const p = await context.newPage()
      p.setDefaultTimeout(20_000)
      await p.goto(server.url)
      const rows = p.locator('main table tbody tr')
      const more = p.locator('main > button', { hasText: 'more' })
      await poll(() => rows.count()).toBe(200)
      // The next page fails once: the page says why, and the button can be clicked again.
      let failed = 0
      await p.route(
        (url) => url.pathname === '/api/workflows' && url.searchParams.has('cursor') && failed === 0,
        async (route) => {
          failed++
          await route.fulfill({
            status: 503,
            contentType: 'application/json',
            body: JSON.stringify({
              error: { code: 'WF_STORAGE_UNAVAILABLE', message: 'the storage did not answer' },
            }),
          })
        },
      )
      await more.click()
      await poll(() => p.locator('main .notice.error').textContent()).toContain('the storage did not answer')
      expect(await more.isEnabled()).toBe(true)
      expect(await rows.count()).toBe(200)
      await more.click()
      await poll(() => rows.count()).toBe(206)
      expect(await more.count()).toBe(0)
      expect(await p.locator('main .notice.error').count()).toBe(0)
      // The refresh (every 2 s while a workflow waits) shows a new workflow, and as many rows as
      // were shown: the oldest one moves to the next page.
      const ids = p.locator('main table tbody tr td.id')
      const shown = await ids.allTextContents()
      await busy.run(add(1), { workflowId: 'bulk-late' })
      await poll(() => ids.first().textContent()).toBe('bulk-late')
      expect(await ids.allTextContents()).toEqual(['bulk-late', ...shown.slice(0, -1)])
      expect(await more.count()).toBe(1)
    } finally {
      await context.close()
      await server.close()
      await busy.close()
      await parked?.result().catch(() => {})
      await bed.cleanup()
    }
  })

  it('opens a workflow from the table: its graph shows each step with its status', async () => {
    await page.goto(`${ui.origin}/#/`)
    await page.locator('a', { hasText: 'report-1' }).click()
    await poll(() => page.locator('h1').textContent()).toBe('report-1')
    const node = (name: string) => page.locator(`svg.graph g.node[data-step-name="${name}"]`)
    await poll(() => node('ui-sum').count()).toBe(2) // the output, and one in the continuation
    expect(await node('ui-fan').getAttribute('data-status')).toBe('SUCCESSFUL')
    for (const status of await node('ui-sum').evaluateAll((els) => els.map((e) => e.dataset.status)))
      expect(status).toBe('SUCCESSFUL')
    // Drawn by dagre: a node per step, an edge per input (add→double→sum, fan→sum, fan⇢its steps).
    expect(await page.locator('svg.graph g.node').count()).toBe(7)
    expect(await page.locator('svg.graph path.edge').count()).toBe(7)
    // The continuation's steps, in a box of their own, which closes and opens.
    const box = page.locator('svg.graph g.cluster[data-continuation-of="ui-fan"]')
    expect(await box.locator('g.node').count()).toBe(3)
    await node('ui-fan').locator('rect.toggle').click()
    await poll(() => box.count()).toBe(0)
    expect(await node('ui-fan').textContent()).toContain('3 steps inside')
    await node('ui-fan').locator('rect.toggle').click()
    await poll(() => box.locator('g.node').count()).toBe(3)
  })

  it("shows a step's arguments in its detail, an upstream output marked by its step", async () => {
    await page.goto(`${ui.origin}/#/w/daily-2026-12-03`)
    await poll(() => page.locator('h1').textContent()).toBe('daily-2026-12-03')
    for (const [name, expected] of [
      ['ui-add', /^\[\s*3\s*\]$/],
      ['ui-double', /<output of ui-add[^>]*>/],
    ] as const) {
      const item = page.locator(`ul.steps li[data-step-name="${name}"]`).first()
      if ((await item.locator('button', { hasText: 'show arguments' }).count()) === 0)
        await item.locator('.step').first().click()
      await item.locator('button', { hasText: 'show arguments' }).click()
      await poll(() => item.locator('.value-arguments pre').textContent()).toMatch(expected)
    }
  })

  it('does not draw a graph of more than 400 steps (dagre would hold the page), and lists them', async () => {
    await page.goto(`${ui.origin}/#/w/wide-1`)
    await poll(() => page.locator('h1').textContent()).toBe('wide-1')
    expect(await page.locator('main .notice').first().textContent()).toContain(
      '401 steps: too many to draw as a graph',
    )
    expect(await page.locator('svg.graph').count()).toBe(0)
    expect(await page.locator('ul.steps > li').count()).toBe(401)
  })

  it('shows a failed workflow with the failed step red, what depends on it pending, and the step’s error on a click', async () => {
    await page.goto(`${ui.origin}/#/w/failed-1`)
    const flakyNode = page.locator('svg.graph g.node[data-step-name="ui-flaky"]')
    await poll(() => flakyNode.getAttribute('data-status')).toBe('FAILED')
    expect(await flakyNode.getAttribute('class')).toContain('s-failed')
    const output = page.locator('svg.graph g.node.output')
    expect(await output.getAttribute('data-step-name')).toBe('ui-sum')
    expect(await output.getAttribute('data-status')).toBe('PENDING')
    expect(
      await page.locator('svg.graph g.node[data-step-name="ui-double"]').last().getAttribute('data-status'),
    ).toBe('PENDING')
    if (screenshots) await page.screenshot({ path: `${docs}ui-graph.png` })
    await flakyNode.click() // opens the step's detail under the graph
    const error = page.locator('.step-detail .notice.error').first()
    await poll(() => error.textContent()).toContain('RangeError: flaky failed on 5')
    expect(await error.locator('pre').textContent()).toMatch(/at /) // the stack
    // Nothing absent is written out as the word null (replaceChildren would).
    expect(await page.locator('.step-detail').first().textContent()).not.toContain('null')
  })

  it('offers resume disabled, saying why, when the dashboard imported no step modules', async () => {
    await page.goto(`${ui.origin}/#/w/failed-1`)
    await poll(() => page.locator('h1').textContent()).toBe('failed-1')
    const resume = page.locator('.actions button', { hasText: 'resume' })
    await poll(() => resume.count()).toBe(1)
    expect(await resume.isDisabled()).toBe(true)
    expect(await resume.getAttribute('title')).toContain('restart it with --import')
    expect(await page.locator('.actions').textContent()).toContain('restart it with --import')
    // The other actions of a failed workflow are there, and its event form.
    for (const action of ['cancel', 'fork', 'delete'])
      expect(await page.locator('.actions button', { hasText: action }).isEnabled(), action).toBe(true)
    expect(await page.locator('form.send-event').count()).toBe(1)
  })

  it('shows no action on a read-only server: no buttons, no event form, no fork from a step', async () => {
    const readOnly = await startUi({ client: new WorkflowClient({ runtime }), port: 0, readOnly: true })
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    try {
      const p = await context.newPage()
      p.setDefaultTimeout(20_000)
      await p.goto(readOnly.url)
      await p.goto(`${readOnly.origin}/#/w/failed-1`)
      await poll(() => p.locator('h1').textContent()).toBe('failed-1')
      await poll(() => p.locator('svg.graph g.node').count()).toBeGreaterThan(0)
      expect(await p.locator('.actions button').count()).toBe(0)
      expect(await p.locator('form.send-event').count()).toBe(0)
      // A step's detail has no "fork from this step" either.
      await p.locator('[data-step-name="ui-flaky"] .step').first().click()
      const detail = p.locator('[data-step-name="ui-flaky"] .step-detail').first()
      await poll(() => detail.textContent()).toContain('flaky failed on 5')
      expect(await p.locator('main button', { hasText: 'fork' }).count()).toBe(0)
    } finally {
      await context.close()
      await readOnly.close()
    }
  })

  it('cancels a running workflow from its page, which then turns CANCELED', async () => {
    await page.goto(`${ui.origin}/#/w/running-1`)
    const status = page.locator('dl.facts dd .status').first()
    await poll(() => status.textContent()).toBe('RUNNING')
    page.once('dialog', (dialog) => void dialog.accept())
    await page.locator('button', { hasText: 'cancel' }).click()
    await poll(() => status.textContent()).toBe('CANCELED')
    expect(await new WorkflowClient({ runtime }).getStatus('running-1')).toBe('CANCELED')
  })

  it('forks a failed workflow from a step chosen in its detail, and opens the fork', async () => {
    await page.goto(`${ui.origin}/#/w/failed-1`)
    const fork = page.locator('[data-step-name="ui-flaky"] button', { hasText: 'fork from this step' })
    await poll(() => page.locator('[data-step-name="ui-flaky"]').count()).toBeGreaterThan(0)
    // A step's detail stays open across pages once opened (the test before opened this one).
    if ((await fork.count()) === 0) await page.locator('[data-step-name="ui-flaky"] .step').first().click()
    page.once('dialog', (dialog) => void dialog.accept())
    await fork.click()
    await poll(() => page.locator('h1').textContent()).toBe('failed-1-fork-1')
    expect(page.url()).toBe(`${ui.origin}/#/w/failed-1-fork-1`)
    // This dashboard imported no step modules: the fork waits for a worker.
    await poll(() => page.locator('dl.facts dd .status').first().textContent()).toBe('PENDING')
  })

  it('sends an event from a waiting workflow’s page: the event is listed and the workflow ends', async () => {
    await page.goto(`${ui.origin}/#/w/waiting-1`)
    // The page shown before (a PENDING fork) has a form too: wait for this workflow's.
    await poll(() => page.locator('h1').textContent()).toBe('waiting-1')
    const form = page.locator('form.send-event')
    await form.locator('input[placeholder="event name"]').fill('approved')
    await form.locator('input[placeholder^="payload"]').fill('41')
    await form.locator('button', { hasText: 'send event' }).click()
    await poll(() => page.locator('main table').last().textContent()).toContain('approved')
    const status = page.locator('dl.facts dd .status').first()
    await poll(() => status.textContent()).toBe('SUCCESSFUL')
    expect(await new WorkflowClient({ runtime }).getOutput('waiting-1')).toBe(42)
  })

  it('shows a stored <img onerror> output as text, never as an element', async () => {
    let alerted = false
    page.on('dialog', (dialog) => {
      alerted = true
      void dialog.dismiss()
    })
    await page.goto(`${ui.origin}/#/w/xss`)
    await page.locator('[data-step-name="ui-markup"] .step').first().click()
    await page.locator('button', { hasText: 'show output' }).click()
    const output = page.locator('.step-detail pre').first()
    await poll(() => output.textContent()).toBe('"<img src=x onerror=alert(1)>"')
    expect(await page.locator('main img').count()).toBe(0)
    expect(alerted).toBe(false)
  })

  it('without the token the page says so and the API answers 401, on loopback and bound to every interface', async () => {
    const wide = await startUi({ client: new WorkflowClient({ runtime }), host: '0.0.0.0', port: 0 })
    try {
      for (const server of [ui, wide]) {
        const fresh = await browser.newContext() // no cookie
        try {
          const p = await fresh.newPage()
          await p.goto(`${server.origin}/`)
          await poll(() => p.locator('main').textContent()).toContain('This dashboard needs its token.')
          const status = await p.evaluate(async () => (await fetch('/api/workflows')).status)
          expect(status).toBe(401)
          const wrong = await p.goto(`${server.origin}/?token=not-the-token`)
          expect(wrong?.status()).toBe(401)
        } finally {
          await fresh.close()
        }
      }
    } finally {
      await wide.close()
    }
  })

  it('refuses a page and the API under a foreign Host (a rebound DNS name), token or not', async () => {
    const fresh = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${ui.token}` } })
    try {
      const p = await fresh.newPage()
      const pageReply = await p.goto(`http://${FOREIGN}:${ui.port}/?token=${ui.token}`)
      expect(pageReply?.status()).toBe(403)
      const apiReply = await p.goto(`http://${FOREIGN}:${ui.port}/api/workflows`)
      expect(apiReply?.status()).toBe(403)
      expect(await apiReply?.json()).toMatchObject({ error: { code: 'WF_UI_FORBIDDEN_HOST' } })
      // The same request under this server's own name passes.
      const own = await p.goto(`${ui.origin}/api/workflows`)
      expect(own?.status()).toBe(200)
    } finally {
      await fresh.close()
    }
  })
  it('deletes a workflow only after a confirmation: dismissed, it stays; accepted, it goes', async () => {
    const client = new WorkflowClient({ runtime })
    await runtime.run(add(5), { workflowId: 'to-delete' })
    page.removeAllListeners('dialog') // the XSS test dismisses every dialog
    await page.goto(`${ui.origin}/#/w/to-delete`)
    await poll(() => page.locator('h1').textContent()).toBe('to-delete')
    const remove = page.locator('.actions button', { hasText: 'delete' })
    const asked: string[] = []
    page.once('dialog', (dialog) => {
      asked.push(dialog.message())
      void dialog.dismiss()
    })
    await remove.click()
    await poll(() => asked).toHaveLength(1)
    expect(asked[0]).toBe('Delete to-delete and all its checkpoints?')
    expect(await remove.isEnabled()).toBe(true)
    expect(page.url()).toBe(`${ui.origin}/#/w/to-delete`)
    expect(await client.getStatus('to-delete')).toBe('SUCCESSFUL')
    page.once('dialog', (dialog) => void dialog.accept())
    await remove.click()
    // Back on the runs page, which lists the others and not it.
    await poll(() => page.url()).toBe(`${ui.origin}/#/`)
    await poll(async () => {
      const ids = await rowIds()
      return ids.includes('ok-2') && !ids.includes('to-delete')
    }).toBe(true)
    await expect(client.getStatus('to-delete')).rejects.toMatchObject({ code: 'WF_NOT_FOUND' })
  })

  it('pauses a schedule from the schedules page and deletes it after a confirmation', async () => {
    const id = 'ui-browser-nightly'
    const nightly = schedule(id, { cron: '0 3 * * *', timezone: 'UTC' }, () => add(1))
    try {
      // A worker stores the schedule's record at its first poll.
      const worker = createWorker({
        runtime: new Runtime(storage),
        schedules: [nightly],
        handleSignals: false,
        pollIntervalMs: 50,
      })
      const client = new WorkflowClient({ runtime })
      await poll(async () => (await client.listSchedules()).map((s) => s.scheduleId)).toContain(id)
      await worker.stop()
      await page.goto(`${ui.origin}/#/schedules`)
      const row = page.locator('main table tbody tr', { hasText: id })
      await poll(() => row.locator('td').nth(2).textContent()).toBe('active')
      await row.locator('button', { hasText: 'pause' }).click()
      await poll(() => row.locator('td').nth(2).textContent()).toBe('paused')
      expect((await client.getSchedule(id)).paused).toBe(true)
      // The confirmation (the XSS test before dismisses every dialog: not this one).
      page.removeAllListeners('dialog')
      page.once('dialog', (dialog) => void dialog.accept())
      await row.locator('button', { hasText: 'delete' }).click()
      await poll(() => row.count()).toBe(0)
      expect((await client.listSchedules()).map((s) => s.scheduleId)).not.toContain(id)
    } finally {
      unschedule(id)
    }
  })
})
