// getOutput, getMetadata, getGraph and delete on memory and on a real folder: waiting for live
// runs, typed errors for each status, step results through continuations, and complete deletes.
// Over 400 lines: one test per status and per read call, on both backends, kept side by side.

import {
  CorruptRecordError,
  currentStep,
  InvalidOptionsError,
  Runtime,
  type Storage,
  step,
  storeKeys,
  WorkflowCancelledError,
  WorkflowExecutionError,
  WorkflowNotFoundError,
  WorkflowStillActiveError,
} from '@wf/core'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import {
  StepNotCommittedError,
  StepNotFoundError,
  WorkflowClient,
  WorkflowOutputUnavailableError,
} from './index.js'
import { backends, eachTestOn, gate, type Probe } from './test-support/harness.js'

let hold = gate()
let flaky = 0
const num = step('in-num', (n: number) => n, { metadata: { owner: 'numbers' } })
const sum = step('in-sum', (a: number, b: number) => a + b)
const bytes = step('in-bytes', (n: number) => new Uint8Array(n).fill(7))
const sizeOf = step('in-size-of', (b: Uint8Array) => b.byteLength)
const held = step('in-held', async (n: number) => {
  const { signal } = currentStep()
  await new Promise<void>((resolve, reject) => {
    hold.promise.then(resolve)
    signal.addEventListener('abort', () => reject(new Error('aborted')))
  })
  return n
})
const bad = step(
  'in-bad',
  (_n: number): number => {
    throw new TypeError('bad input')
  },
  { maxRetries: 0 },
)
const retried = step(
  'in-retried',
  (n: number) => {
    if (flaky++ === 0) throw new Error('first attempt fails')
    return n
  },
  { backoff: { initialDelayMs: 1 } },
)
let failOnce = true
/** Fails its first run; run again (a resume), it waits for `hold`. */
const once = step(
  'in-once',
  async (n: number) => {
    if (failOnce) {
      failOnce = false
      throw new Error('first run fails')
    }
    await hold.promise
    return n
  },
  { maxRetries: 0 },
)
/** A continuation: the step returns a sub-graph, whose output becomes the step's output. */
const pair = step('in-pair', (n: number) => sum(num(n), num(n + 1)))
const guarded = step('in-guarded', (n: number) => num(n), { catchExceptions: true })
/** A fan-out continuation: the step returns an array of nodes, and its output is their outputs. */
const fanned = step('in-fanned', (ns: number[]) => ({
  total: sum(ns[0] ?? 0, ns[1] ?? 0),
  each: ns.map((n) => num(n)),
}))
const caught = step(
  'in-caught',
  (n: number): number => {
    throw new RangeError(`amount ${n} out of range`)
  },
  { maxRetries: 0, catchExceptions: true },
)

describe.each(backends)('on $name storage', (backend) => {
  let storage: Storage
  let probe: Probe
  let client: WorkflowClient

  eachTestOn(backend, (bed) => {
    ;({ storage, probe, client } = bed)
  })
  beforeEach(() => {
    hold = gate()
    flaky = 0
    failOnce = true
  })

  describe('getOutput', () => {
    it('returns the output of a SUCCESSFUL workflow, typed by the caller', async () => {
      await client.runtime.run(sum(num(2), pair(10)), { workflowId: 'o1' })
      const out: number = await client.getOutput<number>('o1')
      expect(out).toBe(23)
    })

    it('waits for a run in this process', async () => {
      const handle = await client.runtime.runAsync(held(7), { workflowId: 'o2' })
      const waiting = client.getOutput('o2')
      hold.open()
      expect(await waiting).toBe(7)
      expect(await handle.result()).toBe(7)
    })

    it('waits for a run in another runtime by polling its record', async () => {
      const other = new Runtime(storage)
      const handle = await other.runAsync(held(8), { workflowId: 'o3' })
      const waiting = client.getOutput('o3', { pollIntervalMs: 10 })
      setTimeout(() => hold.open(), 50)
      expect(await waiting).toBe(8)
      await handle.result()
    })

    it('stops waiting when its signal aborts', async () => {
      const other = new Runtime(storage)
      const handle = await other.runAsync(held(9), { workflowId: 'o4' })
      const signal = AbortSignal.timeout(30)
      await expect(client.getOutput('o4', { pollIntervalMs: 5, signal })).rejects.toThrow(/abort|timeout/i)
      hold.open()
      await handle.result()
    })

    it('rejects with WorkflowExecutionError rebuilt from the record of a FAILED workflow', async () => {
      await expect(client.runtime.run(sum(num(1), bad(2)), { workflowId: 'o5' })).rejects.toThrow()
      const error = await client.getOutput('o5').catch((e: unknown) => e)
      expect(error).toBeInstanceOf(WorkflowExecutionError)
      expect(error).toMatchObject({ workflowId: 'o5', stepId: 'in-bad', code: 'WF_EXECUTION_FAILED' })
      expect((error as Error).cause).toMatchObject({ name: 'TypeError', message: 'bad input' })
    })

    it('rejects with WorkflowCancelledError, WorkflowOutputUnavailableError and WorkflowNotFoundError', async () => {
      const handle = await client.runtime.runAsync(held(1), { workflowId: 'o6' })
      await client.cancel('o6')
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowCancelledError)
      await expect(client.getOutput('o6')).rejects.toBeInstanceOf(WorkflowCancelledError)
      // The storage refuses the final record (its SUCCESSFUL marker is written first): left RESUMABLE.
      probe.failWrites = (key) => key.startsWith('index/SUCCESSFUL/')
      await expect(client.runtime.run(num(1), { workflowId: 'o7' })).rejects.toThrow()
      probe.failWrites = () => false
      await expect(client.getOutput('o7')).rejects.toBeInstanceOf(WorkflowOutputUnavailableError)
      await expect(client.getOutput('o8')).rejects.toBeInstanceOf(WorkflowNotFoundError)
    })

    it('returns a committed step result stored with byte parts (a large Uint8Array)', async () => {
      await client.runtime.run(sizeOf(bytes(200_000)), { workflowId: 's3' })
      const back = (await client.getOutput('s3', { stepId: 'in-bytes' })) as Uint8Array
      expect(back).toBeInstanceOf(Uint8Array)
      expect(back.byteLength).toBe(200_000)
      expect(back[199_999]).toBe(7)
    })

    it('returns a committed step result, following a continuation to its sub-graph result', async () => {
      await client.runtime.run(sum(num(2), pair(10)), { workflowId: 's1' })
      expect(await client.getOutput('s1', { stepId: 'in-num' })).toBe(2)
      expect(await client.getOutput('s1', { stepId: 'in-pair' })).toBe(21)
      expect(await client.getOutput('s1', { stepId: 'in-pair~in-num_1' })).toBe(11)
      await client.runtime.run(guarded(5), { workflowId: 's2' })
      expect(await client.getOutput('s2', { stepId: 'in-guarded' })).toEqual({ ok: true, value: 5 })
      expect(await client.getOutput('s2')).toEqual({ ok: true, value: 5 })
    })

    it('returns the structure a fan-out continuation returned, and each of its steps', async () => {
      await client.runtime.run(fanned([3, 4]), { workflowId: 's4' })
      const expected = { total: 7, each: [3, 4] }
      expect(await client.getOutput('s4')).toEqual(expected)
      expect(await client.getOutput('s4', { stepId: 'in-fanned' })).toEqual(expected)
      expect(await client.getOutput('s4', { stepId: 'in-fanned~in-num_1' })).toBe(4)
      const graph = await client.getGraph('s4')
      expect(graph.steps[0]?.children.map((v) => v.stepId)).toEqual([
        'in-fanned~in-sum',
        'in-fanned~in-num',
        'in-fanned~in-num_1',
        'in-fanned~wf:collect',
      ])
      expect(graph).toMatchObject({ committed: 5, total: 5 })
      expect(await client.getMetadata('s4', { stepId: 'in-fanned' })).toMatchObject({
        status: 'SUCCESSFUL',
        continuationRootId: 'in-fanned~wf:collect',
      })
    })

    it('throws typed errors for a step without a result, an unknown step and a bad step id', async () => {
      await expect(client.runtime.run(sum(num(1), bad(2)), { workflowId: 's3' })).rejects.toThrow()
      await expect(client.getOutput('s3', { stepId: 'in-bad' })).rejects.toBeInstanceOf(StepNotCommittedError)
      await expect(client.getOutput('s3', { stepId: 'in-sum' })).rejects.toBeInstanceOf(StepNotCommittedError)
      await expect(client.getOutput('s3', { stepId: 'no-such' })).rejects.toBeInstanceOf(StepNotFoundError)
      await expect(client.getOutput('s3', { stepId: '' })).rejects.toBeInstanceOf(InvalidOptionsError)
    })

    it('rejects with CorruptRecordError at the key of a record that lacks its output or sub-graph', async () => {
      await client.runtime.run(sum(num(2), pair(10)), { workflowId: 'c1' })
      /** Rewrites the JSON record at `key` without `field`. */
      const strip = async (key: string, field: string) => {
        const found = await storage.get(key)
        const record = JSON.parse(new TextDecoder().decode(found?.data))
        delete record[field]
        await storage.put(key, new TextEncoder().encode(JSON.stringify(record)))
      }
      await strip(storeKeys.workflow('c1'), 'output')
      await strip(storeKeys.step('c1', 'in-num'), 'output')
      await strip(storeKeys.step('c1', 'in-pair'), 'graph')
      // Each call made only when awaited: a rejection made earlier would be unhandled meanwhile.
      const cases: [() => Promise<unknown>, string][] = [
        [() => client.getOutput('c1'), storeKeys.workflow('c1')],
        [() => client.getOutput('c1', { stepId: 'in-num' }), storeKeys.step('c1', 'in-num')],
        [() => client.getOutput('c1', { stepId: 'in-pair' }), storeKeys.step('c1', 'in-pair')],
      ]
      for (const [output, key] of cases) {
        const error = await output().catch((e: unknown) => e)
        expect(error).toBeInstanceOf(CorruptRecordError)
        expect(error).toMatchObject({ code: 'WF_CORRUPT_RECORD', key })
      }
    })
  })

  describe('getMetadata', () => {
    it('describes a workflow: status, user metadata and timing', async () => {
      const before = Date.now()
      await client.runtime.run(num(1), { workflowId: 'm1', metadata: { who: 'me', n: [1, 2] } })
      const meta = await client.getMetadata('m1')
      expect(meta).toMatchObject({
        workflowId: 'm1',
        status: 'SUCCESSFUL',
        userMetadata: { who: 'me', n: [1, 2] },
        rootStepId: 'in-num',
        stats: { runs: 1 },
      })
      expect(meta.stats.startTime).toBeGreaterThanOrEqual(before)
      expect(meta.stats.endTime).toBeGreaterThanOrEqual(meta.stats.startTime)
      expect(meta.error).toBeUndefined()
      expect(meta.runtime).toMatchObject({ node: process.version, platform: process.platform })
      expect(meta.runtime?.wfPackages['@wf/core']).toMatch(/^\d+\.\d+\.\d+/)
    })

    it('marks a step whose code changed since submission', async () => {
      await client.runtime.run(num(3), { workflowId: 'm-changed' })
      expect(await client.getMetadata('m-changed', { stepId: 'in-num' })).toMatchObject({
        codeChanged: false,
      })
      // Rewrite the stored fingerprint, as if the workflow had been submitted by other code.
      const store = await client.runtime.store()
      const found = await store.requireWorkflow('m-changed')
      const graph = await store.loadGraph(found.record)
      const fingerprints = { ...graph.fingerprints, 'in-num': '0000000000000000' }
      await store.updateWorkflow(found, { ...found.record, graph: { ...graph, fingerprints } })
      expect(await client.getMetadata('m-changed', { stepId: 'in-num' })).toMatchObject({ codeChanged: true })
    })

    it('describes a step: status, options, user metadata, timing and attempts', async () => {
      await client.runtime.run(sum(num(1), retried(2)), { workflowId: 'm2' })
      const first = await client.getMetadata('m2', { stepId: 'in-num' })
      expect(first).toMatchObject({
        stepId: 'in-num',
        name: 'in-num',
        status: 'SUCCESSFUL',
        userMetadata: { owner: 'numbers' },
        stats: { attempts: 1 },
      })
      expect(first.stats.endTime).toBeGreaterThanOrEqual(first.stats.startTime ?? Number.NaN)
      expect(await client.getMetadata('m2', { stepId: 'in-retried' })).toMatchObject({
        stats: { attempts: 2 },
      })
      expect(await client.getMetadata('m2', { stepId: 'in-sum' })).toMatchObject({
        dependsOn: ['in-num', 'in-retried'],
      })
    })

    it('shows the root step as committed, from the final record or, as earlier versions stored it, from its own record', async () => {
      await client.runtime.run(sum(num(1), num(2)), { workflowId: 'm-root' })
      const store = await client.runtime.store()
      expect(await storage.get(storeKeys.step('m-root', 'in-sum'))).toBeUndefined()
      const check = async () => {
        const root = await client.getMetadata('m-root', { stepId: 'in-sum' })
        expect(root).toMatchObject({ status: 'SUCCESSFUL', stats: { attempts: 1 } })
        expect(root.stats.endTime).toBeGreaterThanOrEqual(root.stats.startTime ?? Number.NaN)
        expect(await client.getOutput('m-root', { stepId: 'in-sum' })).toBe(3)
        expect(await client.getGraph('m-root')).toMatchObject({ committed: 3, total: 3 })
      }
      await check()
      // Rewrite it as earlier versions stored it: the root's own step record, no `rootStep`.
      const found = await store.requireWorkflow('m-root')
      const { rootStep, ...rest } = found.record
      if (!rootStep || !rest.output) throw new Error('expected the root committed by the record')
      await store.commitStep('m-root', 'in-sum', { v: 1, kind: 'value', output: rest.output, ...rootStep })
      await store.updateWorkflow(found, rest)
      await check()
    })

    it('gives FAILED to the failed step and PENDING to those that did not run', async () => {
      await expect(client.runtime.run(sum(num(1), bad(2)), { workflowId: 'm3' })).rejects.toThrow()
      const meta = await client.getMetadata('m3')
      expect(meta).toMatchObject({ status: 'FAILED', error: { stepId: 'in-bad', name: 'TypeError' } })
      expect(await client.getMetadata('m3', { stepId: 'in-bad' })).toMatchObject({
        status: 'FAILED',
        error: { message: 'bad input' },
        stats: { attempts: 0 },
      })
      expect(await client.getMetadata('m3', { stepId: 'in-sum' })).toMatchObject({ status: 'PENDING' })
      await expect(client.getMetadata('m3', { stepId: 'zzz' })).rejects.toBeInstanceOf(StepNotFoundError)
      await expect(client.getMetadata('nope')).rejects.toBeInstanceOf(WorkflowNotFoundError)
    })

    it('gives FAILED to the failed step of a resume whose runner died before its first commit, and not while a resume runs it again', async () => {
      const store = await client.runtime.store()
      await expect(client.runtime.run(sum(num(1), once(2)), { workflowId: 'm-dead' })).rejects.toThrow()
      // As a resume leaves it when its runner dies before committing anything: it reads FAILED.
      const found = await store.requireWorkflow('m-dead')
      const gone = { host: 'gone-host', pid: 1, runnerId: 'gone-runner' }
      await store.updateWorkflow(found, {
        ...found.record,
        status: 'RUNNING',
        resumedFrom: 'FAILED',
        owner: gone,
        lease: 'runner',
      })
      expect(await client.getStatus('m-dead')).toBe('FAILED')
      expect((await client.getGraph('m-dead')).byId.get('in-once')).toMatchObject({
        status: 'FAILED',
        error: { message: 'first run fails' },
      })

      failOnce = true
      await expect(client.runtime.run(sum(num(1), once(2)), { workflowId: 'm-live' })).rejects.toThrow()
      const other = new Runtime(storage)
      const resumed = other.resume('m-live')
      await vi.waitFor(async () => expect(await client.getStatus('m-live')).toBe('RUNNING'))
      // Its record keeps the failure until the first commit, but the step is being run again.
      const running = (await client.getGraph('m-live')).byId.get('in-once')
      expect(running?.status).toBe('PENDING')
      expect(running?.error).toBeUndefined()
      expect(await client.getMetadata('m-live', { stepId: 'in-once' })).toMatchObject({ status: 'PENDING' })
      hold.open()
      expect(await resumed).toBe(3)
    })

    it("gives each step's failed attempts: a failed step, one that succeeded on retry, one whose error was caught", async () => {
      await expect(client.runtime.run(sum(retried(1), bad(2)), { workflowId: 'm5' })).rejects.toThrow()
      const failed = await client.getMetadata('m5', { stepId: 'in-bad' })
      expect(failed).toMatchObject({
        status: 'FAILED',
        failures: {
          name: 'in-bad',
          attempts: 1,
          errors: [{ attempt: 1, name: 'TypeError', message: 'bad input' }],
        },
      })
      expect(failed.failures?.errors[0]?.stack).toMatch(/^TypeError: bad input\n\s+at /)
      expect(await client.getMetadata('m5', { stepId: 'in-retried' })).toMatchObject({
        status: 'SUCCESSFUL',
        stats: { attempts: 2 },
        failures: { attempts: 1, errors: [{ message: 'first attempt fails' }] },
      })
      expect((await client.getMetadata('m5', { stepId: 'in-sum' })).failures).toBeUndefined()
      // A garbled record of failures leaves the step without them, not the graph unreadable.
      await storage.put(storeKeys.failures('m5', 'in-retried'), new TextEncoder().encode('{"v":1,'))
      expect((await client.getMetadata('m5', { stepId: 'in-retried' })).failures).toBeUndefined()
      expect((await client.getMetadata('m5', { stepId: 'in-bad' })).failures?.attempts).toBe(1)
      await client.runtime.run(caught(7), { workflowId: 'm6' })
      const graph = await client.getGraph('m6')
      expect(graph.byId.get('in-caught')).toMatchObject({
        status: 'SUCCESSFUL',
        failures: { caught: true, errors: [{ name: 'RangeError', message: 'amount 7 out of range' }] },
      })
    })

    it('nests continuation steps under the step that returned them', async () => {
      await client.runtime.run(pair(3), { workflowId: 'm4' })
      expect(await client.getMetadata('m4', { stepId: 'in-pair' })).toMatchObject({
        status: 'SUCCESSFUL',
        continuationRootId: 'in-pair~in-sum',
      })
      expect(await client.getMetadata('m4', { stepId: 'in-pair~in-num' })).toMatchObject({
        parentStepId: 'in-pair',
        status: 'SUCCESSFUL',
      })
      const graph = await client.getGraph('m4')
      expect(graph.steps.map((s) => s.stepId)).toEqual(['in-pair'])
      expect(graph.steps[0]?.children.map((s) => s.stepId)).toEqual([
        'in-pair~in-num',
        'in-pair~in-num_1',
        'in-pair~in-sum',
      ])
      expect(graph).toMatchObject({ committed: 4, total: 4 })
    })
  })

  describe('delete', () => {
    it('removes every key of the workflow and its index entries, and nothing else', async () => {
      await client.runtime.run(num(1), { workflowId: 'keep' })
      await client.runtime.run(sum(num(1), pair(2)), { workflowId: 'gone' })
      const store = await client.runtime.store()
      const keysOfKeep = await store.listAllKeys('')
      await client.delete('gone')
      expect((await store.listAllKeys('')).filter((k) => k.includes('gone'))).toEqual([])
      expect((await store.listAllKeys('')).length).toBeLessThan(keysOfKeep.length)
      expect(await storage.get(storeKeys.index('SUCCESSFUL', 'keep'))).toBeDefined()
      await expect(client.getStatus('gone')).rejects.toBeInstanceOf(WorkflowNotFoundError)
      expect((await client.listAll()).map((w) => w.workflowId)).toEqual(['keep'])
    })

    it("removes a workflow's recorded failures with it", async () => {
      await expect(client.runtime.run(sum(num(1), bad(2)), { workflowId: 'd3' })).rejects.toThrow()
      const store = await client.runtime.store()
      expect(await store.listFailedStepIds('d3')).toEqual(['in-bad'])
      await client.delete('d3')
      expect(await store.listAllKeys(storeKeys.workflowPrefix('d3'))).toEqual([])
    })

    it('deletes FAILED and CANCELED workflows', async () => {
      await expect(client.runtime.run(bad(1), { workflowId: 'd1' })).rejects.toThrow()
      await client.cancel('d1')
      await client.delete('d1')
      await expect(client.getStatus('d1')).rejects.toBeInstanceOf(WorkflowNotFoundError)
    })

    it('refuses a RUNNING workflow and an unknown id', async () => {
      const handle = await client.runtime.runAsync(held(1), { workflowId: 'd2' })
      await expect(client.delete('d2')).rejects.toBeInstanceOf(WorkflowStillActiveError)
      const other = new WorkflowClient({ storage })
      await expect(other.delete('d2')).rejects.toBeInstanceOf(WorkflowStillActiveError)
      hold.open()
      await handle.result()
      await expect(client.delete('nope')).rejects.toBeInstanceOf(WorkflowNotFoundError)
      await expect(client.delete('a/b')).rejects.toThrow(/invalid workflow id/)
    })
  })
})
