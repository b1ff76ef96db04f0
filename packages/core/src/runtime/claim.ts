// Claiming a workflow: the first record a submission writes (PENDING, or RUNNING and owned by this
// runner), the compare-and-swap that takes a stored workflow over on resume (one runner wins), both
// only once the runner lease holds, and whether the runner a RUNNING record names is still there.

import { randomBytes } from 'node:crypto'
import {
  ConditionFailedError,
  InvalidOptionsError,
  quote,
  WorkflowNotFoundError,
  WorkflowStillActiveError,
} from '../errors.js'
import type { RunnerLease } from '../leases/runner-lease.js'
import { newWorkflowId, validateMetadata, validateWorkflowId } from '../model/ids.js'
import {
  type RunnerInfo,
  type RuntimeInfo,
  unparked,
  type Versioned,
  type WorkflowRecord,
  type WorkflowStatus,
} from '../model/records.js'
import { type Plan, planFromStored } from '../plan/graph.js'
import type { RunOptions } from '../step/runner.js'
import { getRegisteredStep } from '../step/step.js'
import { type WorkflowStore, withoutOwner } from '../store/store.js'
import { HOST, pidAlive } from '../util/host.js'
import { type CodeChangePolicy, checkCodeChange, compareSteps, currentRuntimeInfo } from './runtime-info.js'

/** The random part of this process's incarnations, drawn once. */
const PROCESS_NONCE = randomBytes(6).toString('hex')
let incarnations = 0

/**
 * A new incarnation for a workflow record (see `WorkflowRecord.incarnation`): unique without a
 * random draw per workflow (a process nonce and a counter), which the submission path would pay.
 */
export function newIncarnation(): string {
  return `${PROCESS_NONCE}.${(incarnations++).toString(36)}`
}

/** A runtime's identity in the records of the workflows it drives: new for each runtime. */
export function newRunner(): RunnerInfo {
  return { host: HOST, pid: process.pid, runnerId: randomBytes(8).toString('hex') }
}

/**
 * The status of a stored record as `runner` sees it: `RUNNING` becomes `RESUMABLE` when its runner
 * is gone (its process on this host, or its lease: the record's own in records of earlier
 * versions, else the runner's, filled in by `WorkflowStore.readWorkflow`), or `FAILED` for a
 * resume of a FAILED workflow that had committed nothing (`resumedFrom`). `drivenHere`: whether
 * `runner` is driving this workflow now.
 */
export function derivedStatus(
  record: WorkflowRecord,
  runner: RunnerInfo,
  drivenHere: boolean,
): WorkflowStatus {
  if (record.status !== 'RUNNING') return record.status
  // A resume of a FAILED workflow whose runner died before its first commit failed where it was.
  const left = record.resumedFrom === 'FAILED' ? 'FAILED' : 'RESUMABLE'
  const owner = record.owner
  if (!owner) return left
  if (owner.runnerId === runner.runnerId) return drivenHere ? 'RUNNING' : left
  return ownerGone(owner, record.leaseExpiresAt) ? left : 'RUNNING'
}

/**
 * Whether another runner, named as owner by a RUNNING record, is gone: its process on this host
 * exited, or its lease (`leaseExpiresAt`: the record's own, or its runner record's) ran out.
 */
export function ownerGone(owner: RunnerInfo, leaseExpiresAt: number | undefined): boolean {
  if (owner.host === HOST && !pidAlive(owner.pid)) return true
  return leaseExpiresAt !== undefined && leaseExpiresAt < Date.now()
}

/** The workflow id and metadata of a submission, checked before anything is stored. */
export function submission(options: RunOptions): {
  workflowId: string
  metadata: WorkflowRecord['metadata']
  pipelineCheckpoints: boolean | undefined
} {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionsError('run options must be an object')
  const workflowId = options.workflowId ?? newWorkflowId()
  validateWorkflowId(workflowId)
  // No metadata given (most runs): nothing to check, and no message made for nothing.
  const metadata = options.metadata ?? {}
  if (options.metadata !== undefined)
    validateMetadata(metadata, `the run options of workflow ${quote(workflowId)}`)
  const { pipelineCheckpoints } = options
  if (pipelineCheckpoints !== undefined && typeof pipelineCheckpoints !== 'boolean')
    throw new InvalidOptionsError(
      `the run options of workflow ${quote(workflowId)}: pipelineCheckpoints must be a boolean, got ${JSON.stringify(pipelineCheckpoints)}`,
    )
  return { workflowId, metadata: metadata as WorkflowRecord['metadata'], pipelineCheckpoints }
}

/**
 * What the workflow is submitted with. The steps' fingerprints ride in the record only when the
 * graph that holds them is stored apart, so that `getMetadata` stays one read.
 */
function runtimeOf(plan: Plan, graph: WorkflowRecord['graph']): RuntimeInfo {
  const runtime = currentRuntimeInfo()
  // The process's info is one shared object (its JSON is cached: `recordJson`); with steps, a copy.
  if (typeof graph === 'string' && plan.stored.fingerprints)
    return { ...runtime, steps: plan.stored.fingerprints }
  return runtime
}

/**
 * The first record of a submitted workflow: PENDING when it waits for a runner (a worker, a free
 * slot), else RUNNING, held by `owner` under its runner lease and listed by its start `batch`.
 */
export function submittedRecord(
  workflowId: string,
  metadata: WorkflowRecord['metadata'],
  plan: Plan,
  graph: WorkflowRecord['graph'],
  now: number,
  started?: { owner: RunnerInfo; batch: string },
  pipelineCheckpoints?: boolean,
): WorkflowRecord {
  const record = newRecord(workflowId, metadata, plan, graph, now, started)
  if (pipelineCheckpoints !== undefined) record.pipelineCheckpoints = pipelineCheckpoints
  return record
}

function newRecord(
  workflowId: string,
  metadata: WorkflowRecord['metadata'],
  plan: Plan,
  graph: WorkflowRecord['graph'],
  now: number,
  started?: { owner: RunnerInfo; batch: string },
): WorkflowRecord {
  if (!started) {
    return {
      v: 1,
      workflowId,
      status: 'PENDING',
      createdAt: now,
      updatedAt: now,
      metadata,
      graph,
      rootStepId: plan.root.id,
      runs: 0,
      runtime: runtimeOf(plan, graph),
      incarnation: newIncarnation(),
    }
  }
  return {
    v: 1,
    workflowId,
    status: 'RUNNING',
    createdAt: now,
    updatedAt: now,
    startedAt: now,
    metadata,
    graph,
    rootStepId: plan.root.id,
    runs: 1,
    owner: started.owner,
    lease: 'runner',
    startBatch: started.batch,
    runtime: runtimeOf(plan, graph),
    incarnation: newIncarnation(),
  }
}

/**
 * Runs `claim`, a write that names this runner as a workflow's owner, once the runner lease holds:
 * the runner record is always written before a record names it, and claims at the same moment
 * share one renewal. The claim holds the runner lease (its heartbeat runs) from here on: the run
 * it begins gives the hold back when it ends, or this does when the claim fails. `epoch`: the
 * runner lease's, before the claim was written.
 */
export async function underRunnerLease<C>(
  runnerLease: RunnerLease,
  claim: () => Promise<C>,
): Promise<{ claimed: C; epoch: number }> {
  runnerLease.hold()
  try {
    const ready = runnerLease.ready()
    if (ready) await ready
    const epoch = runnerLease.epoch
    return { claimed: await claim(), epoch }
  } catch (error) {
    runnerLease.unhold()
    throw error
  }
}

/**
 * The plan to resume a stored workflow by, checked against this process's code before anything is
 * written: with `'error'`, a code change leaves the workflow untouched.
 */
export async function planResume(
  store: WorkflowStore,
  record: WorkflowRecord,
  policy: CodeChangePolicy,
): Promise<Plan> {
  const workflowId = record.workflowId
  const stored = await store.loadGraph(record)
  const plan = planFromStored(stored, `workflow ${workflowId}`)
  checkCodeChange(workflowId, policy, compareSteps(stored.fingerprints, getRegisteredStep), record)
  return plan
}

/** Whether a resume of this record resumes a failure (the record reads FAILED). */
export function resumesFailure(record: WorkflowRecord): boolean {
  return record.status === 'FAILED' || (record.status === 'RUNNING' && record.resumedFrom === 'FAILED')
}

/**
 * Takes a stored workflow that nobody drives over for `runner` (whose runner lease must hold), by
 * compare-and-swap from `found`: of two runners resuming it at once, one wins and the other gets
 * `WorkflowStillActiveError`. The record is then held under `runner`'s lease, whatever kind of
 * lease it had before. A FAILED workflow keeps its error and says `resumedFrom: 'FAILED'` until
 * its first commit (see `derivedStatus`).
 */
export async function takeOver(
  store: WorkflowStore,
  found: Versioned<WorkflowRecord>,
  runner: RunnerInfo,
): Promise<Versioned<WorkflowRecord>> {
  const { record } = found
  const workflowId = record.workflowId
  // From now on it has a marker of its own: its start batch may be gone once the others ended.
  const { error, startBatch: _batch, resumedFrom: _from, ...rest } = withoutOwner(unparked(record))
  const next: WorkflowRecord = {
    ...rest,
    status: 'RUNNING',
    owner: runner,
    lease: 'runner',
    startedAt: Date.now(),
    runs: record.runs + 1,
  }
  if (resumesFailure(record)) {
    next.resumedFrom = 'FAILED'
    if (error) next.error = error
  }
  let taken: Versioned<WorkflowRecord>
  try {
    taken = await store.updateWorkflow(found, next)
  } catch (error) {
    if (error instanceof ConditionFailedError) {
      // A deletion marks the record first: lost to it, the workflow is gone, not taken.
      if ((await store.readWorkflow(workflowId).catch(() => null)) === undefined)
        throw new WorkflowNotFoundError(workflowId)
      throw new WorkflowStillActiveError(workflowId, 'another runner took it over at the same moment')
    }
    throw error
  }
  // It has its own marker now. Best effort: a worker's sweep takes it out otherwise.
  if (typeof record.startBatch === 'string')
    await store.removeFromStartBatch(record.startBatch, workflowId).catch(() => {})
  return taken
}
