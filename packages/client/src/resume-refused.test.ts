// A resume that cannot go on (a step not registered here, a code change refused, an unreadable
// record, a storage error) leaves a FAILED workflow exactly as it was; one whose runner dies
// before its first commit reads FAILED again, so no worker re-runs it unasked. On memory, a real
// folder and, when the gateway is there, a real S3 bucket; the dying runner is a child process
// killed with SIGKILL.

import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  CorruptRecordError,
  createWorker,
  Runtime,
  StepNotRegisteredError,
  type Storage,
  StorageUnavailableError,
  storeKeys,
  WorkflowCodeChangedError,
  WorkflowExecutionError,
  type WorkflowRecord,
  type WorkflowStore,
} from '@wf/core'
import { interceptStorage } from '@wf/core/testing'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { WorkflowClient } from './index.js'
import { first, pay, second } from './test-support/fixtures/resume-steps.mjs'
import { type Backend, backends } from './test-support/harness.js'
import { openS3Place, s3 } from './test-support/places.js'

const child = fileURLToPath(new URL('./test-support/fixtures/resume-child.mjs', import.meta.url))

interface Opened {
  storage: Storage
  /** The URI a child process opens the same storage with (none for memory). */
  uri?: string
  cleanup(): Promise<void>
}

/** A fresh bucket on the test gateway, through the S3 backend's build; removed by cleanup. */
const s3Backend: Backend & { open(): Promise<Opened> } = {
  name: 's3',
  open: async () => {
    const { storage, uri, close } = await openS3Place('wf-resume', { keys: 'wf', removeBucket: true })
    return { storage, uri, cleanup: close }
  },
}

const withS3 = s3.available
if (!withS3 && process.env.WF_S3_REQUIRED === '1') {
  it('has an S3 endpoint and a built @wf/storage-s3 to test against', () => {
    throw new Error('WF_S3_REQUIRED=1 but WF_S3_ENDPOINT is not set or @wf/storage-s3 is not built')
  })
}

const fast = { leaseTtlMs: 1000, heartbeatMs: 100 }
const ENV = ['RF_FAIL', 'RF_HANG', 'RF_HANG_AT'] as const

/** The stored record, exactly: its version and its JSON. */
async function snapshot(storage: Storage, workflowId: string): Promise<{ version: string; text: string }> {
  const value = await storage.get(storeKeys.workflow(workflowId))
  if (!value) throw new Error(`no record for ${workflowId}`)
  return { version: value.version, text: new TextDecoder().decode(value.data) }
}

/** Starts a child that resumes `workflowId`; resolves once it hangs in step `hangAt`. */
async function resumeInChild(
  uri: string,
  workflowId: string,
  hangAt: string,
  dir: string,
): Promise<ChildProcess> {
  const marker = join(dir, `${workflowId}.started`)
  const proc = spawn(process.execPath, [child, uri, workflowId], {
    env: {
      ...process.env,
      RF_HANG: marker,
      RF_HANG_AT: hangAt,
      ...s3.childEnv,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  proc.stderr?.on('data', (chunk) => {
    stderr += chunk
  })
  await vi.waitFor(() => expect(existsSync(marker) || proc.exitCode !== null).toBe(true), { timeout: 20_000 })
  if (!existsSync(marker)) throw new Error(`the resuming child exited early: ${stderr}`)
  return proc
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null)
    throw new Error('the resuming child had exited already')
  const gone = new Promise((resolve) => proc.once('exit', resolve))
  proc.kill('SIGKILL')
  await gone
}

for (const backend of withS3 ? [...backends, s3Backend] : backends) {
  describe(`a resume that cannot go on (${backend.name})`, () => {
    let opened: Opened
    let runtime: Runtime
    let client: WorkflowClient
    let store: WorkflowStore
    let dir: string

    beforeEach(async () => {
      opened = (await backend.open()) as Opened
      if (backend.name === 'folder' && 'dir' in opened)
        opened.uri = pathToFileURL((opened as { dir: string }).dir).href
      runtime = new Runtime(opened.storage, fast)
      client = new WorkflowClient({ runtime })
      store = await runtime.store()
      dir = mkdtempSync(join(tmpdir(), 'wf-resume-refused-'))
      for (const name of ENV) delete process.env[name]
    })
    afterEach(async () => {
      for (const name of ENV) delete process.env[name]
      await runtime.idle()
      await opened.cleanup()
      rmSync(dir, { recursive: true, force: true })
    })

    /** Runs pay(second(first(n))) until `rf-second` fails: a FAILED workflow, `rf-first` committed. */
    async function failedWorkflow(workflowId: string, n = 1): Promise<WorkflowRecord> {
      process.env.RF_FAIL = '1'
      await expect(runtime.run(pay(second(first(n))), { workflowId })).rejects.toThrow(/second failed/)
      delete process.env.RF_FAIL
      const { record } = await store.requireWorkflow(workflowId)
      expect(record.status).toBe('FAILED')
      return record
    }

    it('leaves a FAILED workflow as it was when a step left to run is not registered here', async () => {
      await failedWorkflow('rf-missing')
      // As if the process had not imported the module of `rf-second`: its stored name is unknown.
      const storage = opened.storage
      const { record } = await store.requireWorkflow('rf-missing')
      const graph = JSON.stringify(await store.loadGraph(record)).replaceAll('"rf-second"', '"rf-gone"')
      const next = { ...record, graph: JSON.parse(graph) }
      await store.updateWorkflow(await store.requireWorkflow('rf-missing'), next)
      const before = await snapshot(storage, 'rf-missing')
      const error = await client.resume('rf-missing').catch((e: unknown) => e)
      expect(error).toBeInstanceOf(StepNotRegisteredError)
      expect((error as StepNotRegisteredError).stepName).toBe('rf-gone')
      expect(await snapshot(storage, 'rf-missing')).toEqual(before)
      expect(await client.getStatus('rf-missing')).toBe('FAILED')
    })

    it('leaves a FAILED workflow as it was when the code changed and the policy is error', async () => {
      await failedWorkflow('rf-changed')
      const { record } = await store.requireWorkflow('rf-changed')
      const stored = await store.loadGraph(record)
      const next = {
        ...record,
        graph: { ...stored, fingerprints: { ...stored.fingerprints, 'rf-second': '0' } },
      }
      await store.updateWorkflow(await store.requireWorkflow('rf-changed'), next)
      const before = await snapshot(opened.storage, 'rf-changed')
      const error = await runtime.resume('rf-changed', { onCodeChange: 'error' }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(WorkflowCodeChangedError)
      expect(await snapshot(opened.storage, 'rf-changed')).toEqual(before)
      expect(await client.getStatus('rf-changed')).toBe('FAILED')
    })

    it('leaves a FAILED workflow as it was when a committed step record is corrupt', async () => {
      await failedWorkflow('rf-corrupt')
      await opened.storage.put(
        storeKeys.step('rf-corrupt', 'rf-first'),
        new TextEncoder().encode('{"v":1,"na'),
      )
      const before = await snapshot(opened.storage, 'rf-corrupt')
      await expect(client.resume('rf-corrupt')).rejects.toBeInstanceOf(CorruptRecordError)
      expect(await snapshot(opened.storage, 'rf-corrupt')).toEqual(before)
      expect(await client.getStatus('rf-corrupt')).toBe('FAILED')
    })

    it('leaves a FAILED workflow as it was when the storage fails while the resume reads', async () => {
      await failedWorkflow('rf-down')
      const before = await snapshot(opened.storage, 'rf-down')
      const failing = interceptStorage(opened.storage, {
        get: (next, key) =>
          key.includes('/steps/')
            ? Promise.reject(new StorageUnavailableError(`injected failure reading ${key}`))
            : next(key),
      })
      const other = new Runtime(failing, fast)
      await expect(other.resume('rf-down')).rejects.toBeInstanceOf(StorageUnavailableError)
      expect(await snapshot(opened.storage, 'rf-down')).toEqual(before)
      expect(await client.getStatus('rf-down')).toBe('FAILED')
    })

    it('resumes a FAILED workflow that a refused resume left alone, from the failed step', async () => {
      const failed = await failedWorkflow('rf-after')
      await expect(runtime.resume('rf-after', { onCodeChange: 'error' })).resolves.toBe(40)
      const { record } = await store.requireWorkflow('rf-after')
      expect(record).toMatchObject({ status: 'SUCCESSFUL', runs: failed.runs + 1 })
      expect(record.error).toBeUndefined()
      expect(record.resumedFrom).toBeUndefined()
    })

    it.skipIf(backend.name === 'memory')(
      'reads FAILED, keeps its error and is never taken by a worker when its runner dies before the first commit',
      { timeout: 60_000 },
      async () => {
        await failedWorkflow('rf-early', 2)
        await failedWorkflow('rf-later', 1)
        // Killed in the first step it runs again: nothing committed since the takeover.
        await kill(await resumeInChild(opened.uri as string, 'rf-early', 'rf-second', dir))
        // Killed after `rf-second` committed (and the record says so): a resume that made
        // progress is an ordinary one.
        const later = await resumeInChild(opened.uri as string, 'rf-later', 'rf-pay', dir)
        await vi.waitFor(
          async () => expect((await store.requireWorkflow('rf-later')).record.resumedFrom).toBeUndefined(),
          { timeout: 10_000 },
        )
        await kill(later)

        const { record } = await store.requireWorkflow('rf-early')
        expect(record).toMatchObject({ status: 'RUNNING', resumedFrom: 'FAILED', runs: 2 })
        expect(record.error?.message).toBe('second failed')
        expect(await client.getStatus('rf-early')).toBe('FAILED')
        await expect(client.getOutput('rf-early')).rejects.toBeInstanceOf(WorkflowExecutionError)
        expect((await client.getMetadata('rf-early')).error?.message).toBe('second failed')
        expect(await client.getStatus('rf-later')).toBe('RESUMABLE')
        expect(await client.listAll('FAILED')).toEqual([{ workflowId: 'rf-early', status: 'FAILED' }])
        expect(await client.listAll('RESUMABLE')).toEqual([{ workflowId: 'rf-later', status: 'RESUMABLE' }])

        // A worker takes the RESUMABLE one (so it is polling), and never the FAILED one.
        const worker = createWorker({
          storage: opened.storage,
          pollIntervalMs: 20,
          handleSignals: false,
          ...fast,
        })
        try {
          await vi.waitFor(async () => expect(await client.getStatus('rf-later')).toBe('SUCCESSFUL'), {
            timeout: 20_000,
          })
          await new Promise((resolve) => setTimeout(resolve, 300))
        } finally {
          await worker.stop()
        }
        expect((await store.requireWorkflow('rf-early')).record.runs).toBe(2)
        expect(await client.getStatus('rf-early')).toBe('FAILED')
        expect(await client.resumeAll()).toEqual([])

        // Resumed on purpose, it runs on from the failed step.
        await expect(client.resume('rf-early')).resolves.toBe(60)
        const done = (await store.requireWorkflow('rf-early')).record
        expect(done.error).toBeUndefined()
        expect(done.resumedFrom).toBeUndefined()
      },
    )
  })
}
