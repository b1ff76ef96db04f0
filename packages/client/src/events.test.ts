// Events as the management surface shows and sends them, on a real folder: `wf send` (JSON from
// --data or --data-file, --key), a parked workflow's waitingFor, `wf list` and `wf show` listing
// what it waits for and the events received and pending.

import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Runtime, step, waitForEvent } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { WorkflowClient } from './index.js'
import { runWf } from './test-support/cli-run.js'
import { folderStorage } from './test-support/harness.js'

const pick = step('events-client.pick', (first: { n: number }, second: { n: number }) => first.n + second.n)

describe('events on the command line and in the client', () => {
  let app: string
  let data: string
  let runtime: Runtime
  let client: WorkflowClient
  const here = fileURLToPath(new URL('.', import.meta.url))

  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'wf-events-cli-'))
    data = join(app, 'data')
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
    runtime = new Runtime(await folderStorage(data), { parkAfterMs: 0 })
    client = new WorkflowClient({ runtime })
  })
  afterAll(async () => {
    await runtime.close()
    await rm(app, { recursive: true, force: true })
  })

  it('a parked workflow says which events it waits for; wf send delivers them, once per key', async () => {
    const handle = await runtime.runAsync(pick(waitForEvent('first'), waitForEvent('second')), {
      workflowId: 'approval',
    })
    await vi.waitFor(async () => expect((await client.getMetadata('approval')).waitingFor).toBeDefined())
    const meta = await client.getMetadata('approval')
    expect(meta.status).toBe('PENDING')
    expect(meta.waitingFor).toEqual({ events: ['first', 'second'], steps: ['wf:receive', 'wf:receive_1'] })
    expect(await client.listAll('PENDING')).toEqual([
      { workflowId: 'approval', status: 'PENDING', waitingForEvents: ['first', 'second'] },
    ])
    const list = await runWf(['--storage', data, 'list'], { cwd: app })
    expect(list.stdout).toMatch(/approval +PENDING \(waiting for first, second\)/)

    const sent = await runWf(
      ['--storage', data, 'send', 'approval', 'first', '--data', '{"n": 1}', '--key', 'k1'],
      {
        cwd: app,
      },
    )
    expect(sent).toMatchObject({ code: 0, stderr: '' })
    expect(sent.stdout).toBe('sent event first to approval (#1)\n')
    const again = await runWf(
      ['--storage', data, '--json', 'send', 'approval', 'first', '--data', '{"n": 1}', '--key', 'k1'],
      { cwd: app },
    )
    expect(JSON.parse(again.stdout)).toMatchObject({ seq: 1, duplicate: true })

    // The first event is taken by the step waiting for it (woken by a worker, here this runtime's
    // follower of the run); the second is pending until sent.
    await vi.waitFor(
      async () => expect((await client.listEvents('approval'))[0]?.takenBy).toBe('wf:receive'),
      {
        timeout: 20_000,
      },
    )
    const shown = await runWf(['--storage', data, 'show', 'approval'], { cwd: app })
    expect(shown.stdout).toMatch(/events: 1 sent, 0 pending/)
    expect(shown.stdout).toMatch(/#1 +first +.+ taken by wf:receive/)

    const file = join(app, 'second.json')
    await writeFile(file, '{"n": 41}')
    const second = await runWf(['--storage', data, 'send', 'approval', 'second', '--data-file', file], {
      cwd: app,
    })
    expect(second).toMatchObject({ code: 0, stderr: '' })
    expect(await handle.result()).toBe(42)
  }, 60_000)

  it('refuses bad input with exit code 2 and sends to ended workflows with a clear error', async () => {
    const notJson = await runWf(['--storage', data, 'send', 'approval', 'x', '--data', '{nope'], { cwd: app })
    expect(notJson.code).toBe(2)
    expect(notJson.stderr).toMatch(/--data is not JSON/)
    const ended = await runWf(['--storage', data, 'send', 'approval', 'first', '--data', '1'], { cwd: app })
    expect(ended.code).not.toBe(0)
    expect(ended.stderr).toMatch(/SUCCESSFUL and will never take it/)
    const unknown = await runWf(['--storage', data, 'send', 'nobody', 'first'], { cwd: app })
    expect(unknown.code).not.toBe(0)
    expect(unknown.stderr).toMatch(/nobody/)
  })
})
