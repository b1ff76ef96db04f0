// Whole workflows on S3 through core's engine: a run with a fan-out and a continuation opened with
// init('s3://…'), and a runner killed with SIGKILL mid-run and resumed by a fresh process. The
// runners are real child processes on the built packages (build before running these).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { WorkflowStore } from '@wf/core'
import { afterAll, beforeAll, beforeEach, expect, it, vi } from 'vitest'
import { credentials, describeS3, endpoint, freshBucket, testClient, uniqueName } from './__tests__/s3-env.js'
import {
  executions,
  expectedReport,
  parseResult,
  ranBy,
  reportChild,
  s3Uri,
  stepCount,
} from './__tests__/workflow-env.js'
import { S3Storage } from './s3-storage.js'

describeS3('workflows on S3', () => {
  let bucket = ''
  let remove: () => Promise<void> = async () => {}
  let dir = ''
  let prefix = ''
  let storage: S3Storage

  beforeAll(async () => {
    ;({ bucket, remove } = await freshBucket('workflow'))
  })
  afterAll(async () => {
    await remove()
  })
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wf-s3-workflow-'))
    prefix = uniqueName('w')
    storage = new S3Storage({ bucket, prefix, endpoint, credentials })
    return async () => {
      await storage.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('runs a fan-out with a continuation on s3:// and keeps every step record in the bucket', {
    timeout: 60_000,
  }, async () => {
    const workflowId = 'fan-out'
    const log = join(dir, 'executions.log')
    const child = reportChild({
      command: 'run',
      workflowId,
      storage: s3Uri(endpoint ?? '', bucket, prefix),
      log,
      days: 5,
      stepDelayMs: 10,
    })
    const { code, stdout, stderr } = await child.exited
    expect(parseResult(stdout, stderr)).toEqual({ output: expectedReport(5) })
    expect(code).toBe(0)

    const store = new WorkflowStore(storage)
    expect((await store.readWorkflow(workflowId))?.record.status).toBe('SUCCESSFUL')
    const stepIds = await store.listStepIds(workflowId)
    expect(stepIds).toHaveLength(stepCount(5))
    // Each step ran once, and each run is a record in the bucket.
    expect(
      executions(log)
        .map((e) => e.stepId)
        .sort(),
    ).toEqual([...stepIds].sort())
    expect((await store.readStep(workflowId, 's3test.planReport'))?.kind).toBe('continuation')
    expect((await store.readStep(workflowId, 's3test.planReport~s3test.report'))?.kind).toBe('value')
    // Stored under the prefix as plain object names, as another S3 tool would see them.
    const client = testClient()
    const raw = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/workflows/${workflowId}/steps/` }),
    )
    client.destroy()
    expect((raw.Contents ?? []).map((o) => o.Key).sort()).toEqual(
      stepIds.map((id) => `${prefix}/workflows/${workflowId}/steps/${id}`).sort(),
    )
  })

  it('resumes a runner killed with SIGKILL in a fresh process without re-running committed steps', {
    timeout: 90_000,
  }, async () => {
    const workflowId = 'killed'
    const log = join(dir, 'executions.log')
    const uri = s3Uri(endpoint ?? '', bucket, prefix)
    const days = 12
    const store = new WorkflowStore(storage)
    const victim = reportChild({ command: 'run', workflowId, storage: uri, log, days, stepDelayMs: 200 })
    // Kill once the continuation and a few days are committed, while slower days still run.
    await vi.waitFor(
      async () =>
        expect(
          (await store.listStepIds(workflowId)).length,
          `steps committed; log: ${executions(log).length}`,
        ).toBeGreaterThanOrEqual(4),
      { timeout: 45_000, interval: 20 },
    )
    victim.process.kill('SIGKILL')
    const killed = await victim.exited
    expect(killed.signal).toBe('SIGKILL')
    const committed = new Set(await store.listStepIds(workflowId))
    expect(committed.size).toBeGreaterThanOrEqual(4)
    expect(committed.size).toBeLessThan(stepCount(days))

    const resumer = reportChild({ command: 'resume', workflowId, storage: uri, log, stepDelayMs: 200 })
    const { code, stdout, stderr } = await resumer.exited
    expect(parseResult(stdout, stderr)).toEqual({ output: expectedReport(days) })
    expect(code).toBe(0)

    const rerun = ranBy(log, resumer.process.pid)
    expect(rerun.length).toBeGreaterThan(0)
    expect(rerun.filter((id) => committed.has(id))).toEqual([])
    // Every committed step ran in the killed process, and every step has a record now.
    for (const id of committed) expect(ranBy(log, victim.process.pid)).toContain(id)
    expect(await store.listStepIds(workflowId)).toHaveLength(stepCount(days))
    expect((await store.readWorkflow(workflowId))?.record.status).toBe('SUCCESSFUL')
  })
})
