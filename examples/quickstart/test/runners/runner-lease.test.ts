// A runner on "another machine" (a child process whose os.hostname() differs, see
// fixtures/elsewhere.mjs) drives five workflows under its one runner lease and is killed with
// SIGKILL. Nobody on this host can see that its pid is gone, so its workflows stay RUNNING until
// its runner record (`runners/<runnerId>`) expires, then become RESUMABLE, and a worker takes them
// over and finishes them.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Runtime, storeKeys } from '@wf/core'
import { expect, it, vi } from 'vitest'
import { logLines, runnerElsewhere, worker } from './helpers.js'

const WORKFLOWS = 5
const TTL_MS = 1000

it('the workflows of a runner killed on another machine become RESUMABLE when its runner lease runs out, and a worker finishes them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wf-runner-lease-'))
  const storage = join(dir, 'data')
  const log = join(dir, 'steps.log')
  const ids = Array.from({ length: WORKFLOWS }, (_, n) => `far-${n}`)
  const runtime = new Runtime(storage)
  const store = await runtime.store()
  const raw = await runtime.storage()
  try {
    const doomed = runnerElsewhere(storage, WORKFLOWS, {
      WF_TEST_LOG: log,
      WF_TEST_SLOW_MS: '60000',
      WF_TEST_LEASE_TTL_MS: String(TTL_MS),
      WF_TEST_HEARTBEAT_MS: '200',
    })
    const slowStarts = () =>
      logLines(log).filter(
        ([pid, stepId, what]) => Number(pid) === doomed.pid && stepId === 'rp.slow' && what === 'start',
      )
    await vi.waitFor(
      () => expect(slowStarts(), 'the runner to start every slow step').toHaveLength(WORKFLOWS),
      { timeout: 30_000, interval: 10 },
    )
    // Let it renew its runner lease a few times: the workflows must stay RUNNING all along.
    await new Promise((resolve) => setTimeout(resolve, 2 * TTL_MS))
    for (const id of ids) {
      expect(runtime.deriveStatus((await store.requireWorkflow(id)).record)).toBe('RUNNING')
    }
    doomed.proc.kill('SIGKILL')
    const killedAt = (await doomed.exited).at

    // Every record names the one runner and says its lease is the runner's; none stores an expiry.
    const first = (await store.requireWorkflow('far-0')).record
    const owner = first.owner
    expect(owner?.host).toBe('another-machine')
    expect(owner?.pid).toBe(doomed.pid)
    for (const id of ids) {
      const stored = JSON.parse(Buffer.from((await raw.get(storeKeys.workflow(id)))?.data ?? []).toString())
      expect(stored.owner).toEqual(owner)
      expect(stored.lease).toBe('runner')
      expect(stored.leaseExpiresAt).toBeUndefined()
    }
    const runnerRecord = await store.readRunner(owner?.runnerId as string)
    const expiresAt = runnerRecord?.leaseExpiresAt as number
    expect(expiresAt).toBeGreaterThan(killedAt - TTL_MS)
    expect(expiresAt).toBeLessThanOrEqual(killedAt + TTL_MS)

    // RUNNING while the runner record holds (its pid is dead, but on "another machine"), then RESUMABLE.
    // The statuses read before the lease ran out, checked after the wait (a failed check inside
    // vi.waitFor would only be retried).
    const beforeExpiry: string[][] = []
    await vi.waitFor(
      async () => {
        const statuses = await Promise.all(
          ids.map(async (id) => runtime.deriveStatus((await store.requireWorkflow(id)).record)),
        )
        if (Date.now() < expiresAt - 50) beforeExpiry.push(statuses)
        expect(
          statuses.every((s) => s === 'RESUMABLE'),
          'the runner lease to run out',
        ).toBe(true)
      },
      { timeout: 10_000, interval: 10 },
    )
    for (const statuses of beforeExpiry) expect(statuses.every((s) => s === 'RUNNING')).toBe(true)
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt)

    const taker = worker(storage, { WF_TEST_LOG: log, WF_TEST_SLOW_MS: '50', WF_TEST_CONCURRENCY: '5' })
    const outputs = await Promise.all(ids.map((id) => runtime.waitForResult(id, 50)))
    // The first step was committed by the killed runner, the rest by the worker.
    expect(outputs).toEqual(ids.map(() => ({ pid: doomed.pid, slowBy: taker.pid, lastBy: taker.pid })))
    taker.proc.kill('SIGTERM')
    expect((await taker.exited).code).toBe(0)
    expect(taker.stderr()).toBe('')
    for (const id of ids) {
      const { record } = await store.requireWorkflow(id)
      expect(record.status).toBe('SUCCESSFUL')
      expect(record.runs).toBe(2)
      expect(record.owner).toBeUndefined()
    }
  } finally {
    await raw.close?.()
    rmSync(dir, { recursive: true, force: true })
  }
}, 90_000)
