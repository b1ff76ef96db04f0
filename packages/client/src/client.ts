// `WorkflowClient`: the management API (Ray's get_status, resume, cancel, list_all, resume_all,
// get_output, get_metadata, delete) over one core `Runtime`, so runs it resumes are driven, and
// runs it cancels are stopped, by that runtime.
// Over 400 lines: WorkflowClient has one method per management operation, each with its TSDoc.

import {
  ConditionFailedError,
  CorruptRecordError,
  type EventSummary,
  getRuntime,
  InvalidOptionsError,
  Runtime,
  type RuntimeOptions,
  type SendEventOptions,
  type SentEvent,
  type StorageSpec,
  validateWorkflowId,
  type WorkflowHandle,
  WorkflowNotFoundError,
  WorkflowNotResumableError,
  type WorkflowStatus,
  WorkflowStillActiveError,
} from '@wf/core'
import { incarnationOf, listEvents } from '@wf/core/internal'
import { type CheckStorageOptions, checkStore, type StorageReport } from './doctor.js'
import { type ForkOptions, type ForkResult, forkWorkflow } from './fork.js'
import { loadGraph, type WorkflowGraph } from './graph-view.js'
import { stepMetadata, workflowMetadata, workflowOutput } from './inspect.js'
import { listAll, listWorkflows } from './listing.js'
import { type DeleteWorkflowsOptions, type DeleteWorkflowsResult, deleteWorkflows } from './retention.js'
import {
  backfillSchedule,
  deleteSchedule,
  getSchedule,
  listSchedules,
  pauseSchedule,
  type ScheduleInfo,
  triggerSchedule,
} from './schedules.js'
import type {
  DeleteOptions,
  GetOutputOptions,
  ListWorkflowsOptions,
  ResumeAllOptions,
  ResumedWorkflow,
  ResumedWorkflows,
  StatusFilter,
  StepMetadata,
  UnreadableWorkflow,
  WorkflowList,
  WorkflowMetadata,
  WorkflowPage,
} from './types.js'
import { unreadable, withErrors } from './unreadable.js'

/** Options of `new WorkflowClient()`. */
export interface WorkflowClientOptions extends RuntimeOptions {
  /**
   * Where the workflows are: a `Storage` or a URI (a path, `file://`, `s3://`, `memory://`),
   * resolved as `init()` does; `undefined` means `WF_STORAGE`, else the default folder.
   */
  storage?: StorageSpec
  /** Use this runtime (and its storage) instead of making one. Runs it drives can be canceled at once. */
  runtime?: Runtime
}

/**
 * Manages workflows on one storage.
 *
 * ```ts
 * const client = new WorkflowClient({ storage: '/var/lib/my-app/workflows' })
 * for (const { workflowId, status } of await client.listAll(['RESUMABLE', 'FAILED'])) {
 *   console.log(workflowId, status)
 * }
 * const total = await client.resume<number>('daily-2026-11-26')
 * ```
 *
 * With `{ storage }` (or runtime options) the client makes its own runtime; with `{ runtime }` it
 * uses that one; with no options at all it follows the process-wide runtime (`init()`), as the
 * module functions do. `cancel` stops a run driven by the client's runtime at once, and waits for
 * the runner driving it elsewhere to acknowledge.
 */
export class WorkflowClient {
  readonly #runtime: Runtime | undefined
  readonly #owned: boolean

  constructor(options: WorkflowClientOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionsError('WorkflowClient options must be an object')
    }
    const { runtime, storage, ...runtimeOptions } = options
    if (runtime !== undefined) {
      if (!(runtime instanceof Runtime))
        throw new InvalidOptionsError('runtime must be a Runtime from @wf/core')
      if ('storage' in options || Object.keys(runtimeOptions).length > 0) {
        throw new InvalidOptionsError('give either runtime, or storage and runtime options, not both')
      }
      this.#runtime = runtime
      this.#owned = false
    } else if (Object.keys(options).length > 0) {
      this.#runtime = new Runtime(storage, runtimeOptions)
      this.#owned = true
    } else {
      this.#runtime = undefined
      this.#owned = false
    }
  }

  /** The runtime this client works through (the process-wide one when none was given). */
  get runtime(): Runtime {
    return this.#runtime ?? getRuntime()
  }

  /**
   * The workflow's status: `RUNNING`, `PENDING`, `FAILED`, `RESUMABLE` (its runner is gone),
   * `CANCELED` or `SUCCESSFUL`. Throws `WorkflowNotFoundError` for an unknown id.
   */
  async getStatus(workflowId: string): Promise<WorkflowStatus> {
    validateWorkflowId(workflowId)
    const runtime = this.runtime
    const { record } = await (await runtime.store()).requireWorkflow(workflowId)
    return runtime.deriveStatus(record)
  }

  /**
   * Resumes a workflow and resolves to its output, running only the steps not committed yet. A
   * SUCCESSFUL workflow gives its stored output without running anything; a CANCELED one throws
   * `WorkflowNotResumableError`; one driven by a live runner throws `WorkflowStillActiveError`.
   * The modules that define its steps must be loaded.
   */
  resume<T = unknown>(workflowId: string): Promise<T> {
    return this.runtime.resume<T>(workflowId)
  }

  /** Like `resume`, resolving to a handle as soon as this runtime has taken the workflow over. */
  resumeAsync<T = unknown>(workflowId: string): Promise<WorkflowHandle<T>> {
    return this.runtime.resumeAsync<T>(workflowId)
  }

  /**
   * Cancels a workflow and resolves to its status: CANCELED (it cannot be resumed), or SUCCESSFUL
   * for one that had succeeded already (left as it is; a CANCELED one resolves CANCELED). Once it
   * resolves, no step of the workflow starts anywhere and no result finishing later is committed:
   * a run in this client's runtime stops at once; a run driven by another process is asked to stop
   * and acknowledges within about one of its heartbeats, and `CancelNotAcknowledgedError` says
   * when a live runner did not within `leaseTtlMs + heartbeatMs`. Aborted steps see
   * `currentStep().signal`; the run's `run()` rejects with `WorkflowCanceledError`. PENDING,
   * FAILED and RESUMABLE workflows become CANCELED at once. Checkpoints stay until `delete`.
   */
  cancel(workflowId: string): Promise<'CANCELED' | 'SUCCESSFUL'> {
    return this.runtime.cancel(workflowId)
  }

  /**
   * Workflows by status, ordered by id: all of them, those of one status, or of any of several
   * (`listAll(['RUNNING', 'CANCELED'])`, a Set works too). Reads the status index, not every
   * record: only RUNNING/PENDING ones (to tell RESUMABLE apart) and any left with two index
   * entries by a crash (whose index it repairs).
   *
   * A record that cannot be read (corrupt) does not fail the listing: the array holds every
   * workflow that could be read, and its `errors` the ones that could not (see `WorkflowList`).
   */
  listAll(filter?: StatusFilter): Promise<WorkflowList> {
    return listAll(this.runtime, filter)
  }

  /**
   * One page of workflows with their creation time and metadata, ordered by id. Filters by status
   * use the index; every workflow that passes the status filter has its record read (for
   * `createdAt`, `metadata` and the time/metadata filters), so prefer narrow status filters on
   * large stores. Pass the returned `cursor` to get the next page. Records that cannot be read are
   * reported in the page's `errors`, not thrown.
   */
  listWorkflows(options?: ListWorkflowsOptions): Promise<WorkflowPage> {
    return listWorkflows(this.runtime, options)
  }

  /**
   * Resumes every RESUMABLE workflow (and FAILED ones with `includeFailed`). CANCELED and
   * SUCCESSFUL workflows, and RUNNING ones held by a live runner, are never included; a workflow
   * that another caller takes over at the same moment is skipped. A workflow whose record cannot be
   * read is not resumed: it is reported in the result's `errors`, and the others are resumed.
   */
  async resumeAll<T = unknown>(options: ResumeAllOptions = {}): Promise<ResumedWorkflows<T>> {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionsError('resumeAll options must be an object')
    }
    const includeFailed = options.includeFailed ?? false
    if (typeof includeFailed !== 'boolean') throw new InvalidOptionsError('includeFailed must be a boolean')
    const runtime = this.runtime
    const store = await runtime.store()
    const wanted: WorkflowStatus[] = includeFailed ? ['RESUMABLE', 'FAILED'] : ['RESUMABLE']
    const resumed: ResumedWorkflow<T>[] = []
    const listed = await listAll(runtime, wanted)
    const errors: UnreadableWorkflow[] = [...listed.errors]
    for (const { workflowId } of listed) {
      let handle: WorkflowHandle<T>
      try {
        // Re-read just before taking over: it may have ended since the listing, and resuming a
        // SUCCESSFUL workflow would hand back its output as if we had run it.
        const now = await store.readWorkflow(workflowId)
        if (!now || !wanted.includes(runtime.deriveStatus(now.record))) continue
        handle = await runtime.resumeAsync<T>(workflowId)
      } catch (error) {
        if (
          error instanceof WorkflowStillActiveError ||
          error instanceof WorkflowNotResumableError ||
          error instanceof WorkflowNotFoundError
        ) {
          continue
        }
        // Unreadable since the listing (or a step record of it): report it, resume the others.
        if (error instanceof CorruptRecordError) {
          errors.push(unreadable(error, workflowId))
          continue
        }
        throw error
      }
      resumed.push({ workflowId, result: handle.result(), handle })
    }
    return withErrors(resumed, errors)
  }

  /**
   * The workflow's output. Waits while it runs (in this process, or in another one by re-reading
   * its record every `pollIntervalMs`); rejects with `WorkflowExecutionError` for a FAILED workflow,
   * `WorkflowCanceledError` for a CANCELED one, `WorkflowOutputUnavailableError` for a RESUMABLE one.
   * With `stepId`: that step's committed result (`StepNotCommittedError` if it has none yet).
   */
  getOutput<T = unknown>(workflowId: string, options: GetOutputOptions = {}): Promise<T> {
    return workflowOutput(this.runtime, workflowId, options) as Promise<T>
  }

  /**
   * Sends event `name` with `payload` to workflow `workflowId`, where `waitForEvent(name)` takes it
   * (see `Runtime.sendEvent`): buffered until a waiting step takes it, taken in the order sent,
   * each once; a parked workflow is woken. `EventRefusedError` for a SUCCESSFUL or CANCELED
   * workflow, `WorkflowNotFoundError` for an unknown id unless `start` creates it. Resending with
   * the same `idempotencyKey` is safe (`duplicate: true`).
   */
  sendEvent(
    workflowId: string,
    name: string,
    payload: unknown,
    options?: SendEventOptions,
  ): Promise<SentEvent> {
    return this.runtime.sendEvent(workflowId, name, payload, options)
  }

  /**
   * The events sent to a workflow, in the order they were accepted, with the step that took each
   * (none yet: it waits for a `waitForEvent` of its name).
   */
  async listEvents(workflowId: string): Promise<EventSummary[]> {
    validateWorkflowId(workflowId)
    const store = await this.runtime.store()
    const { record } = await store.requireWorkflow(workflowId)
    return listEvents(store, workflowId, incarnationOf(record))
  }

  /**
   * Starts a new workflow from the same graph that keeps every committed result not downstream of
   * `fromStep` (copied, blobs too) and runs `fromStep` and what depends on it again, with the code
   * loaded now: after a fix, rerun from the failed step. Without `fromStep`, from the first failed
   * (or, CANCELED, unfinished) step. Runs it here as `resume` does (`detach`: PENDING for workers).
   * `WorkflowStillActiveError` for a RUNNING or PENDING workflow, `StepNotFoundError`,
   * `WorkflowAlreadyExistsError` for a taken `workflowId`.
   */
  fork<T = unknown>(workflowId: string, options: ForkOptions = {}): Promise<ForkResult<T>> {
    return forkWorkflow<T>(this.runtime, workflowId, options)
  }

  /** Every stored schedule: spec (and in words), paused, last and next tick, skipped ticks. */
  listSchedules(): Promise<ScheduleInfo[]> {
    return listSchedules(this.runtime)
  }

  /** One schedule, with its next `upcoming` fire times (default 5). `ScheduleNotFoundError` when none is stored. */
  getSchedule(scheduleId: string, options: { upcoming?: number } = {}): Promise<ScheduleInfo> {
    return getSchedule(this.runtime, scheduleId, options.upcoming ?? 5)
  }

  /** Pauses a schedule: no worker fires its ticks (they are recorded skipped) until `resumeSchedule`. */
  pauseSchedule(scheduleId: string): Promise<ScheduleInfo> {
    return pauseSchedule(this.runtime, scheduleId, true)
  }

  /** Resumes a paused schedule from now: the ticks of the pause are not caught up. */
  resumeSchedule(scheduleId: string): Promise<ScheduleInfo> {
    return pauseSchedule(this.runtime, scheduleId, false)
  }

  /**
   * Runs a schedule now, by hand: the workflow `<id>@manual-<now ISO>`, PENDING for a worker.
   * Needs the schedule declared in this process (`ScheduleNotDeclaredError`). Resolves to its id.
   */
  triggerSchedule(scheduleId: string): Promise<string> {
    return triggerSchedule(this.runtime, scheduleId)
  }

  /**
   * One run per tick in `[from, to]`, PENDING for workers, each with its tick's id
   * (`<id>@<tick ISO>`): a tick that ran or was backfilled already is not run again (`existing`).
   * Needs the schedule declared in this process. At most 1,000 ticks per call.
   */
  backfillSchedule(
    scheduleId: string,
    from: Date | number,
    to: Date | number,
  ): Promise<{ created: string[]; existing: string[] }> {
    return backfillSchedule(this.runtime, scheduleId, Number(from), Number(to))
  }

  /** Deletes a schedule's record (a schedule no longer in the code). A worker that still declares it creates it again. */
  deleteSchedule(scheduleId: string): Promise<void> {
    return deleteSchedule(this.runtime, scheduleId)
  }

  /** The workflow's status, user metadata and timing; with `stepId`, that step's. */
  getMetadata(workflowId: string): Promise<WorkflowMetadata>
  getMetadata(workflowId: string, options: { stepId: string }): Promise<StepMetadata>
  getMetadata(workflowId: string, options?: { stepId?: string }): Promise<WorkflowMetadata | StepMetadata>
  async getMetadata(
    workflowId: string,
    options: { stepId?: string } = {},
  ): Promise<WorkflowMetadata | StepMetadata> {
    validateWorkflowId(workflowId)
    const runtime = this.runtime
    const store = await runtime.store()
    const { record } = await store.requireWorkflow(workflowId)
    if (options.stepId !== undefined) return stepMetadata(runtime, store, record, options.stepId)
    return workflowMetadata(runtime, record)
  }

  /**
   * The workflow's step graph with each step's status, attempts and timing, continuations nested
   * under the step that returned them (what `wf show` prints). Reads every committed step record.
   */
  async getGraph(workflowId: string): Promise<WorkflowGraph> {
    validateWorkflowId(workflowId)
    const store = await this.runtime.store()
    return loadGraph(this.runtime, store, (await store.requireWorkflow(workflowId)).record)
  }

  /**
   * Deletes a workflow: its record, steps, graph, blobs and index entries. Refuses one that is
   * RUNNING with a live runner or PENDING (`WorkflowStillActiveError`); `WorkflowNotFoundError`
   * for an unknown id. A workflow whose record cannot be read throws `CorruptRecordError`, unless
   * `{ force: true }`: then every key of it is removed (as for one whose record is gone while its
   * steps or index markers remain). Nobody can be running a workflow with an unreadable record:
   * every status change reads it first.
   */
  async delete(workflowId: string, options: DeleteOptions = {}): Promise<void> {
    validateWorkflowId(workflowId)
    if (typeof options !== 'object' || options === null)
      throw new InvalidOptionsError('delete options must be an object')
    const force = options.force ?? false
    if (typeof force !== 'boolean') throw new InvalidOptionsError('force must be a boolean')
    const runtime = this.runtime
    if (runtime.isActive(workflowId))
      throw new WorkflowStillActiveError(workflowId, 'this process is running it')
    const store = await runtime.store()
    // The record is marked deleted by compare-and-swap first: a resume that wrote it since it was
    // read wins, and the status is checked again on the record it wrote.
    for (let attempt = 0; ; attempt++) {
      let found: Awaited<ReturnType<typeof store.readStoredWorkflow>>
      try {
        found = await store.readStoredWorkflow(workflowId)
      } catch (error) {
        if (!(force && error instanceof CorruptRecordError)) throw error
        await store.purgeWorkflow(workflowId)
        return
      }
      if (!found) {
        if (force && (await store.purgeWorkflow(workflowId)).length > 0) return
        throw new WorkflowNotFoundError(workflowId)
      }
      const { record } = found
      // A deletion left halfway (a crash): finished here.
      if (record.deleting === undefined) {
        const status = runtime.deriveStatus(record)
        if (status === 'RUNNING' || status === 'PENDING') {
          throw new WorkflowStillActiveError(
            workflowId,
            `it is ${status}: cancel it (or wait for it to end) before deleting it`,
          )
        }
      }
      try {
        await store.deleteWorkflow(workflowId, found)
        return
      } catch (error) {
        if (!(error instanceof ConditionFailedError) || attempt >= 8) throw error
      }
    }
  }

  /**
   * Deletes ended workflows in bulk, with every key they own (records, steps, graph, blobs, events,
   * index entries): those of the given `status` (FAILED, CANCELED, SUCCESSFUL; never RUNNING,
   * PENDING or RESUMABLE) that ended before `endedBefore`, with `metadata` if given. Lists the
   * ended index by day, so it reads only the records of workflows old enough. Each deletion marks
   * the record first by compare-and-swap: a workflow resumed meanwhile stays (`skipped`), and
   * readers find each workflow whole or gone. `dryRun` counts and deletes nothing.
   *
   * ```ts
   * const { workflows, keys } = await client.deleteWorkflows({
   *   status: ['SUCCESSFUL', 'CANCELED'],
   *   endedBefore: Date.now() - 30 * 86_400_000,
   * })
   * ```
   */
  deleteWorkflows(options: DeleteWorkflowsOptions): Promise<DeleteWorkflowsResult> {
    return deleteWorkflows(this.runtime, options)
  }

  /**
   * Checks the storage for records that cannot be read, keys of workflows without a record
   * (orphans) and index markers that disagree with their record (what `wf doctor` prints); with
   * `{ fix: true }`, repairs the index and removes orphans whose keys are older than ten lease
   * periods (and whose start batch's runner is gone), never a readable workflow. Reads every key.
   *
   * ```ts
   * const report = await client.checkStorage()
   * for (const bad of report.corrupt) console.log(bad.key, bad.message)
   * ```
   */
  checkStorage(options?: CheckStorageOptions): Promise<StorageReport> {
    return checkStore(this.runtime, options)
  }

  /** Releases the storage when this client made its own runtime (a no-op otherwise). */
  async close(): Promise<void> {
    if (this.#owned && this.#runtime) await (await this.#runtime.storage()).close?.()
  }
}
