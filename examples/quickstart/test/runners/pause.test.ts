// A runner paused with SIGSTOP past its lease, while another process takes the workflow over, then
// resumed with SIGCONT: it must stop without committing anything (fencing). On one host the paused
// pid is alive, so the takeover waits for the lease to expire: that is what this test exercises.
// Each step's result names the process that produced it.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Runtime } from '@wf/core'
import { expect, it, vi } from 'vitest'
import { lastJson, logLines, runner } from './helpers.js'

const LEASE = { WF_TEST_LEASE_TTL_MS: '1000', WF_TEST_HEARTBEAT_MS: '200' }

it('a runner paused past its lease and then continued commits nothing and stops with WF_LEASE_LOST; the taker finishes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wf-pause-'))
  const storage = join(dir, 'data')
  const log = join(dir, 'steps.log')
  const workflowId = 'paused'
  const runtime = new Runtime(storage)
  const store = await runtime.store()
  const slowStarts = () =>
    logLines(log).filter(([, stepId, what]) => stepId === 'rp.slow' && what === 'start')
  try {
    const env = { ...LEASE, WF_TEST_LOG: log, WF_TEST_SLOW_MS: '2500' }
    const paused = runner('pause', storage, workflowId, env)
    await vi.waitFor(() => expect(slowStarts(), 'the first runner to start the slow step').toHaveLength(1), {
      timeout: 30_000,
      interval: 10,
    })
    paused.proc.kill('SIGSTOP')
    try {
      const held = (await store.requireWorkflow(workflowId)).record
      expect(held.owner?.pid).toBe(paused.pid)
      // Alive and leased: nobody may take it over yet.
      if ((held.leaseExpiresAt ?? 0) > Date.now() + 100) expect(runtime.deriveStatus(held)).toBe('RUNNING')
      await vi.waitFor(
        async () =>
          expect(
            runtime.deriveStatus((await store.requireWorkflow(workflowId)).record),
            'the paused runner’s lease to expire',
          ).toBe('RESUMABLE'),
        { timeout: 10_000, interval: 10 },
      )
      const taker = runner('pause', storage, workflowId, env)
      // Continue the paused runner while the taker is inside the same slow step: the paused one's
      // step body finishes first (its time ran out during the pause), and its commit must be refused.
      await vi.waitFor(() => expect(slowStarts(), 'the taker to start the slow step').toHaveLength(2), {
        timeout: 30_000,
        interval: 10,
      })
      const continuedAt = Date.now()
      paused.proc.kill('SIGCONT')

      const pausedExit = await paused.exited
      expect(pausedExit.code).toBe(1)
      expect(lastJson(paused).error?.code).toBe('WF_LEASE_LOST')
      expect(paused.stderr()).toBe('')
      // Its slow step did finish after SIGCONT, and nothing it produced was committed.
      const pausedEnd = logLines(log).find(
        ([pid, stepId, what]) => Number(pid) === paused.pid && stepId === 'rp.slow' && what === 'end',
      )
      expect(Number(pausedEnd?.[3])).toBeGreaterThanOrEqual(continuedAt)
      expect(await store.listStepIds(workflowId)).toEqual(['rp.first'])

      expect((await taker.exited).code).toBe(0)
      expect(taker.stderr()).toBe('')
      // The first step was committed by the paused runner before its pause; the rest by the taker.
      expect(lastJson(taker)).toEqual({ output: { pid: paused.pid, slowBy: taker.pid, lastBy: taker.pid } })
      const { record } = await store.requireWorkflow(workflowId)
      expect(record.status).toBe('SUCCESSFUL')
      expect(record.owner).toBeUndefined()
      expect(record.runs).toBe(2)
    } finally {
      paused.proc.kill('SIGCONT')
    }
  } finally {
    await (await runtime.storage()).close?.()
    rmSync(dir, { recursive: true, force: true })
  }
}, 90_000)
