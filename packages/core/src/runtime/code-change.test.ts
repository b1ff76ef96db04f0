import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  currentRuntimeInfo,
  MemoryStorage,
  Runtime,
  step,
  storeKeys,
  WorkflowCodeChangedError,
  WorkflowExecutionError,
} from '../index.js'

let healthy = false
const first = step('cc.first', (x: number) => x + 1)
const second = step(
  'cc.second',
  (x: number) => {
    if (!healthy) throw new Error('down')
    return x * 10
  },
  { maxRetries: 0 },
)

/** A FAILED workflow whose stored graph or record we then alter, as if submitted by other code. */
async function failedWorkflow(runtime: Runtime, workflowId: string) {
  healthy = false
  await expect(runtime.run(second(first(1)), { workflowId })).rejects.toBeInstanceOf(WorkflowExecutionError)
  healthy = true
  const store = await runtime.store()
  return { store, found: await store.requireWorkflow(workflowId) }
}

async function changeStepFingerprint(runtime: Runtime, workflowId: string, name: string) {
  const store = await runtime.store()
  const found = await store.requireWorkflow(workflowId)
  const graph = await store.loadGraph(found.record)
  const fingerprints = { ...graph.fingerprints, [name]: '0000000000000000' }
  await store.updateWorkflow(found, { ...found.record, graph: { ...graph, fingerprints } })
}

let warnings: string[] = []
const onWarning = (warning: Error & { code?: string }) => {
  if (warning.code === 'WF_CODE_CHANGED') warnings.push(warning.message)
}
beforeEach(() => {
  warnings = []
  process.on('warning', onWarning)
})
afterEach(() => {
  process.off('warning', onWarning)
  vi.restoreAllMocks()
})
const settle = () => new Promise((resolve) => setImmediate(resolve))

describe('recording the runtime', () => {
  it('stores Node, platform, the application, its lockfile and the @wf/* versions with the workflow', async () => {
    const runtime = new Runtime(new MemoryStorage())
    const { found } = await failedWorkflow(runtime, 'recorded')
    expect(found.record.runtime).toEqual(currentRuntimeInfo())
    expect(found.record.runtime?.node).toBe(process.version)
    expect(found.record.runtime?.lockfile?.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(found.record.runtime?.wfPackages['@wf/core']).toMatch(/^\d+\.\d+\.\d+/)
    const graph = await (await runtime.store()).loadGraph(found.record)
    expect(Object.keys(graph.fingerprints ?? {}).sort()).toEqual(['cc.first', 'cc.second'])
  })
})

describe('checking it on resume', () => {
  it("with 'error', refuses a changed step, names it, and leaves the workflow untouched and resumable", async () => {
    const runtime = new Runtime(new MemoryStorage(), { onCodeChange: 'error' })
    const { store, found } = await failedWorkflow(runtime, 'changed-error')
    await changeStepFingerprint(runtime, 'changed-error', 'cc.second')
    const before = await store.requireWorkflow('changed-error')
    const error = await runtime.resume('changed-error').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkflowCodeChangedError)
    expect((error as WorkflowCodeChangedError).changes.map((c) => c.what)).toEqual(['step:cc.second'])
    const after = await store.requireWorkflow('changed-error')
    expect(after.version).toBe(before.version)
    expect(after.record.status).toBe(found.record.status)
    // A per-resume override accepts the change.
    await expect(runtime.resume('changed-error', { onCodeChange: 'warn' })).resolves.toBe(20)
    await settle()
    expect(warnings.join('\n')).toContain('step:cc.second')
  })

  it("with 'warn' (the default), warns and resumes", async () => {
    const runtime = new Runtime(new MemoryStorage())
    await failedWorkflow(runtime, 'changed-warn')
    await changeStepFingerprint(runtime, 'changed-warn', 'cc.first')
    await expect(runtime.resume('changed-warn')).resolves.toBe(20)
    await settle()
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('step:cc.first')
  })

  it("with 'ignore', says nothing", async () => {
    const runtime = new Runtime(new MemoryStorage(), { onCodeChange: 'ignore' })
    await failedWorkflow(runtime, 'changed-ignore')
    await changeStepFingerprint(runtime, 'changed-ignore', 'cc.first')
    await expect(runtime.resume('changed-ignore')).resolves.toBe(20)
    await settle()
    expect(warnings).toEqual([])
  })

  it("a changed lockfile or Node version alone only warns, even with 'error'", async () => {
    const runtime = new Runtime(new MemoryStorage(), { onCodeChange: 'error' })
    const { store, found } = await failedWorkflow(runtime, 'lockfile')
    const runtimeInfo = found.record.runtime
    if (!runtimeInfo) throw new Error('no runtime recorded')
    await store.updateWorkflow(found, {
      ...found.record,
      runtime: {
        ...runtimeInfo,
        node: 'v18.0.0',
        lockfile: { file: 'pnpm-lock.yaml', sha256: 'f'.repeat(64) },
      },
    })
    await expect(runtime.resume('lockfile')).resolves.toBe(20)
    await settle()
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/node \(v18\.0\.0 → v\d+/)
    expect(warnings[0]).toContain('lockfile')
  })

  it('says nothing when nothing changed', async () => {
    const runtime = new Runtime(new MemoryStorage(), { onCodeChange: 'error' })
    await failedWorkflow(runtime, 'unchanged')
    await expect(runtime.resume('unchanged')).resolves.toBe(20)
    await settle()
    expect(warnings).toEqual([])
  })

  it('checks the steps of continuations stored by an earlier run too', async () => {
    const runtime = new Runtime(new MemoryStorage(), { onCodeChange: 'error' })
    const inner = step('cc.inner', (x: number) => x * 3)
    const spawn = step('cc.spawn', (x: number) => second(inner(x)))
    healthy = false
    await expect(runtime.run(spawn(2), { workflowId: 'cont' })).rejects.toBeInstanceOf(WorkflowExecutionError)
    healthy = true
    // Alter the fingerprint stored in the continuation's record, as if other code had created it.
    const storage = await runtime.storage()
    const key = storeKeys.step('cont', 'cc.spawn')
    const record = JSON.parse(new TextDecoder().decode((await storage.get(key))?.data))
    record.graph.fingerprints['cc.inner'] = '0000000000000000'
    await storage.put(key, new TextEncoder().encode(JSON.stringify(record)))
    const error = await runtime.resume('cont').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkflowCodeChangedError)
    expect((error as WorkflowCodeChangedError).changes.map((c) => c.what)).toEqual(['step:cc.inner'])
    // Refused before the takeover: it stays the FAILED workflow it was.
    const store = await runtime.store()
    expect(runtime.deriveStatus((await store.requireWorkflow('cont')).record)).toBe('FAILED')
    await expect(runtime.resume('cont', { onCodeChange: 'warn' })).resolves.toBe(60)
  })

  it('rejects an unknown policy', () => {
    // @ts-expect-error not a policy
    expect(() => new Runtime(new MemoryStorage(), { onCodeChange: 'maybe' })).toThrow(/onCodeChange/)
  })
})
