// Three worker processes (createWorker) share one S3 prefix and twelve submitted workflows; one is
// killed with SIGKILL mid-run and the two survivors finish every workflow. Every part logs
// "<pid> <workflowId> <stepId> <startMs> <endMs>" when it ends, so the test can check that no
// workflow ever had two runners at once. Runs on the real gateway (WF_S3_ENDPOINT).

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Runtime } from '@wf/core'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { credentials, describeS3, endpoint, freshBucket, uniqueName } from './__tests__/s3-env.js'
import { s3Uri } from './__tests__/workflow-env.js'
import { S3Storage } from './s3-storage.js'

const CHILD = join(dirname(fileURLToPath(import.meta.url)), '__tests__', 'fixtures', 'worker-child.mjs')
const WORKFLOWS = 12

interface Child {
  proc: ChildProcessWithoutNullStreams
  pid: number
  out(): string
  err(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

function child(args: string[], env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [CHILD, ...args], {
    env: {
      ...process.env,
      ...env,
      // The URI carries no credentials: the SDK's default chain reads them from here.
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  })
  let out = ''
  let err = ''
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  )
  return { proc, pid: proc.pid as number, out: () => out, err: () => err, exited }
}

interface Line {
  pid: number
  workflowId: string
  stepId: string
  start: number
  end: number
}

function lines(log: string): Line[] {
  if (!existsSync(log)) return []
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [pid, workflowId, stepId, start, end] = line.split(' ')
      return {
        pid: Number(pid),
        workflowId: workflowId ?? '',
        stepId: stepId ?? '',
        start: Number(start),
        end: Number(end),
      }
    })
}

describeS3('workers on S3', () => {
  let bucket = ''
  let remove: () => Promise<void> = async () => {}
  beforeAll(async () => {
    ;({ bucket, remove } = await freshBucket('workers'))
  })
  afterAll(async () => {
    await remove()
  })

  it('two surviving workers of three finish every workflow of one killed mid-run, one runner per workflow at a time', {
    timeout: 120_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wf-s3-workers-'))
    const log = join(dir, 'steps.log')
    const prefix = uniqueName('workers')
    const storage = new S3Storage({ bucket, prefix, endpoint, credentials })
    const runtime = new Runtime(storage)
    const store = await runtime.store()
    const env = { WF_STORAGE: s3Uri(endpoint ?? '', bucket, prefix), WF_TEST_LOG: log }
    const workers: Child[] = []
    try {
      const submit = child(['submit', String(WORKFLOWS)], env)
      expect((await submit.exited).code, submit.err()).toBe(0)
      const ids = Array.from({ length: WORKFLOWS }, (_, n) => `job-${n}`)
      for (let i = 0; i < 3; i++) workers.push(child(['worker'], env))
      await vi.waitFor(
        () =>
          expect(
            workers.every((w) => w.out().includes('ready\n')),
            'the workers to start',
          ).toBe(true),
        { timeout: 30_000, interval: 20 },
      )
      const [doomed, ...survivors] = workers as [Child, Child, Child]
      // Kill one once others ran steps too and it holds a workflow (its record names it as owner).
      const heldBy = async (pid: number) => {
        const held: string[] = []
        for (const id of ids) if ((await store.requireWorkflow(id)).record.owner?.pid === pid) held.push(id)
        return held
      }
      await vi.waitFor(
        async () => {
          const pids = new Set(lines(log).map((l) => l.pid))
          const ran = pids.has(doomed.pid) && pids.size >= 2 && (await heldBy(doomed.pid)).length > 0
          expect(ran, 'the workers to run steps').toBe(true)
        },
        { timeout: 60_000, interval: 20 },
      )
      doomed.proc.kill('SIGKILL')
      const killedAt = (await doomed.exited).at

      const outputs = await Promise.all(ids.map((id) => runtime.waitForResult(id, 100)))
      expect(outputs).toEqual(Array.from({ length: WORKFLOWS }, (_, n) => 30 * n + 3))
      for (const w of survivors) w.proc.kill('SIGTERM')
      for (const w of survivors) {
        expect((await w.exited).code, w.err()).toBe(0)
        expect(w.err()).toBe('')
      }

      const all = lines(log)
      const doomedLines = all.filter((l) => l.pid === doomed.pid)
      expect(doomedLines.every((l) => l.end <= killedAt)).toBe(true)
      for (const workflowId of ids) {
        const mine = all.filter((l) => l.workflowId === workflowId)
        for (const a of mine) {
          for (const b of mine) {
            if (a.pid === b.pid) continue
            expect(a.end <= b.start || b.end <= a.start, `${workflowId}: ${a.pid} and ${b.pid} overlap`).toBe(
              true,
            )
          }
        }
        // Each step committed once; one ran twice only if the killed worker died before committing it.
        expect((await store.listStepIds(workflowId)).sort()).toEqual([
          's3w.join',
          's3w.part',
          's3w.part_1',
          's3w.part_2',
        ])
        const byStep = new Map<string, number[]>()
        for (const l of mine) byStep.set(l.stepId, [...(byStep.get(l.stepId) ?? []), l.pid])
        for (const [stepId, pids] of byStep) {
          if (pids.length > 1) {
            expect(pids, `${workflowId}/${stepId}`).toHaveLength(2)
            expect(pids[0], `${workflowId}/${stepId}`).toBe(doomed.pid)
          }
        }
        const { record } = await store.requireWorkflow(workflowId)
        expect(record.status).toBe('SUCCESSFUL')
        expect(record.owner).toBeUndefined()
      }
    } finally {
      for (const w of workers) w.proc.kill('SIGKILL')
      await storage.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
