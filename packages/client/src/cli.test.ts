// The `wf` command, spawned as a real process (node bin/wf.js) against a real folder that a
// fixture application filled, including a workflow whose runner was killed with SIGKILL.

import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createFileSystemStorage } from '@wf/storage-fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliResult, runFixture, runWf } from './test-support/cli-run.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const _bin = join(here, '../bin/wf.js')
const fixtures = join(here, 'test-support/fixtures')

let app: string
let data: string

/** Runs `wf` in the fixture application's folder (where @wf/storage-fs resolves, as in a real app). */
function wf(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runWf(args, { cwd: app, env })
}

function create(...scenarios: string[]): Promise<CliResult> {
  return runFixture('create.mjs', [data, ...scenarios])
}

/** Starts a run in a child process and SIGKILLs it while a step hangs: the workflow is left RUNNING with a dead runner. */
async function crash(): Promise<void> {
  const child = spawn(process.execPath, [join(fixtures, 'create.mjs'), data, 'crash'], {
    env: { ...process.env, WF_FIXTURE_HANG: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (d: Buffer) => d.includes('hanging') && resolve()),
  )
  child.kill('SIGKILL')
  await new Promise((resolve) => child.on('exit', resolve))
}

describe('the wf command on a folder', { timeout: 30_000 }, () => {
  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'wf-cli-app-'))
    data = join(app, 'data')
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
    await create('ok', 'failed', 'map')
    await crash()
  }, 60_000)
  afterAll(() => rm(app, { recursive: true, force: true }))

  it('lists workflows as an aligned table, and as JSON', async () => {
    const human = await wf(['--storage', data, 'list'])
    expect(human).toMatchObject({ code: 0, stderr: '' })
    expect(human.stdout.split('\n')).toEqual([
      'WORKFLOW ID  STATUS',
      'w-crash      RESUMABLE',
      'w-failed     FAILED',
      'w-map        SUCCESSFUL',
      'w-ok         SUCCESSFUL',
      '',
    ])
    const json = await wf(['list', '--json', '--storage', pathToFileURL(data).href])
    expect(JSON.parse(json.stdout)).toContainEqual({ workflowId: 'w-failed', status: 'FAILED' })
  })

  it('filters the list by status, and reads the storage from WF_STORAGE', async () => {
    const both = await wf(['list', '--status', 'FAILED', '--status', 'RESUMABLE', '--json'], {
      WF_STORAGE: data,
    })
    expect(JSON.parse(both.stdout).map((w: { workflowId: string }) => w.workflowId)).toEqual([
      'w-crash',
      'w-failed',
    ])
    const comma = await wf(['list', '--status', 'SUCCESSFUL,FAILED', '--json'], { WF_STORAGE: data })
    expect(JSON.parse(comma.stdout)).toHaveLength(3)
    const long = await wf(['list', '-l', '--status', 'SUCCESSFUL'], { WF_STORAGE: data })
    expect(long.stdout).toMatch(/w-ok +SUCCESSFUL +\d{4}-\d\d-\d\d [\d:]+ +\{"team":"a"\}/)
  })

  it('prints a status, and exits 1 for an unknown id and 2 for a bad one or a bad status', async () => {
    expect(await wf(['--storage', data, 'status', 'w-ok'])).toMatchObject({ code: 0, stdout: 'SUCCESSFUL\n' })
    const json = await wf(['--storage', data, '--json', 'status', 'w-crash'])
    expect(JSON.parse(json.stdout)).toEqual({ workflowId: 'w-crash', status: 'RESUMABLE' })
    const missing = await wf(['--storage', data, 'status', 'nope'])
    expect(missing).toMatchObject({ code: 1, stdout: '' })
    expect(missing.stderr).toMatch(/no workflow with id "nope"/)
    const missingJson = await wf(['--storage', data, '--json', 'status', 'nope'])
    expect(JSON.parse(missingJson.stderr)).toMatchObject({ error: { code: 'WF_NOT_FOUND' } })
    expect((await wf(['--storage', data, 'status', 'a\\b'])).code).toBe(2)
    const badStatus = await wf(['--storage', data, 'list', '--status', 'DONE'])
    expect(badStatus.code).toBe(2)
    expect(badStatus.stderr).toMatch(/RESUMABLE/)
  })

  it('exits 2 on usage errors and 0 for --help', async () => {
    expect((await wf(['bogus'])).code).toBe(2)
    expect((await wf(['status'])).code).toBe(2)
    expect((await wf(['list', '--nope'])).code).toBe(2)
    const help = await wf(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/resume-all/)
  })

  it('shows the step graph with continuations nested and steps not run yet', async () => {
    const ok = await wf(['--storage', data, 'show', 'w-ok'])
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/status +SUCCESSFUL/)
    expect(ok.stdout).toMatch(/steps: 6 of 6 done/)
    expect(ok.stdout).toMatch(/^cli-fan +SUCCESSFUL +1 +\d+ms/m)
    expect(ok.stdout).toMatch(/^├─ cli-fan~cli-num +SUCCESSFUL/m)
    expect(ok.stdout).toMatch(
      /^└─ cli-fan~cli-add +SUCCESSFUL +1 +\d+ms +cli-fan~cli-num, cli-fan~cli-num_1/m,
    )
    const failed = await wf(['--storage', data, 'show', 'w-failed'])
    expect(failed.stdout).toMatch(/error +Error: fixture failure \(in step cli-flaky\)/)
    expect(failed.stdout).toMatch(/^cli-flaky +FAILED/m)
    expect(failed.stdout).toMatch(/^cli-add {2}\(not run yet\) +PENDING +- +- +cli-num, cli-flaky/m)
    const json = JSON.parse((await wf(['--storage', data, '--json', 'show', 'w-ok'])).stdout)
    expect(json.workflow).toMatchObject({
      workflowId: 'w-ok',
      status: 'SUCCESSFUL',
      userMetadata: { team: 'a' },
    })
    const fanStep = json.steps.find((s: { stepId: string }) => s.stepId === 'cli-fan')
    expect(fanStep.children).toHaveLength(3)
  })

  it('shows what the workflow was submitted with, and marks steps whose code changed since', async () => {
    const plain = await wf(['--storage', data, 'show', 'w-ok'])
    expect(plain.stdout).toMatch(new RegExp(`^submitted +node ${process.version} ${process.platform}/`, 'm'))
    expect(plain.stdout).toContain('@wf/core@')
    // As if w-ok had been submitted by another build of cli-add.
    const storage = await createFileSystemStorage({ root: data })
    const recordKey = 'workflows/w-ok/workflow'
    const record = JSON.parse(new TextDecoder().decode((await storage.get(recordKey))?.data))
    // A small graph is inline in the workflow record.
    record.graph.fingerprints['cli-fan'] = '0000000000000000'
    await storage.put(recordKey, new TextEncoder().encode(JSON.stringify(record)))
    const marked = await wf(['--storage', data, 'show', 'w-ok', '--import', join(fixtures, 'steps.mjs')])
    expect(marked.code).toBe(0)
    expect(marked.stdout).toMatch(/^cli-fan {2}\(code changed\) +SUCCESSFUL/m)
    expect(marked.stdout).not.toMatch(/cli-num.*code changed/)
    // Without the step modules, nothing can be compared and nothing is marked.
    expect(plain.stdout).not.toContain('code changed')
  })

  it('prints outputs as JSON when they are JSON, and with util.inspect otherwise', async () => {
    expect((await wf(['--storage', data, 'output', 'w-ok'])).stdout).toBe('22\n')
    expect((await wf(['--storage', data, 'output', 'w-ok', '--step', 'cli-fan'])).stdout).toBe('21\n')
    expect((await wf(['--storage', data, 'output', 'w-map'])).stdout).toBe("Map(1) { 1 => 'one' }\n")
    const json = JSON.parse((await wf(['--storage', data, '--json', 'output', 'w-map'])).stdout)
    expect(json).toEqual({ workflowId: 'w-map', output: "Map(1) { 1 => 'one' }", jsonable: false })
    const failed = await wf(['--storage', data, 'output', 'w-failed'])
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/failed in step "cli-flaky": Error: fixture failure/)
    const noStep = await wf(['--storage', data, 'output', 'w-ok', '--step', 'nope'])
    expect(noStep.code).toBe(1)
    expect(noStep.stderr).toMatch(/no step "nope"/)
  })

  it('resumes a workflow whose runner was killed, once its steps are imported', async () => {
    const without = await wf(['--storage', data, 'resume', 'w-crash'])
    expect(without.code).toBe(1)
    expect(without.stderr).toMatch(/needs step "cli-\w+", which is not registered/)
    expect((await wf(['--storage', data, 'status', 'w-crash'])).stdout).toBe('RESUMABLE\n')
    const badImport = await wf(['--storage', data, 'resume', 'w-crash', '--import', './nowhere.mjs'])
    expect(badImport.code).toBe(1)
    expect(badImport.stderr).toMatch(/could not import \.\/nowhere\.mjs/)
    const resumed = await wf([
      '--storage',
      data,
      'resume',
      'w-crash',
      '--import',
      join(fixtures, 'steps.mjs'),
    ])
    expect(resumed).toMatchObject({ code: 0, stdout: '9\n', stderr: '' })
    expect((await wf(['--storage', data, 'status', 'w-crash'])).stdout).toBe('SUCCESSFUL\n')
  })

  it('resumes all, FAILED ones with --include-failed', async () => {
    const none = await wf(['--storage', data, 'resume-all', '--import', join(fixtures, 'steps.mjs')])
    expect(none).toMatchObject({ code: 0, stdout: 'no workflows to resume\n' })
    const all = await wf([
      '--storage',
      data,
      '--json',
      'resume-all',
      '--include-failed',
      '--import',
      join(fixtures, 'steps.mjs'),
    ])
    expect(JSON.parse(all.stdout)).toEqual([
      { workflowId: 'w-failed', status: 'SUCCESSFUL', output: 5, jsonable: true },
    ])
  })

  it('cancels and deletes', async () => {
    expect(await wf(['--storage', data, 'cancel', 'w-ok'])).toMatchObject({
      code: 0,
      stdout: 'w-ok is SUCCESSFUL: it had finished, nothing to cancel\n',
    })
    await wf(['--storage', data, 'delete', 'w-failed'])
    await create('failed')
    expect(await wf(['--storage', data, 'cancel', 'w-failed'])).toMatchObject({
      code: 0,
      stdout: 'canceled w-failed: it was FAILED, nothing was running it\n',
    })
    expect((await wf(['--storage', data, 'resume', 'w-failed'])).stderr).toMatch(
      /CANCELED and cannot be resumed/,
    )
    expect(await wf(['--storage', data, 'delete', 'w-failed'])).toMatchObject({
      code: 0,
      stdout: 'deleted w-failed\n',
    })
    expect((await wf(['--storage', data, 'delete', 'w-failed'])).code).toBe(1)
    const list = JSON.parse((await wf(['--storage', data, '--json', 'list'])).stdout)
    expect(list.map((w: { workflowId: string }) => w.workflowId)).not.toContain('w-failed')
  })
})
