// Test support for the pipelined-checkpoint crash tests (issue #26): whether the runtime accepts
// `pipelineCheckpoints` yet, the options that turn it on, a storage that records every write it
// makes durable (in completion order), and the checks every crash test makes on what a run left.

import { MemoryStorage, Runtime, type RuntimeOptions, type Storage, storeKeys } from '@wf/core'
import { interceptStorage } from '@wf/core/testing'
import { INPUTS, NONDET, ROOT, STEP_IDS } from './fixtures/pipeline-steps.mjs'

/** The runtime options of issue #26 (typed here so the tests compile before the runtime has them). */
export type PipelineOptions = RuntimeOptions & {
  pipelineCheckpoints?: boolean
  maxCheckpointsInFlight?: number
}

/**
 * Whether this build of @wf/core knows `pipelineCheckpoints`: it rejects a value that is not a
 * boolean (every option is checked), or shows the setting on the runtime. Before the feature
 * lands, neither, and the pipelining-on cases are skipped. `WF_TEST_PIPELINING=1` forces them.
 */
export function pipeliningAvailable(): boolean {
  if (process.env.WF_TEST_PIPELINING === '1') return true
  try {
    const runtime = new Runtime(new MemoryStorage(), {
      pipelineCheckpoints: 'yes',
    } as unknown as RuntimeOptions)
    return 'pipelineCheckpoints' in runtime
  } catch {
    return true
  }
}

/** `maxCheckpointsInFlight` of the tests' runs. */
export const IN_FLIGHT = 4
/** The most steps of the workflow that can run at once (its fan-out). */
export const WIDTH = 6

/** The runtime options of a run with pipelining on or off (leases short enough to take a dead run over). */
export function pipelineOptions(pipelining: boolean): RuntimeOptions {
  const options: PipelineOptions = {
    pipelineCheckpoints: pipelining,
    maxCheckpointsInFlight: IN_FLIGHT,
    leaseTtlMs: 1000,
    heartbeatMs: 300,
  }
  return options
}

/** One write a storage made durable. */
export type Write = { op: 'put'; key: string; data: Uint8Array } | { op: 'delete'; key: string }

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * `inner` behind an interceptor that appends each write to `writes` once it resolved (so in the
 * order they became durable), waiting up to `jitterMs` (random) before each put reaches `inner`:
 * writes in flight at once then complete out of order, as on a real disk or S3.
 */
export function recordWrites(inner: Storage, jitterMs = 0): { storage: Storage; writes: Write[] } {
  const writes: Write[] = []
  const storage = interceptStorage(inner, {
    put: async (next, key, data, condition) => {
      if (jitterMs > 0) await pause(Math.random() * jitterMs)
      const result = await next(key, data, condition)
      writes.push({ op: 'put', key, data: Uint8Array.from(data) })
      return result
    },
    delete: async (next, key) => {
      await next(key)
      writes.push({ op: 'delete', key })
    },
    deleteMany: async (next, keys) => {
      await next(keys)
      for (const key of keys) writes.push({ op: 'delete', key })
    },
  })
  return { storage, writes }
}

/** Applies `writes` to `storage` one after the other, unconditionally (each had succeeded). */
export async function applyWrites(storage: Storage, writes: readonly Write[]): Promise<void> {
  for (const write of writes) {
    if (write.op === 'put') await storage.put(write.key, write.data)
    else await storage.delete(write.key)
  }
}

/** What a sequence of writes leaves: each key's last value. */
export function stateAfter(writes: readonly Write[]): Map<string, Uint8Array> {
  const state = new Map<string, Uint8Array>()
  for (const write of writes) {
    if (write.op === 'put') state.set(write.key, write.data)
    else state.delete(write.key)
  }
  return state
}

/** The step ids whose records `state` holds (the root's too when the final record commits it). */
export function committedSteps(state: Map<string, Uint8Array>, workflowId: string): Set<string> {
  const committed = new Set<string>()
  for (const id of STEP_IDS) if (state.has(storeKeys.step(workflowId, id))) committed.add(id)
  if (finalRecord(state, workflowId)) committed.add(ROOT)
  return committed
}

/** Whether `state` holds the workflow's final (SUCCESSFUL) record. */
export function finalRecord(state: Map<string, Uint8Array>, workflowId: string): boolean {
  const data = state.get(storeKeys.workflow(workflowId))
  if (data === undefined) return false
  const record = JSON.parse(Buffer.from(data).toString('utf8')) as { status?: string }
  return record.status === 'SUCCESSFUL'
}

/**
 * Causal order in storage: every committed step's inputs are committed too, and the final record
 * is there only with every step's record. Returns the violations (empty when none).
 */
export function causalViolations(
  committed: Set<string>,
  state: Map<string, Uint8Array>,
  workflowId: string,
): string[] {
  const violations: string[] = []
  for (const id of committed) {
    for (const input of INPUTS[id] ?? []) {
      if (!committed.has(input)) violations.push(`${id} is committed without its input ${input}`)
    }
  }
  if (finalRecord(state, workflowId)) {
    for (const id of STEP_IDS) {
      if (id !== ROOT && !committed.has(id)) violations.push(`the final record is written without ${id}`)
    }
  }
  return violations
}

/** The steps downstream of the non-deterministic one, whose values carry its token. */
export const CARRY_TOKEN: string[] = (() => {
  const downstream = new Set<string>([NONDET])
  for (const id of STEP_IDS) if ((INPUTS[id] ?? []).some((input) => downstream.has(input))) downstream.add(id)
  return [...downstream]
})()

/** The workflow's record and its steps' records as `storage` holds them now (for `committedSteps`). */
export async function readState(storage: Storage, workflowId: string): Promise<Map<string, Uint8Array>> {
  const state = new Map<string, Uint8Array>()
  const keys = [storeKeys.workflow(workflowId), ...STEP_IDS.map((id) => storeKeys.step(workflowId, id))]
  await Promise.all(
    keys.map(async (key) => {
      const value = await storage.get(key)
      if (value !== undefined) state.set(key, value.data)
    }),
  )
  return state
}
