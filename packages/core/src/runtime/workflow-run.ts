// One run of a workflow in this process: its lease and its Execution wired together, and the final
// record that says how the run ended (SUCCESSFUL, FAILED, CANCELED, or RUNNING without an owner, for
// another runner to resume), written by compare-and-swap so that a run never overwrites another's
// end. A cancel (of this process, or a request in the record) stops the run at once, in memory, and
// is acknowledged by the CANCELED record, written once no step record is being written.
// Over 400 lines: preparing, driving and ending a run (success, failure, cancel, park) in one place.

import {
  ConditionFailedError,
  InternalError,
  quote,
  RunnerShutdownError,
  WorkflowCanceledError,
  WorkflowExecutionError,
  WorkflowLeaseLostError,
} from '../errors.js'
import { Execution, type ExecutionFailure, ExecutionStopped } from '../execution/execution.js'
import { notifyInbox } from '../execution/inbox.js'
import { Lease } from '../leases/lease.js'
import type { RunnerLease } from '../leases/runner-lease.js'
import { type Codec, encodeValue, reduceError } from '../model/codec.js'
import {
  incarnationOf,
  type RunnerInfo,
  unparked,
  type Versioned,
  type WorkflowRecord,
} from '../model/records.js'
import type { Plan } from '../plan/graph.js'
import { getRegisteredStep } from '../step/step.js'
import { type WorkflowStore, withoutOwner } from '../store/store.js'
import { LazyAbortController } from '../util/lazy-abort.js'
import { type CodeChangePolicy, checkCodeChange, compareSteps } from './runtime-info.js'
import { pendingEvent } from './send-event.js'

/** What a run takes from its runtime (a `Runtime` is one). */
export interface RunSettings {
  readonly codec: Codec
  readonly maxConcurrency: number
  readonly runner: RunnerInfo
  readonly heartbeatMs: number
  /** A run whose every running step sleeps longer than this lets the workflow go (parks it). */
  readonly parkAfterMs: number
  /** How often a step waiting for an event lists the inbox. */
  readonly eventPollMs: number
  /** Pipelined checkpoints for workflows that do not choose (`RunOptions.pipelineCheckpoints`). */
  readonly pipelineCheckpoints: boolean
  readonly maxCheckpointsInFlight: number
}

/**
 * How a run ends when it parked its workflow: nothing failed, the workflow waits (PENDING) until
 * `wakeAt` for a worker, or the process awaiting it, to take it on. The runtime never lets it out.
 */
export class WorkflowParked extends Error {
  readonly workflowId: string
  readonly wakeAt: number
  constructor(workflowId: string, wakeAt: number) {
    super(`workflow "${workflowId}" is parked until ${new Date(wakeAt).toISOString()}`)
    this.workflowId = workflowId
    this.wakeAt = wakeAt
  }
}

/** A run under way. Its lease is the caller's to stop once `result` settles. */
export interface WorkflowRun {
  readonly controller: LazyAbortController
  readonly execution: Execution
  readonly lease: Lease
  /** The workflow's output once the final record is written; rejects as `run()` does. */
  readonly result: Promise<unknown>
  /**
   * Cancels the run: no step starts and nothing is committed from now on (in memory, at once);
   * resolves once the CANCELED record is written (or the record turned out to have ended otherwise).
   */
  cancel(): Promise<void>
}

/**
 * A run's Execution and abort controller, made before its lease exists: a resume loads the
 * committed records (`Execution.preload`) before it takes the workflow over.
 */
export interface PreparedRun {
  readonly controller: LazyAbortController
  readonly execution: Execution
}

interface RunParts extends PreparedRun {
  lease?: Lease
  /** The write that drops `resumedFrom` after the first commit of a resumed FAILED workflow. */
  cleared?: Promise<unknown>
}

/**
 * Makes the Execution of one run of `workflowId`. `firstRun`: no runner drove it before (its root
 * step may be committed by the final record). `fromFailed`: a resume of a FAILED workflow, whose
 * record keeps its error until the first step commits. `stored`: on resume, the record read;
 * `submitted`: on a first run, the record just written.
 */
export function prepareRun(
  settings: RunSettings,
  store: WorkflowStore,
  workflowId: string,
  policy: CodeChangePolicy,
  firstRun: boolean,
  fromFailed = false,
  stored?: WorkflowRecord,
  submitted?: WorkflowRecord,
): PreparedRun {
  const controller = new LazyAbortController()
  // One closure for both checks; the options are one literal (no spreads: a workflow each).
  const ensure = () => parts.lease?.ensure()
  const parts: RunParts = {
    controller,
    execution: new Execution({
      workflowId,
      store,
      codec: settings.codec,
      maxConcurrency: settings.maxConcurrency,
      abort: controller,
      record: stored,
      pipelineCheckpoints: (stored ?? submitted)?.pipelineCheckpoints ?? settings.pipelineCheckpoints,
      maxCheckpointsInFlight: settings.maxCheckpointsInFlight,
      beforeStart: ensure,
      beforeCommit: ensure,
      // Every step that could run waits: held for a short wait, let go (parked) for a long one.
      parkAfterMs: Number.isFinite(settings.parkAfterMs) ? settings.parkAfterMs : undefined,
      eventPollMs: settings.eventPollMs,
      incarnation: () => incarnationOf(parts.lease?.current.record ?? ({ createdAt: 0 } as WorkflowRecord)),
      // Continuations stored by an earlier run carry their steps' fingerprints: check them too.
      onStoredSubGraph: (graph) =>
        checkCodeChange(workflowId, policy, compareSteps(graph.fingerprints, getRegisteredStep), undefined),
      onStepDone: fromFailed
        ? (node) => {
            const lease = parts.lease
            if (parts.cleared || !lease || node.options.checkpoint === false) return
            // The first commit: the workflow is no longer the failure it was.
            const { resumedFrom: _from, error: _error, ...rest } = lease.current.record
            // Should it fail (the record changed meanwhile), the next commit tries again.
            parts.cleared = lease.update(rest).catch(() => {
              parts.cleared = undefined
            })
          }
        : undefined,
      // The first runner of a workflow commits its root step in the final record: no other runner
      // can hold an older version of the record. After a takeover, a runner that lost the
      // workflow (of an earlier version of wf, too) may still commit the root's step record: the
      // root then commits by create-if-absent as every step does, adopting such a record.
      deferRootCommit: firstRun,
    }),
  }
  return parts
}

/**
 * Starts driving `taken` (a record this runner just wrote as its owner, under `runnerLease` ready
 * in `epoch`) by `plan`, with the execution `prepared` for it.
 */
export function startRun(
  settings: RunSettings,
  store: WorkflowStore,
  runnerLease: RunnerLease,
  epoch: number,
  taken: Versioned<WorkflowRecord>,
  plan: Plan,
  resume: boolean,
  prepared: PreparedRun,
  canceled = false,
): WorkflowRun {
  const parts = prepared as RunParts
  const { controller, execution } = parts
  let acknowledging: Promise<void> | undefined
  const cancel = (): Promise<void> => {
    controller.abort()
    if (!acknowledging) {
      acknowledging = execution.writesSettled().then(() => writeCanceled(store, settings.runner, lease))
      acknowledging.catch(() => {})
    }
    return acknowledging
  }
  const lease = new Lease(store, settings.runner, runnerLease, taken, epoch, settings.heartbeatMs, {
    onCancel: (requested) => {
      if (requested) void cancel()
      else controller.abort()
    },
    onLost: (error) => {
      execution.halt({ kind: 'infrastructure', error })
      controller.abort()
    },
  })
  parts.lease = lease
  lease.start()
  // Canceled before this run began (a request in the record it took over, or a cancel in this
  // process while it was being claimed): aborted before the execution starts anything.
  if (canceled || taken.record.cancelRequested !== undefined) void cancel()
  const result = driveToEnd(store, settings, parts, execution.run(plan, resume), () => acknowledging)
  return { controller, execution, lease, result, cancel }
}

/**
 * Writes CANCELED from this runner's latest version of the record, by compare-and-swap, following
 * newer versions of its own record (a cancel request written meanwhile). Gives up quietly when the
 * record ended otherwise or belongs to someone else now: the canceler reads that.
 */
async function writeCanceled(store: WorkflowStore, runner: RunnerInfo, lease: Lease): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const { rootStep: _root, resumedFrom: _from, ...rest } = withoutOwner(unparked(lease.current.record))
    try {
      await lease.update({ ...rest, status: 'CANCELED', endedAt: Date.now() })
      return
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error
      const now = await store.readWorkflow(rest.workflowId)
      if (now?.record.status !== 'RUNNING' || now.record.owner?.runnerId !== runner.runnerId) return
      lease.adopt(now)
    }
  }
}

/**
 * After a compare-and-swap of the run's own record lost: whether the record now asks this runner
 * to stop (`cancelRequested`). Then the run acknowledges by writing CANCELED instead of its end.
 */
async function cancelRequestedNow(
  store: WorkflowStore,
  runner: RunnerInfo,
  lease: Lease,
  error: unknown,
): Promise<boolean> {
  if (!(error instanceof ConditionFailedError)) return false
  const now = await store.readWorkflow(lease.current.record.workflowId).catch(() => undefined)
  if (
    now?.record.status !== 'RUNNING' ||
    now.record.owner?.runnerId !== runner.runnerId ||
    now.record.cancelRequested === undefined
  )
    return false
  lease.adopt(now)
  await writeCanceled(store, runner, lease)
  return true
}

/**
 * Waits for the execution and records how it ended, by compare-and-swap on the record. When the
 * root step returned a value, the SUCCESSFUL record is that step's commit (`rootStep`): exactly
 * once, as the compare-and-swap from this runner's version succeeds for one runner only.
 */
async function driveToEnd(
  store: WorkflowStore,
  settings: RunSettings,
  parts: RunParts,
  running: Promise<unknown>,
  acknowledging: () => Promise<void> | undefined,
): Promise<unknown> {
  const lease = parts.lease as Lease
  const execution = parts.execution
  const { codec, runner } = settings
  const taken = lease.current.record
  const workflowId = taken.workflowId
  // The final records carry no owner or lease: the workflow is no longer held by anyone. An end
  // that is not a failure drops a resumed failure's error; one that leaves the workflow for
  // another runner keeps `resumedFrom` (and the error) while nothing was committed.
  const base = (final: boolean): WorkflowRecord => {
    const { rootStep: _root, ...rest } = withoutOwner(lease.current.record)
    if (final) {
      delete rest.resumedFrom
      delete rest.error
    }
    return rest
  }
  try {
    const output = await running
    if (parts.cleared) await parts.cleared
    const ensuring = lease.ensure()
    if (ensuring) await ensuring
    const root = execution.rootCommit
    const stored =
      root?.output ??
      (await store.storeOutput(workflowId, encodeValue(codec, output, 'output', taken.rootStepId)))
    lease.stop()
    const next: WorkflowRecord = { ...base(true), status: 'SUCCESSFUL', endedAt: Date.now(), output: stored }
    if (root) next.rootStep = root.run
    const won = await writeEnd(store, runner, lease, next)
    return won ? decodeOutput(store, codec, won) : output
  } catch (error) {
    lease.stop()
    if (parts.cleared) await parts.cleared
    const failure = failureOf(error, workflowId)
    if (failure.kind === 'canceled') {
      // `run()` rejects once the CANCELED record is written (or known to be impossible).
      await acknowledging()?.catch(() => {})
      throw new WorkflowCanceledError(workflowId)
    }
    if (failure.kind === 'parked') {
      const parked = await parkWorkflow(store, runner, lease, base(true), failure)
      // An event sent between the last look at the inbox and the parked record: its sender read
      // the record before it said parked, so nobody made the workflow due. Make it due now.
      if (failure.events.length > 0 && (await pendingEvent(store, parked, { seq: failure.inboxSeq }))) {
        await store.markDue(workflowId, Date.now())
        notifyInbox(workflowId)
      }
      throw new WorkflowParked(workflowId, failure.wakeAt)
    }
    if (failure.kind === 'step') {
      const recorded = reduceError(
        failure.error instanceof Error ? failure.error : new Error(String(failure.error)),
      )
      const failed: WorkflowRecord = {
        ...base(true),
        status: 'FAILED',
        endedAt: Date.now(),
        error: {
          name: recorded.name,
          message: recorded.message,
          stack: recorded.stack,
          stepId: failure.stepId,
        },
      }
      const won = await writeEnd(store, runner, lease, failed)
      if (won) return decodeOutput(store, codec, won)
      throw new WorkflowExecutionError(workflowId, failure.stepId, failure.error)
    }
    // Not the workflow's fault (storage down, step not registered, shutdown, lease lost): leave
    // it resumable by giving up ownership, if the storage (and the lease) still let us.
    let canceled = false
    await lease.update({ ...base(false), status: 'RUNNING' }).catch(async (lost: unknown) => {
      canceled = await cancelRequestedNow(store, runner, lease, lost).catch(() => false)
    })
    if (canceled) throw new WorkflowCanceledError(workflowId)
    if (failure.kind === 'released') throw new RunnerShutdownError(workflowId)
    throw failure.error
  }
}

/** How a run's execution ended, from what it rejected with. */
function failureOf(error: unknown, workflowId: string): Exclude<ExecutionFailure, { kind: 'superseded' }> {
  if (error instanceof ExecutionStopped) {
    const failure = error.failure
    if (failure.kind !== 'superseded') return failure
    // Another runner drives the workflow now: this one lost it, as when its lease is lost.
    const detail = `another runner committed step ${quote(failure.stepId)} first, with another value`
    return { kind: 'infrastructure', error: new WorkflowLeaseLostError(workflowId, detail) }
  }
  if (error instanceof WorkflowCanceledError) return { kind: 'canceled' }
  return { kind: 'infrastructure', error }
}

/**
 * Lets the workflow go until `wakeAt`: PENDING without an owner, listed by its due marker alone
 * (its start batch lets it go too: the batch is settled as this run ends). A cancel requested
 * meanwhile is acknowledged instead (`WorkflowCanceledError`); a cancel of this process wins too.
 */
async function parkWorkflow(
  store: WorkflowStore,
  runner: RunnerInfo,
  lease: Lease,
  base: WorkflowRecord,
  parked: Extract<ExecutionFailure, { kind: 'parked' }>,
): Promise<WorkflowRecord> {
  const { startBatch: _batch, ...rest } = base
  const next: WorkflowRecord = {
    ...rest,
    status: 'PENDING',
    parkedUntil: parked.wakeAt,
    parkedSteps: parked.stepIds,
  }
  if (parked.events.length > 0) next.parkedEvents = parked.events
  try {
    await lease.update(next)
    return next
  } catch (error) {
    if (await cancelRequestedNow(store, runner, lease, error))
      throw new WorkflowCanceledError(base.workflowId)
    throw error
  }
}

/**
 * Writes the final record. When someone else wrote the record first, the run ends as it ended
 * there, never overwriting it: canceled, failed, or SUCCESSFUL (that record is returned, and its
 * output adopted: another runner committed the root step first). A cancel request that came
 * meanwhile is acknowledged instead: the run ends CANCELED.
 */
async function writeEnd(
  store: WorkflowStore,
  runner: RunnerInfo,
  lease: Lease,
  next: WorkflowRecord,
): Promise<WorkflowRecord | undefined> {
  try {
    await lease.update(next)
    return undefined
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error
    if (await cancelRequestedNow(store, runner, lease, error))
      throw new WorkflowCanceledError(next.workflowId)
    const now = await store.readWorkflow(next.workflowId)
    if (now?.record.status === 'CANCELED') throw new WorkflowCanceledError(next.workflowId)
    if (now?.record.status === 'SUCCESSFUL') return now.record
    if (now?.record.status === 'FAILED') throw executionErrorOf(now.record)
    throw error
  }
}

/** The stored output of a SUCCESSFUL workflow, decoded. */
export async function decodeOutput<T>(
  store: WorkflowStore,
  codec: Codec,
  record: WorkflowRecord,
): Promise<T> {
  if (!record.output) throw new InternalError(`workflow "${record.workflowId}" has no stored output`)
  return codec.decode(await store.loadOutput(record.workflowId, record.output)) as T
}

/** Rebuilds the error of a FAILED workflow from its record, as `run()` rejected with it. */
export function executionErrorOf(record: WorkflowRecord): WorkflowExecutionError {
  const recorded = record.error
  const cause = new Error(recorded?.message ?? 'the failure was not recorded')
  if (recorded) {
    Object.defineProperty(cause, 'name', { value: recorded.name, writable: true, configurable: true })
    if (recorded.stack !== undefined) cause.stack = recorded.stack
  }
  return new WorkflowExecutionError(record.workflowId, recorded?.stepId ?? record.rootStepId, cause)
}
