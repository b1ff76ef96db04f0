// `wf cancel` from another process stops a running workflow within one heartbeat: the runner's
// heartbeat finds the cancel request in the record, aborts its in-flight step through the step's
// signal (the step logs the abort), acknowledges with the CANCELED record (which `wf cancel` waits
// for), and its run rejects with WF_CANCELED.

import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Runtime } from '@wf/core'
import { expect, it, vi } from 'vitest'
import { lastJson, logLines, runner } from './helpers.js'

const HEARTBEAT_MS = 200
const app = join(dirname(fileURLToPath(import.meta.url)), '../..')
// The application's own `wf` (its @wf/client dependency), run from the application's folder.
const wfBin = join(
  dirname(createRequire(join(app, 'package.json')).resolve('@wf/client/package.json')),
  'bin/wf.js',
)

it('wf cancel from another process stops the runner within one heartbeat, aborting its step', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wf-cancel-'))
  const storage = join(dir, 'data')
  const log = join(dir, 'steps.log')
  const workflowId = 'to-cancel'
  const runtime = new Runtime(storage)
  const store = await runtime.store()
  try {
    const running = runner('cancel', storage, workflowId, {
      WF_TEST_LOG: log,
      WF_TEST_LEASE_TTL_MS: String(HEARTBEAT_MS * 5),
      WF_TEST_HEARTBEAT_MS: String(HEARTBEAT_MS),
    })
    await vi.waitFor(
      () =>
        expect(
          logLines(log).some(([, , what]) => what === 'start'),
          'the step to start',
        ).toBe(true),
      { timeout: 30_000, interval: 10 },
    )

    const cancel = await new Promise<{ code: number; stdout: string; stderr: string; at: number }>(
      (resolve) =>
        execFile(
          process.execPath,
          [wfBin, 'cancel', workflowId, '--storage', storage],
          { cwd: app },
          (error, stdout, stderr) =>
            resolve({
              code: error ? Number((error as { code?: unknown }).code ?? 1) : 0,
              stdout,
              stderr,
              at: Date.now(),
            }),
        ),
    )
    expect(cancel).toMatchObject({ code: 0, stderr: '' })
    // It returns once the runner acknowledged: from then on no step of the workflow starts.
    expect(cancel.stdout).toMatch(
      new RegExp(`^canceled ${workflowId}: its runner .+:${running.pid} stopped it and acknowledged`),
    )
    const exited = await running.exited
    // The runner acknowledges before the `wf` process exits, so this bounds the runner's reaction.
    expect(exited.at - cancel.at).toBeLessThan(HEARTBEAT_MS * 3 + 1000)
    expect(exited.code).toBe(1)
    expect(lastJson(running).error?.code).toBe('WF_CANCELED')
    expect(running.stderr()).toBe('')

    const lines = logLines(log)
    expect(lines.map(([pid, stepId, what]) => [Number(pid), stepId, what])).toEqual([
      [running.pid, 'rc.wait', 'start'],
      [running.pid, 'rc.wait', 'aborted'],
    ])
    expect(await store.listStepIds(workflowId)).toEqual([])
    const { record } = await store.requireWorkflow(workflowId)
    expect(record.status).toBe('CANCELED')
    expect(record.owner).toBeUndefined()
  } finally {
    await (await runtime.storage()).close?.()
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)
