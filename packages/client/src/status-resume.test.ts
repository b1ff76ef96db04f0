// getStatus, resume, cancel and resumeAll on memory and on a real folder: what each status
// allows, that resume re-runs only what is not committed, and that cancel stops a live run.

import {
  currentStep,
  InvalidWorkflowIdError,
  type StepNode,
  step,
  WorkflowCancelledError,
  type WorkflowHandle,
  WorkflowNotFoundError,
  WorkflowNotResumableError,
  WorkflowStillActiveError,
} from '@wf/core'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { WorkflowClient } from './index.js'
import { backends, eachTestOn, gate, type Probe } from './test-support/harness.js'

const calls: Record<string, number> = {}
const count = (name: string) => {
  calls[name] = (calls[name] ?? 0) + 1
}
let hold = gate()
let aborted = 0

const load = step('sr-load', (n: number) => {
  count('load')
  return n * 10
})
const add = step('sr-add', (a: number, b: number) => {
  count('add')
  return a + b
})
const boom = step(
  'sr-boom',
  (_n: number): number => {
    count('boom')
    throw new Error('boom failed')
  },
  { maxRetries: 0 },
)
const wait = step('sr-wait', async (n: number) => {
  count('wait')
  const { signal } = currentStep()
  await new Promise<void>((resolve, reject) => {
    hold.promise.then(resolve)
    signal.addEventListener('abort', () => {
      aborted++
      reject(new Error('aborted'))
    })
  })
  return n
})

describe.each(backends)('on $name storage', (backend) => {
  let probe: Probe
  let client: WorkflowClient
  const live: WorkflowHandle<unknown>[] = []
  async function start(node: StepNode<number>, workflowId: string): Promise<WorkflowHandle<number>> {
    const handle = await client.runtime.runAsync(node, { workflowId })
    live.push(handle)
    return handle
  }

  eachTestOn(backend, (bed) => {
    ;({ probe, client } = bed)
  })
  beforeEach(() => {
    for (const key of Object.keys(calls)) delete calls[key]
    hold = gate()
    aborted = 0
  })
  afterEach(async () => {
    hold.open()
    // Let live runs finish writing before their folder goes away.
    await Promise.allSettled(live.splice(0).map((h) => h.result()))
  })

  /**
   * A workflow left RESUMABLE: the storage refused the commit of its final step (the root step,
   * committed by the SUCCESSFUL record, whose index marker is written first), then came back.
   */
  async function resumable(workflowId: string): Promise<void> {
    probe.failWrites = (key) => key.startsWith('index/SUCCESSFUL/')
    await expect(client.runtime.run(add(load(1), load(2)), { workflowId })).rejects.toThrow(/injected/)
    probe.failWrites = () => false
  }

  describe('getStatus', () => {
    it('reports SUCCESSFUL, FAILED, RESUMABLE, RUNNING and CANCELED', async () => {
      await client.runtime.run(load(1), { workflowId: 'ok' })
      await expect(client.runtime.run(boom(1), { workflowId: 'bad' })).rejects.toThrow(/boom failed/)
      await resumable('stuck')
      const liveRun = await start(wait(1), 'live')
      await client.runtime.run(load(2), { workflowId: 'gone' }).then(() => undefined)
      expect(await client.getStatus('ok')).toBe('SUCCESSFUL')
      expect(await client.getStatus('bad')).toBe('FAILED')
      expect(await client.getStatus('stuck')).toBe('RESUMABLE')
      expect(await client.getStatus('live')).toBe('RUNNING')
      await client.cancel('live')
      await expect(liveRun.result()).rejects.toBeInstanceOf(WorkflowCancelledError)
      expect(await client.getStatus('live')).toBe('CANCELED')
    })

    it('throws WorkflowNotFoundError for an unknown id and InvalidWorkflowIdError for a bad one', async () => {
      await expect(client.getStatus('nope')).rejects.toBeInstanceOf(WorkflowNotFoundError)
      await expect(client.getStatus('a/b')).rejects.toBeInstanceOf(InvalidWorkflowIdError)
      await expect(client.getStatus('')).rejects.toBeInstanceOf(InvalidWorkflowIdError)
    })
  })

  describe('resume', () => {
    it('finishes a RESUMABLE workflow without re-running committed steps', async () => {
      await resumable('r1')
      expect(calls).toEqual({ load: 2, add: 1 })
      const out: number = await client.resume<number>('r1')
      expect(out).toBe(30)
      expect(calls).toEqual({ load: 2, add: 2 })
      expect(await client.getStatus('r1')).toBe('SUCCESSFUL')
    })

    it('resumes a FAILED workflow from the failed step', async () => {
      await expect(client.runtime.run(add(load(3), boom(1)), { workflowId: 'f1' })).rejects.toThrow()
      await expect(client.resume('f1')).rejects.toThrow(/boom failed/)
      expect(calls).toEqual({ load: 1, boom: 2 })
    })

    it('returns the stored output of a SUCCESSFUL workflow without running anything', async () => {
      await client.runtime.run(add(load(1), load(2)), { workflowId: 's1' })
      expect(await client.resume('s1')).toBe(30)
      expect(calls).toEqual({ load: 2, add: 1 })
    })

    it('refuses a CANCELED workflow', async () => {
      const h = await start(wait(1), 'c1')
      await client.cancel('c1')
      await expect(h.result()).rejects.toBeInstanceOf(WorkflowCancelledError)
      await expect(client.resume('c1')).rejects.toBeInstanceOf(WorkflowNotResumableError)
    })

    it('throws WorkflowNotFoundError for an unknown id and writes nothing', async () => {
      await client.runtime.run(load(1), { workflowId: 'other' })
      const store = await client.runtime.store()
      const before = await store.listAllKeys('')
      await expect(client.resume('missing')).rejects.toBeInstanceOf(WorkflowNotFoundError)
      await expect(client.resumeAsync('missing')).rejects.toBeInstanceOf(WorkflowNotFoundError)
      expect(await store.listAllKeys('')).toEqual(before)
    })

    it('refuses a workflow this process is running', async () => {
      await start(wait(1), 'busy')
      await expect(client.resume('busy')).rejects.toBeInstanceOf(WorkflowStillActiveError)
    })
  })

  describe('cancel', () => {
    it('stops a live run: aborts the in-flight step, rejects run() and keeps the checkpoints', async () => {
      const running = client.runtime.run(add(load(4), wait(5)), { workflowId: 'x1' })
      running.catch(() => {}) // it may reject while cancel() is awaited: asserted below
      await vi.waitFor(() => expect(calls.wait).toBe(1), { timeout: 5000 })
      await client.cancel('x1')
      await expect(running).rejects.toBeInstanceOf(WorkflowCancelledError)
      expect(aborted).toBe(1)
      expect(calls.add).toBeUndefined()
      expect(await client.getStatus('x1')).toBe('CANCELED')
      const store = await client.runtime.store()
      expect(await store.listStepIds('x1')).toEqual(['sr-load'])
      await expect(client.getOutput('x1')).rejects.toBeInstanceOf(WorkflowCancelledError)
    })

    it('cancels a RESUMABLE workflow and leaves a SUCCESSFUL one as it is', async () => {
      await resumable('x2')
      await client.cancel('x2')
      expect(await client.getStatus('x2')).toBe('CANCELED')
      await client.runtime.run(load(1), { workflowId: 'x3' })
      await client.cancel('x3')
      expect(await client.getStatus('x3')).toBe('SUCCESSFUL')
      await expect(client.cancel('nope')).rejects.toBeInstanceOf(WorkflowNotFoundError)
    })
  })

  describe('resumeAll', () => {
    async function mixed(): Promise<void> {
      await resumable('m-resumable')
      await expect(client.runtime.run(boom(2), { workflowId: 'm-failed' })).rejects.toThrow()
      await client.runtime.run(load(3), { workflowId: 'm-done' })
      await start(wait(4), 'm-live')
      const h = await start(wait(5), 'm-canceled')
      await client.cancel('m-canceled')
      await expect(h.result()).rejects.toThrow()
    }

    it('resumes RESUMABLE workflows only, and FAILED ones with includeFailed', async () => {
      await mixed()
      const resumed = await client.resumeAll<number>()
      expect(resumed.map((r) => r.workflowId)).toEqual(['m-resumable'])
      expect(await resumed[0]?.result).toBe(30)
      await resumable('m-resumable-2')
      const withFailed = await client.resumeAll({ includeFailed: true })
      expect(withFailed.map((r) => r.workflowId).sort()).toEqual(['m-failed', 'm-resumable-2'])
      const outcomes = await Promise.allSettled(withFailed.map((r) => r.result))
      expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected'])
    })

    it('skips a workflow another caller takes over at the same moment', async () => {
      await resumable('t1')
      await resumable('t2')
      // A second runtime on the same storage (another process, in effect) races this one.
      const other = new WorkflowClient({ storage: probe })
      const [a, b] = await Promise.all([client.resumeAll(), other.resumeAll()])
      const ids = [...(a ?? []), ...(b ?? [])].map((r) => r.workflowId).sort()
      expect(ids).toEqual(['t1', 't2'])
      await Promise.all([...(a ?? []), ...(b ?? [])].map((r) => r.result))
      expect(calls.add).toBe(4)
    })

    it('validates its options', async () => {
      await expect(client.resumeAll({ includeFailed: 'yes' as unknown as boolean })).rejects.toThrow(
        /includeFailed/,
      )
    })
  })
})
