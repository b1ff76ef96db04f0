// `wf show` on a failed workflow, spawned as the real binary on a real folder that a fixture
// application filled: the failed step's attempts, duration, error and stack, a caught error, and
// a fan-out continuation whose runner was killed with SIGKILL, resumed and read back.

import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Storage, WorkflowStore } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type CliResult, runFixture, runWf } from './test-support/cli-run.js'
import { folderStorage } from './test-support/harness.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const _bin = join(here, '../bin/wf.js')
const fixtures = join(here, 'test-support/fixtures')
const steps = join(fixtures, 'failing-steps.mjs')

let app: string
let data: string
let storage: Storage
let store: WorkflowStore

function wf(args: string[]): Promise<CliResult> {
  return runWf(['--storage', data, ...args], { cwd: app, timeout: 20_000 })
}

async function create(...scenarios: string[]): Promise<void> {
  await runFixture('create-failures.mjs', [data, ...scenarios])
}

describe('wf show and a fan-out on a folder', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'wf-cli-failures-'))
    data = join(app, 'data')
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
    await create('charge', 'refund')
    storage = await folderStorage(data)
    store = new WorkflowStore(storage)
  }, 60_000)
  afterAll(async () => {
    await storage?.close?.()
    await rm(app, { recursive: true, force: true })
  })

  it("shows the failed step's attempts, duration, error and the first lines of its stack", async () => {
    const shown = await wf(['show', 'w-charge'])
    expect(shown).toMatchObject({ code: 0, stderr: '' })
    expect(shown.stdout).toMatch(/^orders\.chargeCard +FAILED +3 +\d+(ms|\.\ds) +fx-amount$/m)
    expect(shown.stdout).toMatch(/^failures:$/m)
    expect(shown.stdout).toMatch(
      /^ {2}orders\.chargeCard: 3 failed attempts over \d+(ms|\.\ds) \(first started [\d-]+ [\d:]+\), failed$/m,
    )
    for (const n of [1, 2, 3]) {
      expect(shown.stdout).toMatch(
        new RegExp(`^ {4}attempt ${n} +[\\d-]+ [\\d:]+ +TypeError: card declined for 1250 cents$`, 'm'),
      )
    }
    // The error, then the first frames of its stack: the throwing line is in the fixture.
    expect(shown.stdout).toMatch(
      /^ {4}TypeError: card declined for 1250 cents\n {6}at .*failing-steps\.mjs:\d+/m,
    )
    const json = JSON.parse((await wf(['--json', 'show', 'w-charge'])).stdout)
    const charge = json.steps.find((s: { stepId: string }) => s.stepId === 'orders.chargeCard')
    expect(charge).toMatchObject({
      status: 'FAILED',
      attempts: 3,
      failures: { attempts: 3, errors: [{ attempt: 1 }, { attempt: 2 }, { attempt: 3 }] },
    })
    expect(charge.durationMs).toBeGreaterThanOrEqual(0)
  })

  it('shows a step whose error catchExceptions caught as SUCCESSFUL, with the error it caught', async () => {
    const shown = await wf(['show', 'w-refund'])
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(
      /^orders\.refund +SUCCESSFUL \(caught RangeError: refund of 300 cents is over the limit\) +1 /m,
    )
    expect(shown.stdout).toMatch(
      /orders\.refund: 1 failed attempt over .*catchExceptions caught the last error$/m,
    )
    expect(shown.stdout).toMatch(/^ {4}RangeError: refund of 300 cents is over the limit\n {6}at /m)
  })

  it('resumes a fan-out continuation whose runner was killed, running only the steps that had not committed', async () => {
    const child = spawn(process.execPath, [join(fixtures, 'create-failures.mjs'), data, 'fan'], {
      env: { ...process.env, WF_FIXTURE_HANG: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let printed = ''
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        printed += d.toString()
        if (printed.includes('hanging')) resolve()
      })
      child.once('exit', (code) =>
        reject(new Error(`the fixture exited (${code}) before hanging: ${printed}`)),
      )
    })
    // The other leaves commit while the third hangs.
    const leaves = ['fx-fan~fx-leaf', 'fx-fan~fx-leaf_1', 'fx-fan~fx-leaf_3']
    await vi.waitFor(
      async () => expect(await store.listStepIds('w-fan')).toEqual(expect.arrayContaining(leaves)),
      {
        timeout: 20_000,
      },
    )
    const exited = new Promise((resolve) => child.once('exit', resolve))
    expect(child.exitCode, 'the fixture must still be running, to be killed').toBeNull()
    child.kill('SIGKILL')
    await exited
    const before = await Promise.all(leaves.map((id) => store.readStep('w-fan', id)))
    expect((await wf(['status', 'w-fan'])).stdout).toBe('RESUMABLE\n')

    const resumed = await wf(['resume', 'w-fan', '--import', steps])
    expect(resumed).toMatchObject({ code: 0, stdout: '100\n', stderr: '' })
    expect(await Promise.all(leaves.map((id) => store.readStep('w-fan', id)))).toEqual(before)
    expect((await wf(['output', 'w-fan', '--step', 'fx-fan'])).stdout).toBe(
      `${JSON.stringify([10, 20, 30, 40], null, 2)}\n`,
    )
    const shown = await wf(['show', 'w-fan'])
    expect(shown.stdout).toMatch(/^fx-fan +SUCCESSFUL/m)
    expect(shown.stdout).toMatch(/^└─ fx-fan~wf:collect +SUCCESSFUL +1 +\S+ +fx-fan~fx-leaf, /m)
  })
})
