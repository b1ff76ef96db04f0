// An S3 outage in the middle of a workflow, on a private gateway (pausing the shared one would
// break the other test files): the runner gives up with StorageUnavailableError once its retry
// budget is spent, nothing committed is lost, and a fresh process resumes the workflow.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { storeKeys, WorkflowStore } from '@wf/core'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { type PrivateGateway, startPrivateGateway } from './__tests__/private-gateway.js'
import { credentials, describeS3, uniqueName } from './__tests__/s3-env.js'
import {
  executions,
  expectedReport,
  parseResult,
  ranBy,
  reportChild,
  s3Uri,
  sleep,
  stepCount,
} from './__tests__/workflow-env.js'
import { S3Storage } from './s3-storage.js'

// Short enough that the runner gives up within seconds of the gateway going silent: a paused
// radosgw still accepts connections, so each request fails only by its socket timeout.
const RETRY_BUDGET_MS = 1_500
const SOCKET_TIMEOUT_MS = 1_000

describeS3('a workflow when S3 goes away', () => {
  let gateway: PrivateGateway | undefined
  let unavailable = ''
  let bucket = ''

  beforeAll(async () => {
    try {
      gateway = await startPrivateGateway()
    } catch (error) {
      // Like the other S3 suites: CI must run this, a developer without Ceph gets a notice.
      if (process.env.WF_S3_REQUIRED === '1') throw error
      unavailable = error instanceof Error ? error.message : String(error)
      console.warn(`@wf/storage-s3: outage test SKIPPED: ${unavailable}`)
      return
    }
    bucket = uniqueName('outage')
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: gateway.endpoint,
      forcePathStyle: true,
      credentials,
      maxAttempts: 3,
    })
    await client.send(new CreateBucketCommand({ Bucket: bucket }))
    client.destroy()
  }, 120_000)
  afterAll(async () => {
    // The whole cluster goes, with its in-memory data: no bucket to empty.
    await gateway?.stop()
  }, 30_000)

  it('rejects with StorageUnavailableError while the gateway is paused, loses no committed step, and resumes without re-running them', {
    timeout: 60_000,
  }, async (ctx) => {
    if (gateway === undefined) return ctx.skip(unavailable)
    const dir = mkdtempSync(join(tmpdir(), 'wf-s3-outage-'))
    const prefix = uniqueName('o')
    const storage = new S3Storage({ bucket, prefix, endpoint: gateway.endpoint, credentials })
    let paused = false
    try {
      const workflowId = 'outage'
      const log = join(dir, 'executions.log')
      const days = 12
      const store = new WorkflowStore(storage)
      const runner = reportChild({
        command: 'run',
        workflowId,
        storage: s3Uri(
          gateway.endpoint,
          bucket,
          prefix,
          `&retryBudgetMs=${RETRY_BUDGET_MS}&socketTimeoutMs=${SOCKET_TIMEOUT_MS}`,
        ),
        log,
        days,
        stepDelayMs: 300,
      })
      await vi.waitFor(
        async () =>
          expect(
            (await store.listStepIds(workflowId)).length,
            `steps committed; log: ${executions(log).length}`,
          ).toBeGreaterThanOrEqual(4),
        { timeout: 30_000, interval: 20 },
      )
      // What was committed before the outage, byte for byte, with its version.
      const before = new Map<string, { data: string; version: string }>()
      for (const id of await store.listStepIds(workflowId)) {
        const found = await storage.get(storeKeys.step(workflowId, id))
        if (found) before.set(id, { data: Buffer.from(found.data).toString('hex'), version: found.version })
      }

      gateway.signal('SIGSTOP')
      paused = true
      const pausedAt = Date.now()
      const failed = await runner.exited
      const pausedFor = Date.now() - pausedAt
      gateway.signal('SIGCONT')
      paused = false

      const result = parseResult(failed.stdout, failed.stderr)
      expect(result.error).toMatchObject({
        name: 'StorageUnavailableError',
        code: 'WF_STORAGE_UNAVAILABLE',
        unavailable: true,
      })
      expect(result.error?.message).toMatch(/retryBudgetMs/)
      expect(failed.code).toBe(1)
      expect(pausedFor).toBeGreaterThanOrEqual(RETRY_BUDGET_MS)

      // Requests the dead runner left queued in the paused gateway land now; let them settle
      // before a new runner takes the workflow over by compare-and-swap.
      await storage.get(storeKeys.workflow(workflowId))
      await sleep(1_000)
      for (const [id, record] of before) {
        const found = await storage.get(storeKeys.step(workflowId, id))
        expect(found && Buffer.from(found.data).toString('hex')).toBe(record.data)
        expect(found?.version).toBe(record.version)
      }

      const resumer = reportChild({
        command: 'resume',
        workflowId,
        storage: s3Uri(gateway.endpoint, bucket, prefix),
        log,
        stepDelayMs: 300,
      })
      const resumed = await resumer.exited
      expect(parseResult(resumed.stdout, resumed.stderr)).toEqual({ output: expectedReport(days) })
      expect(resumed.code).toBe(0)
      const rerun = ranBy(log, resumer.process.pid)
      expect(rerun.length).toBeGreaterThan(0)
      expect(rerun.filter((id) => before.has(id))).toEqual([])
      expect(await store.listStepIds(workflowId)).toHaveLength(stepCount(days))
    } finally {
      if (paused) gateway.signal('SIGCONT')
      await storage.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
