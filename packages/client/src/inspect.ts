// Reading results and metadata: a workflow's output (waiting while it runs), a step's committed
// result (following continuations to the sub-graph that produced it), and the metadata of both.

import { setTimeout as sleep } from 'node:timers/promises'
import {
  InvalidOptionsError,
  MAX_WAKE_TIME,
  type Runtime,
  type StepRecord,
  validateWorkflowId,
  WorkflowCanceledError,
  type WorkflowRecord,
} from '@wf/core'
import {
  committedStepOutput,
  committedWorkflowOutput,
  continuationRoot,
  executionErrorOf,
  type WorkflowStore,
} from '@wf/core/internal'
import { StepNotCommittedError, StepNotFoundError, WorkflowOutputUnavailableError } from './errors.js'
import { loadGraph, type StepView } from './graph-view.js'
import type { GetOutputOptions, StepMetadata, WorkflowMetadata } from './types.js'

const DEFAULT_POLL_MS = 500

export function checkStepId(stepId: unknown): asserts stepId is string {
  if (typeof stepId !== 'string' || stepId === '' || stepId.includes('/')) {
    throw new InvalidOptionsError(
      `stepId must be a step id as \`wf show\` prints it, got ${JSON.stringify(stepId)}`,
    )
  }
}

async function decodeStored(
  runtime: Runtime,
  store: WorkflowStore,
  workflowId: string,
  stepId: string,
  record: StepRecord,
) {
  const output = committedStepOutput(workflowId, stepId, record)
  return store.loadValue(workflowId, output, runtime.codec)
}

/** The committed result of a step; a continuation's result is its sub-graph's final result. */
export async function stepOutput(
  runtime: Runtime,
  store: WorkflowStore,
  record: WorkflowRecord,
  stepId: string,
): Promise<unknown> {
  const workflowId = record.workflowId
  const stepRecord = await store.readStep(workflowId, stepId, record)
  if (!stepRecord) {
    const view = (await loadGraph(runtime, store, record)).byId.get(stepId)
    if (!view) throw new StepNotFoundError(workflowId, stepId)
    throw new StepNotCommittedError(
      workflowId,
      stepId,
      view.status === 'FAILED' ? `it failed (${view.error?.message})` : 'it has not run to completion yet',
    )
  }
  if (stepRecord.kind === 'value') return decodeStored(runtime, store, workflowId, stepId, stepRecord)
  const subRoot = continuationRoot(workflowId, stepId, stepRecord)
  let value: unknown
  try {
    value = await stepOutput(runtime, store, record, subRoot)
  } catch (error) {
    if (!(error instanceof StepNotCommittedError)) throw error
    throw new StepNotCommittedError(
      workflowId,
      stepId,
      `the sub-graph it returned has not finished (${error.message})`,
    )
  }
  // The engine wraps a continuation's output when the continued step catches exceptions.
  const view = (await loadGraph(runtime, store, record)).byId.get(stepId)
  return view?.options.catchExceptions ? { ok: true, value } : value
}

/** The workflow's output, waiting while a runner (in this process or another) drives it. */
export async function workflowOutput(
  runtime: Runtime,
  workflowId: string,
  options: GetOutputOptions,
): Promise<unknown> {
  validateWorkflowId(workflowId)
  const { pollIntervalMs = DEFAULT_POLL_MS, signal } = options
  if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 1) {
    throw new InvalidOptionsError('pollIntervalMs must be a positive number of milliseconds')
  }
  const store = await runtime.store()
  if (options.stepId !== undefined) {
    // A step's result is there or not: no waiting (a step of a live run may never be reached).
    checkStepId(options.stepId)
    return stepOutput(runtime, store, (await store.requireWorkflow(workflowId)).record, options.stepId)
  }
  for (;;) {
    signal?.throwIfAborted()
    const active = runtime.activeResult(workflowId)
    if (active) return active
    const { record } = await store.requireWorkflow(workflowId)
    if (record.status === 'SUCCESSFUL') {
      const output = committedWorkflowOutput(record)
      return runtime.codec.decode(await store.loadOutput(workflowId, output))
    }
    if (record.status === 'CANCELED') throw new WorkflowCanceledError(workflowId)
    const status = runtime.deriveStatus(record)
    // Also a resumed failure whose runner died before it committed anything (`resumedFrom`).
    if (status === 'FAILED') throw executionErrorOf(record)
    if (status === 'RESUMABLE') throw new WorkflowOutputUnavailableError(workflowId, status)
    // RUNNING in another runtime or process, or PENDING: its record will say how it ended.
    // Aborted, it rejects with an AbortError: the loop's first line throws the signal's reason instead.
    await sleep(pollIntervalMs, undefined, { signal }).catch(() => {})
  }
}

/** `getMetadata(workflowId)`. */
export function workflowMetadata(runtime: Runtime, record: WorkflowRecord): WorkflowMetadata {
  const status = runtime.deriveStatus(record)
  const meta: WorkflowMetadata = {
    workflowId: record.workflowId,
    status,
    userMetadata: record.metadata ?? {},
    stats: { startTime: record.createdAt, runs: record.runs },
    rootStepId: record.rootStepId,
  }
  if (record.endedAt !== undefined) meta.stats.endTime = record.endedAt
  if (record.startedAt !== undefined) meta.stats.lastRunStartTime = record.startedAt
  if (status === 'FAILED' && record.error) {
    const { stepId, name, message, stack } = record.error
    meta.error = { stepId, name, message, ...(stack === undefined ? {} : { stack }) }
  }
  if (record.owner && (status === 'RUNNING' || status === 'RESUMABLE')) meta.runner = { ...record.owner }
  if (record.forkedFrom) meta.forkedFrom = { ...record.forkedFrom }
  if (status === 'PENDING' && typeof record.parkedUntil === 'number') {
    const waiting: NonNullable<WorkflowMetadata['waitingFor']> = { steps: [...(record.parkedSteps ?? [])] }
    if (record.parkedUntil < MAX_WAKE_TIME) waiting.until = record.parkedUntil
    if (record.parkedEvents?.length) waiting.events = [...record.parkedEvents]
    meta.waitingFor = waiting
  }
  // Pending only while it can still run: a CANCELED record has acknowledged it.
  if (record.cancelRequested && (status === 'RUNNING' || status === 'RESUMABLE')) {
    const { at, by } = record.cancelRequested
    meta.cancelRequested = { at, by: { ...by } }
  }
  if (record.runtime) {
    // The steps' fingerprints at submission: in the inline graph, or in the record beside it.
    const steps = typeof record.graph === 'object' ? record.graph.fingerprints : record.runtime.steps
    meta.runtime = steps ? { ...record.runtime, steps: { ...steps } } : record.runtime
  }
  return meta
}

/** `getMetadata(workflowId, { stepId })`. */
export async function stepMetadata(
  runtime: Runtime,
  store: WorkflowStore,
  record: WorkflowRecord,
  stepId: string,
): Promise<StepMetadata> {
  checkStepId(stepId)
  const view: StepView | undefined = (await loadGraph(runtime, store, record)).byId.get(stepId)
  if (!view) throw new StepNotFoundError(record.workflowId, stepId)
  const meta: StepMetadata = {
    workflowId: record.workflowId,
    stepId,
    name: view.name,
    status: view.status,
    options: view.options,
    userMetadata: view.options.metadata ?? {},
    stats: { attempts: view.record?.attempts ?? 0 },
    dependsOn: view.dependsOn,
  }
  if (view.record) {
    meta.stats.startTime = view.record.startTime
    meta.stats.endTime = view.record.endTime
  }
  if (view.continuationRootId !== undefined) meta.continuationRootId = view.continuationRootId
  if (view.parentStepId !== undefined) meta.parentStepId = view.parentStepId
  if (view.error) meta.error = view.error
  if (view.failures) meta.failures = view.failures
  if (view.codeChanged !== undefined) meta.codeChanged = view.codeChanged
  return meta
}
