// The runtime: submits, resumes and cancels workflows, and keeps what one process knows about
// them (the runs it drives, the queue under maxRunningWorkflows). Claiming a record is claim.ts's,
// driving a run to its final record workflow-run.ts's. One runtime per process is the usual case
// (`init()`); tests and tools may create more.
// Over 400 lines: mostly the public methods' TSDoc; the work is in claim.ts and workflow-run.ts.

import { setTimeout as delay } from 'node:timers/promises'
import {
  ConditionFailedError,
  RunnerShutdownError,
  StepNotRegisteredError,
  WorkflowAlreadyExistsError,
  WorkflowCanceledError,
  WorkflowExecutionError,
  WorkflowNotResumableError,
  WorkflowStillActiveError,
} from '../errors.js'
import type { Execution } from '../execution/execution.js'
import { listenInbox } from '../execution/inbox.js'
import { RunnerLease } from '../leases/runner-lease.js'
import type { Codec } from '../model/codec.js'
import { validateWorkflowId } from '../model/ids.js'
import {
  isParked,
  type RunnerInfo,
  type Versioned,
  type WorkflowRecord,
  type WorkflowStatus,
} from '../model/records.js'
import { type Plan, planGraph } from '../plan/graph.js'
import type { RunOptions, WorkflowHandle } from '../step/runner.js'
import { type StepNode, setGraphRunner } from '../step/step.js'
import { resolveStorage, type StorageSpec } from '../storage/resolve.js'
import type { Storage } from '../storage/storage.js'
import { type BatchOutcome, StartBatches } from '../store/start-batches.js'
import { type DueEntry, dueKey, WorkflowStore } from '../store/store.js'
import type { LazyAbortController } from '../util/lazy-abort.js'
import { type CancelOutcome, cancelWorkflow } from './cancel.js'
import {
  derivedStatus,
  newRunner,
  planResume,
  resumesFailure,
  submission,
  submittedRecord,
  takeOver,
  underRunnerLease,
} from './claim.js'
import { type CodeChangePolicy, validatePolicy } from './runtime-info.js'
import { type RuntimeOptions, runtimeSettings } from './runtime-options.js'
import { pendingEvent, type SendEventOptions, type SentEvent, sendEvent } from './send-event.js'
import {
  decodeOutput,
  executionErrorOf,
  type PreparedRun,
  prepareRun,
  startRun,
  WorkflowParked,
} from './workflow-run.js'

/** Options of `resume` and `resumeAsync`. */
export interface ResumeOptions {
  /** Overrides the runtime's `onCodeChange` for this resume. */
  onCodeChange?: CodeChangePolicy
}

interface ActiveRun {
  controller: LazyAbortController
  execution: Execution
  result: Promise<unknown>
  /** Stops the run at once; resolves once its CANCELED record is written. */
  cancel: () => Promise<void>
}

interface QueuedRun {
  workflowId: string
  /** Takes the workflow over; settles once it runs here (or turned out to be someone else's). */
  start: () => Promise<void>
  /** Canceled while queued: its result rejects with `WorkflowCanceledError` at once. */
  canceled: () => void
}

/** Runs, resumes and cancels workflows on one storage. */
export class Runtime {
  readonly #storage: Promise<Storage>
  #store: Promise<WorkflowStore>
  /** `#store` once resolved: a submission then starts without waiting a turn for it. */
  #readyStore: WorkflowStore | undefined
  readonly codec: Codec
  readonly maxConcurrency: number
  /** This runtime's identity in workflow records. */
  readonly runner: RunnerInfo
  readonly leaseTtlMs: number
  readonly heartbeatMs: number
  readonly maxRunningWorkflows: number
  readonly onCodeChange: CodeChangePolicy
  readonly parkAfterMs: number
  readonly eventPollMs: number
  readonly pipelineCheckpoints: boolean
  readonly maxCheckpointsInFlight: number
  /** The one lease under which this runtime holds every workflow it drives (`runners/<runnerId>`). */
  readonly #runnerLease: RunnerLease
  /** How the workflows this runtime starts are indexed (start-batches.ts). */
  readonly #batches: StartBatches
  readonly #active = new Map<string, ActiveRun>()
  readonly #queue: QueuedRun[] = []
  /** The results of queued runs (and of those starting), by workflow id, until they end. */
  readonly #queued = new Map<string, Promise<unknown>>()
  /** The results of runs that parked their workflow, which this runtime follows until they end. */
  readonly #following = new Map<string, Promise<unknown>>()
  /** Reads of the runs this runtime follows that may be in flight at once (`#limited`). */
  #followSlots = FOLLOW_READS
  readonly #followQueue: Array<() => void> = []

  /**
   * Runs `read` once fewer than `FOLLOW_READS` reads of followed runs are in flight: a process
   * awaiting 10,000 parked workflows must not send 10,000 requests at once.
   */
  async #limited<T>(read: () => Promise<T>): Promise<T> {
    if (this.#followSlots > 0) this.#followSlots--
    else await new Promise<void>((resolve) => this.#followQueue.push(resolve))
    try {
      return await read()
    } finally {
      const next = this.#followQueue.shift()
      if (next) next()
      else this.#followSlots++
    }
  }

  /** Wakes the follower of a parked workflow to read its record now (a cancel here). */
  readonly #wakers = new Map<string, () => void>()
  /** Set by `close`: the runs it follows stop waiting. */
  #closed = false
  #starting = 0
  readonly #idleWaiters = new Set<() => void>()
  /**
   * Workflows canceled through this runtime lately, until when: a run of one that this runtime was
   * claiming at that moment (its record already names this runner, the run not started yet) is
   * canceled as it starts, before any step.
   */
  readonly #canceling = new Map<string, number>()

  constructor(storage: StorageSpec, options: RuntimeOptions = {}) {
    const settings = runtimeSettings(options)
    this.leaseTtlMs = settings.leaseTtlMs
    this.heartbeatMs = settings.heartbeatMs
    this.maxRunningWorkflows = settings.maxRunningWorkflows
    this.onCodeChange = settings.onCodeChange
    this.parkAfterMs = settings.parkAfterMs
    this.eventPollMs = settings.eventPollMs
    this.pipelineCheckpoints = settings.pipelineCheckpoints
    this.maxCheckpointsInFlight = settings.maxCheckpointsInFlight
    this.codec = settings.codec
    this.maxConcurrency = settings.maxConcurrency
    this.runner = newRunner()
    this.#storage = resolveStorage(storage)
    this.#store = this.#storage.then((s) => {
      this.#readyStore = new WorkflowStore(s, settings.blobThresholdBytes)
      return this.#readyStore
    })
    // Surface a bad storage spec on use, not as an unhandled rejection at construction.
    this.#store.catch(() => {})
    this.#runnerLease = new RunnerLease(this.#store, this.runner, {
      ttlMs: this.leaseTtlMs,
      heartbeatMs: this.heartbeatMs,
    })
    this.#batches = new StartBatches(this.#store, this.runner.runnerId)
  }

  /** The storage this runtime uses. */
  storage(): Promise<Storage> {
    return this.#storage
  }

  /** The record layer over the storage (shared with `@wf/client`). */
  store(): Promise<WorkflowStore> {
    return this.#store
  }

  /**
   * Closes the storage (its connections, handles and timers). Workflows this runtime is running
   * are not stopped: wait for them (`idle()`), or release them first. A runtime that drives no
   * workflow deletes its runner record first (best effort: an expired one is harmless).
   */
  async close(): Promise<void> {
    // Parked runs it follows stop waiting (`RunnerShutdownError`): a worker wakes them.
    this.#closed = true
    for (const wake of this.#wakers.values()) wake()
    await this.retire()
    await (await this.#storage).close?.()
  }

  /**
   * Deletes this runtime's runner record if it drives no workflow, as `close` does but leaving the
   * storage open: workers that skip the records of this runner's workflows while its record lives
   * then read them again at their next poll. The record is written again before this runtime
   * takes another workflow. Best effort.
   */
  async retire(): Promise<void> {
    if (this.#active.size === 0 && this.#starting === 0) await this.#runnerLease.retire().catch(() => {})
  }

  /** Whether this runtime is driving `workflowId` right now. */
  isActive(workflowId: string): boolean {
    return this.#active.has(workflowId)
  }

  /** The result of the run this runtime is driving for `workflowId`, if any. */
  activeResult(workflowId: string): Promise<unknown> | undefined {
    return this.#active.get(workflowId)?.result
  }

  /** How many workflows this runtime is driving now. */
  get runningCount(): number {
    return this.#active.size
  }

  /** Resolves when this runtime drives no workflow. */
  idle(): Promise<void> {
    if (this.#active.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.add(resolve))
  }

  /**
   * Gives a workflow back: schedules no more of its steps, lets running ones finish and commit
   * for up to `graceMs`, then aborts them and releases the lease, so the workflow is RESUMABLE for
   * another runner. Its `run()` rejects with `RunnerShutdownError`. Used by workers on shutdown.
   *
   * Workers skip the records of a runner's workflows while its runner record lives, so they see a
   * workflow given back at once only when this runtime then holds nothing and retires that record
   * (`retire` or `close`, as a stopping worker does). A workflow released by a runtime that keeps
   * others may wait up to `leaseTtlMs` (a worker's slow re-read of every record) to be taken over.
   */
  async release(workflowId: string, graceMs = 0): Promise<void> {
    const active = this.#active.get(workflowId)
    if (!active) return
    active.execution.halt({ kind: 'released' })
    const timer = setTimeout(() => active.controller.abort(), graceMs)
    await active.result.catch(() => {})
    clearTimeout(timer)
  }

  /** Runs the workflow ending at `node` and resolves to its output. */
  run<T>(node: StepNode<T>, options?: RunOptions): Promise<T> {
    return this.runAsync(node, options).then(resultOf)
  }

  /** Submits the workflow ending at `node` durably, starts it, and resolves to its handle. */
  runAsync<T>(node: StepNode<T>, options: RunOptions = {}): Promise<WorkflowHandle<T>> {
    // Not async: `#submit` is, and wrapping its promise in another costs each workflow two more.
    return this.#submit(node, options, false)
  }

  async #submit<T>(node: StepNode<T>, options: RunOptions, detached: boolean): Promise<WorkflowHandle<T>> {
    const { workflowId, metadata, pipelineCheckpoints } = submission(options)
    const joined = this.#join<T>(workflowId, options)
    if (joined) return joined
    const store = this.#readyStore ?? (await this.#store)
    const existing = await store.readWorkflow(workflowId)
    if (existing) {
      if (options.resumeExisting === false) throw new WorkflowAlreadyExistsError(workflowId)
      if (detached) return this.#lazyHandle<T>(workflowId)
      return this.#join<T>(workflowId, options) ?? this.#resumeRecord<T>(store, existing)
    }
    const queued =
      detached || this.#active.size + this.#starting + this.#queue.length >= this.maxRunningWorkflows
    // Plan (and encode every argument) before writing anything: bad input fails with nothing stored.
    const plan = planGraph(node, '', this.codec)
    const graph = store.inlineGraph(plan.stored) ?? (await store.graphRef(workflowId, plan.stored))
    const create = async () => {
      if (queued)
        return store.createWorkflow(
          submittedRecord(workflowId, metadata, plan, graph, Date.now(), undefined, pipelineCheckpoints),
        )
      const batch = await this.#batches.join(workflowId)
      // The batch may have waited behind another one's write: the runner lease must still hold.
      const ready = this.#runnerLease.ready()
      if (ready) await ready
      try {
        return await store.createWorkflow(
          submittedRecord(
            workflowId,
            metadata,
            plan,
            graph,
            Date.now(),
            { owner: this.runner, batch },
            pipelineCheckpoints,
          ),
        )
      } catch (error) {
        await this.#batches.settle(batch, await this.#lostCreate(store, workflowId, batch, error))
        throw error
      }
    }
    let created: Versioned<WorkflowRecord>
    let epoch = 0
    try {
      if (queued) created = await create()
      else ({ claimed: created, epoch } = await underRunnerLease(this.#runnerLease, create))
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error
      // Another submission of this id won the race.
      if (options.resumeExisting === false) throw new WorkflowAlreadyExistsError(workflowId)
      // Submitted for a worker: left for one, as when it was found stored before.
      if (detached) return this.#lazyHandle<T>(workflowId)
      const found = await store.requireWorkflow(workflowId)
      return this.#join<T>(workflowId, options) ?? this.#resumeRecord<T>(store, found)
    }
    if (detached) return this.#lazyHandle<T>(workflowId)
    if (queued) return this.#enqueue<T>(workflowId)
    const prepared = prepareRun(
      this,
      store,
      workflowId,
      this.onCodeChange,
      true,
      false,
      undefined,
      created.record,
    )
    return this.#start<T>(store, created, epoch, plan, false, prepared)
  }

  /**
   * A run of an id this process is already running (or has queued) joins that run: the same
   * result, whatever graph it was given (as a resume of a stored workflow ignores the new graph).
   */
  #join<T>(workflowId: string, options: RunOptions): WorkflowHandle<T> | undefined {
    const result =
      this.#active.get(workflowId)?.result ?? this.#queued.get(workflowId) ?? this.#following.get(workflowId)
    if (result === undefined) return undefined
    if (options.resumeExisting === false) throw new WorkflowAlreadyExistsError(workflowId)
    return this.#handle(workflowId, result as Promise<T>)
  }

  /**
   * After the create of a record listed by `batch` failed: `'gone'` when another submission's record
   * won (not in this batch, which lets the id go), else `'left'` (ours may have been written).
   */
  async #lostCreate(
    store: WorkflowStore,
    workflowId: string,
    batch: string,
    error: unknown,
  ): Promise<BatchOutcome> {
    if (!(error instanceof ConditionFailedError)) return 'left'
    const now = await store.readWorkflow(workflowId).catch(() => null)
    if (now === null || now?.record.startBatch === batch) return 'left'
    await store.removeFromStartBatch(batch, workflowId).catch(() => {})
    return 'gone'
  }

  /**
   * Stores the workflow as PENDING without running it here: a worker (`createWorker`, `wf worker`)
   * or a later `resume` runs it. The handle's `result()` waits for it by polling the record.
   */
  async submit<T>(node: StepNode<T>, options: RunOptions = {}): Promise<WorkflowHandle<T>> {
    return this.#submit(node, options, true)
  }

  /**
   * Sends event `name` with `payload` (any value a step may return) to workflow `workflowId`, where
   * `waitForEvent(name)` takes it: kept in the workflow's inbox until a waiting step takes it, in
   * the order events were accepted, each taken once. A parked workflow is woken. Refused for an
   * ended workflow (`EventRefusedError`) and an unknown id (`WorkflowNotFoundError`, unless
   * `start` creates it). With `idempotencyKey`, resending is safe.
   */
  async sendEvent(
    workflowId: string,
    name: string,
    payload: unknown,
    options: SendEventOptions = {},
  ): Promise<SentEvent> {
    const store = await this.#store
    return sendEvent(
      {
        store,
        codec: this.codec,
        submit: (node, id) => this.submitIfAbsent(node, { workflowId: id }),
      },
      workflowId,
      name,
      payload,
      options,
    )
  }

  /**
   * @internal Stores the workflow PENDING for a worker, as `submit` does, unless a workflow with its
   * id exists: resolves to whether this call created it (of racing calls, one does).
   */
  submitIfAbsent(node: StepNode, options: RunOptions & { workflowId: string }): Promise<boolean> {
    return this.#submit(node, { ...options, resumeExisting: false }, true).then(
      () => true,
      (error: unknown) => {
        if (error instanceof WorkflowAlreadyExistsError) return false
        throw error
      },
    )
  }

  /** Waits until the workflow ends, polling its record, and resolves to its output. */
  async waitForResult<T = unknown>(workflowId: string, pollMs = 200): Promise<T> {
    validateWorkflowId(workflowId)
    const store = await this.#store
    for (;;) {
      const active = this.#active.get(workflowId)
      if (active) return (await active.result) as T
      const { record } = await store.requireWorkflow(workflowId)
      if (record.status === 'SUCCESSFUL') return decodeOutput<T>(store, this.codec, record)
      if (record.status === 'CANCELED') throw new WorkflowCanceledError(workflowId)
      if (this.deriveStatus(record) === 'FAILED') throw executionErrorOf(record)
      // Parked: nothing changes before its wake time but a cancel, looked for once a lease period.
      const parkedFor = isParked(record) ? (record.parkedUntil as number) - Date.now() : 0
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(pollMs, Math.min(parkedFor, this.leaseTtlMs))),
      )
    }
  }

  /**
   * Follows a workflow that a run of this runtime parked (or that `resume` found parked) until it
   * ends: waits until it is due, takes it over (unless a worker did first, whose run it then
   * follows) and resolves as that run does; parked again, it waits again. Looks at the record once
   * a lease period while it waits, so a cancel from elsewhere is seen. Ended by `close`.
   */
  #followParked<T>(workflowId: string): Promise<T> {
    const following = this.#follow<T>(workflowId)
    this.#following.set(workflowId, following)
    const forget = () => {
      if (this.#following.get(workflowId) === following) this.#following.delete(workflowId)
    }
    following.then(forget, forget)
    return following
  }

  async #follow<T>(workflowId: string): Promise<T> {
    const store = await this.#store
    // Waits `ms`, or less when woken (a cancel or a send in this runtime, or `close`).
    const pause = async (ms: number) => {
      const woken = new AbortController()
      this.#wakers.set(workflowId, () => woken.abort())
      await delay(ms, undefined, { signal: woken.signal }).catch(() => {})
      this.#wakers.delete(workflowId)
    }
    // An event sent from this process: take the workflow on now, whatever its wake time.
    let nudged = false
    const unlisten = listenInbox(workflowId, () => {
      nudged = true
      this.#wakers.get(workflowId)?.()
    })
    const inbox = { seq: 0 }
    try {
      return await this.#followLoop<T>(
        store,
        workflowId,
        pause,
        () => {
          const was = nudged
          nudged = false
          return was
        },
        inbox,
      )
    } finally {
      unlisten()
    }
  }

  async #followLoop<T>(
    store: WorkflowStore,
    workflowId: string,
    pause: (ms: number) => Promise<void>,
    nudged: () => boolean,
    inbox: { seq: number },
  ): Promise<T> {
    for (;;) {
      if (this.#closed) throw new RunnerShutdownError(workflowId)
      const active = this.#active.get(workflowId)
      if (active) return (await active.result) as T
      const found = await this.#limited(() => store.requireWorkflow(workflowId))
      const { record } = found
      if (record.status === 'SUCCESSFUL') return decodeOutput<T>(store, this.codec, record)
      if (record.status === 'CANCELED') throw new WorkflowCanceledError(workflowId)
      const status = this.deriveStatus(record)
      if (status === 'FAILED') throw executionErrorOf(record)
      const wait = isParked(record) ? (record.parkedUntil as number) - Date.now() : 0
      // Woken early: a send from this process, or one from elsewhere found in the inbox.
      const wake = wait > 0 && (nudged() || (await this.#limited(() => pendingEvent(store, record, inbox))))
      if (wait > 0 && !wake) {
        // Waiting for an event: its inbox is looked at as a holding runner would (one listing).
        const every = record.parkedEvents?.length ? this.eventPollMs : this.leaseTtlMs
        // Spread: many followed workflows must not all read at the same moment.
        await pause(wait <= every ? wait : every * (0.5 + Math.random() / 2))
        continue
      }
      if (status === 'PENDING' || status === 'RESUMABLE') {
        try {
          return await (await this.#resumeRecord<T>(store, found, this.onCodeChange, true, wake)).result()
        } catch (error) {
          // A worker took it first: follow its run.
          if (!(error instanceof WorkflowStillActiveError)) throw error
        }
      }
      await pause(Math.min(1000, this.heartbeatMs))
    }
  }

  /**
   * @internal For workers: takes on a parked workflow listed due by `entry` if its record says it
   * is due, resolving to its handle; `undefined` when it is not to be taken now. A due marker that
   * its record no longer backs (the workflow woke, parked again, ended or was deleted) is deleted.
   * `until`: taken if due by then (a worker claiming ahead); the run holds it until its wake time.
   */
  async resumeDue<T = unknown>(entry: DueEntry, until = Date.now()): Promise<WorkflowHandle<T> | undefined> {
    const { workflowId } = entry
    if (this.#active.has(workflowId) || this.#following.has(workflowId)) return undefined
    const store = await this.#store
    const found = await store.readWorkflow(workflowId)
    const record = found?.record
    const stale =
      !record || record.status === 'SUCCESSFUL' || record.status === 'FAILED' || record.status === 'CANCELED'
    if (stale) {
      await store.deleteDue(entry)
      return undefined
    }
    if (!found || entry.wakeAt > until) return undefined
    if (!isParked(found.record)) {
      // Waking or parking right now (a live owner): not now. Or a marker a run left as it died
      // between the marker and its parked record: the workflow is RESUMABLE (or waits for a
      // runner), so it is taken on here, and the marker goes.
      const status = this.deriveStatus(found.record)
      if (status !== 'RESUMABLE' && status !== 'PENDING') return undefined
      const handle = await this.#resumeRecord<T>(store, found, this.onCodeChange, false)
      await store.deleteDue(entry).catch(() => {})
      return handle
    }
    // Due: at its own wake time, or earlier by a marker a sender wrote (an event for it) or one a
    // crash left behind. Waking early costs a look; the marker goes once the workflow is taken.
    const handle = await this.#resumeRecord<T>(store, found, this.onCodeChange, false, true)
    if (entry.key !== dueKey(found.record)) await store.deleteDue(entry).catch(() => {})
    return handle
  }

  /**
   * @internal For workers: `resumeAsync` of a workflow a worker found waiting for a runner, whose
   * run, should it park the workflow, ends there (the handle's result rejects with
   * `WorkflowParked`) instead of following it: a worker holds no slot for a parked workflow. A
   * parked workflow not due yet is not taken (`WorkflowStillActiveError`).
   */
  async resumeForWorker<T = unknown>(workflowId: string): Promise<WorkflowHandle<T>> {
    if (this.#active.has(workflowId))
      throw new WorkflowStillActiveError(workflowId, 'this process is running it')
    const store = await this.#store
    return this.#resumeRecord<T>(store, await store.requireWorkflow(workflowId), this.onCodeChange, false)
  }

  /** Queues a PENDING workflow of this runtime until a slot under `maxRunningWorkflows` frees up. */
  #enqueue<T>(workflowId: string): WorkflowHandle<T> {
    const result = new Promise<T>((resolve, reject) => {
      this.#queue.push({
        workflowId,
        canceled: () => reject(new WorkflowCanceledError(workflowId)),
        // Taken over like any PENDING workflow; if another runner (a worker) took it first, follow it.
        start: () =>
          this.resumeAsync<T>(workflowId).then(
            (handle) => {
              handle.result().then(resolve, reject)
            },
            (error) => {
              if (error instanceof WorkflowStillActiveError)
                this.waitForResult<T>(workflowId).then(resolve, reject)
              else reject(error)
            },
          ),
      })
    })
    // Until it ends, a run of the same id joins it (`#join`), queued or starting.
    this.#queued.set(workflowId, result)
    const forget = () => {
      if (this.#queued.get(workflowId) === result) this.#queued.delete(workflowId)
    }
    result.then(forget, forget)
    return this.#handle(workflowId, result)
  }

  /** Starts queued workflows, oldest first, while there is room under `maxRunningWorkflows`. */
  #startQueued(): void {
    while (this.#queue.length > 0 && this.#active.size + this.#starting < this.maxRunningWorkflows) {
      const next = this.#queue.shift() as QueuedRun
      this.#starting++
      void next.start().finally(() => {
        this.#starting--
        this.#startQueued()
      })
    }
  }

  /** Resumes a workflow: runs only what is not committed. `SUCCESSFUL` resolves to the stored output. */
  async resume<T = unknown>(workflowId: string, options?: ResumeOptions): Promise<T> {
    return (await this.resumeAsync<T>(workflowId, options)).result()
  }

  /** Like `resume`, resolving to a handle once the workflow is taken over. */
  async resumeAsync<T = unknown>(
    workflowId: string,
    options: ResumeOptions = {},
  ): Promise<WorkflowHandle<T>> {
    validateWorkflowId(workflowId)
    const policy = validatePolicy(options.onCodeChange ?? this.onCodeChange)
    if (this.#active.has(workflowId))
      throw new WorkflowStillActiveError(workflowId, 'this process is running it')
    const store = await this.#store
    return this.#resumeRecord<T>(store, await store.requireWorkflow(workflowId), policy)
  }

  /** The status of a stored record: `RUNNING` becomes `RESUMABLE` when its runner is gone. */
  deriveStatus(record: WorkflowRecord): WorkflowStatus {
    return derivedStatus(record, this.runner, this.#active.has(record.workflowId))
  }

  /**
   * Cancels a workflow and resolves to its status: `CANCELED`, or `SUCCESSFUL` for one that had
   * succeeded (left as it is; so is a CANCELED one). Once it resolves, no step of the workflow
   * starts anywhere and no result finishing later is committed. A run in this runtime stops at
   * once; a run driven by another live runner is asked to stop and acknowledges within about one
   * of its heartbeats (`CancelNotAcknowledgedError` after `leaseTtlMs + heartbeatMs` without it);
   * PENDING, FAILED and RESUMABLE workflows become CANCELED here. `cancelDetailed` also says what
   * it waited for.
   */
  async cancel(workflowId: string): Promise<'CANCELED' | 'SUCCESSFUL'> {
    return (await this.cancelDetailed(workflowId)).status
  }

  /**
   * Like `cancel`, resolving to what it found and what it waited for. `onWaiting` is called when
   * it starts waiting for a live runner in another process (at most `upToMs`).
   */
  async cancelDetailed(
    workflowId: string,
    options: { onWaiting?: (owner: RunnerInfo, upToMs: number) => void } = {},
  ): Promise<CancelOutcome> {
    validateWorkflowId(workflowId)
    // A run of this runtime stops now, before any await lets another of its steps start.
    void this.#active.get(workflowId)?.cancel()
    const store = await this.#store
    const now = Date.now()
    for (const [id, until] of this.#canceling) if (until < now) this.#canceling.delete(id)
    this.#canceling.set(workflowId, now + 2 * this.leaseTtlMs)
    const outcome = await cancelWorkflow(
      {
        store,
        runner: this.runner,
        leaseTtlMs: this.leaseTtlMs,
        heartbeatMs: this.heartbeatMs,
        cancelLocal: (id) => this.#active.get(id)?.cancel(),
        ...(options.onWaiting ? { onWaiting: options.onWaiting } : {}),
      },
      workflowId,
    )
    // Queued here under maxRunningWorkflows: it leaves the queue, and its run() rejects now.
    const queued = this.#queue.findIndex((q) => q.workflowId === workflowId)
    if (queued !== -1 && outcome.status === 'CANCELED') this.#queue.splice(queued, 1)[0]?.canceled()
    // Parked, and its run followed here: that run() rejects now, not at its next look.
    this.#wakers.get(workflowId)?.()
    return outcome
  }

  /** `follow`: should the run park the workflow, its result follows it to its end (`#followParked`). */
  async #resumeRecord<T>(
    store: WorkflowStore,
    found: Versioned<WorkflowRecord>,
    policy: CodeChangePolicy = this.onCodeChange,
    follow = true,
    wake = false,
  ): Promise<WorkflowHandle<T>> {
    const { record } = found
    const workflowId = record.workflowId
    if (record.status === 'SUCCESSFUL') {
      const output = decodeOutput<T>(store, this.codec, record)
      return this.#handle(workflowId, output)
    }
    if (record.status === 'CANCELED') throw new WorkflowNotResumableError(workflowId, 'CANCELED')
    // Parked and not due: nothing to run before its time; the handle waits for it.
    if (!wake && isParked(record) && (record.parkedUntil as number) > Date.now()) {
      if (!follow)
        throw new WorkflowStillActiveError(
          workflowId,
          `it is parked until ${new Date(record.parkedUntil as number).toISOString()}`,
        )
      return this.#handle(
        workflowId,
        this.#join<T>(workflowId, {})?.result() ?? this.#followParked<T>(workflowId),
      )
    }
    let status = this.deriveStatus(record)
    if (
      status === 'RESUMABLE' &&
      record.lease === 'runner' &&
      record.owner?.runnerId !== this.runner.runnerId
    ) {
      // The runner record behind that may be a cached read: take over only on a fresh one.
      status = this.deriveStatus(await store.fillRunnerLease(record, { fresh: true }))
    }
    if (status === 'RUNNING') {
      throw new WorkflowStillActiveError(
        workflowId,
        `runner ${record.owner?.host}:${record.owner?.pid} is driving it`,
      )
    }
    // Everything that can refuse the resume is checked before the record is touched: the code
    // (changed, or a step left to run that is not registered here) and the committed records.
    const plan = await planResume(store, record, policy)
    const fromFailed = resumesFailure(record)
    const prepared = prepareRun(this, store, workflowId, policy, record.runs === 0, fromFailed, record)
    const missing = await prepared.execution.preload(plan)
    if (missing !== undefined) throw new StepNotRegisteredError(missing, workflowId)
    const { claimed, epoch } = await underRunnerLease(this.#runnerLease, () =>
      takeOver(store, found, this.runner),
    )
    return this.#start<T>(store, claimed, epoch, plan, true, prepared, follow)
  }

  /** A handle that starts polling for the result only when `result()` is first called. */
  #lazyHandle<T>(workflowId: string): WorkflowHandle<T> {
    let result: Promise<T> | undefined
    return {
      workflowId,
      result: () => {
        result ??= this.waitForResult<T>(workflowId)
        return result
      },
      cancel: () => this.cancel(workflowId),
    }
  }

  #handle<T>(workflowId: string, result: Promise<T>): WorkflowHandle<T> {
    result.catch(() => {}) // the caller may never ask for the result; do not crash on an unhandled rejection
    return { workflowId, result: () => result, cancel: () => this.cancel(workflowId) }
  }

  /** Drives `taken`, claimed under the runner lease in `epoch` (`underRunnerLease`), holding it until the run ends. */
  #start<T>(
    store: WorkflowStore,
    taken: Versioned<WorkflowRecord>,
    epoch: number,
    plan: Plan,
    resume: boolean,
    prepared: PreparedRun,
    follow = true,
  ): WorkflowHandle<T> {
    const workflowId = taken.record.workflowId
    const canceled = this.#canceling.has(workflowId)
    this.#canceling.delete(workflowId)
    const run = startRun(this, store, this.#runnerLease, epoch, taken, plan, resume, prepared, canceled)
    const ended = () => {
      run.lease.stop()
      this.#runnerLease.unhold()
      this.#active.delete(workflowId)
      this.#startQueued()
      if (this.#active.size === 0) {
        for (const wake of this.#idleWaiters) wake()
        this.#idleWaiters.clear()
      }
    }
    // The start batch goes when its last workflow ends here: before `run()` settles, so that the
    // storage is tidy then. Any other end leaves the workflow RUNNING under the batch.
    const batch = taken.record.startBatch
    const finish = <V>(outcome: BatchOutcome, settle: () => V): V | Promise<V> => {
      const deleting = batch === undefined ? undefined : this.#batches.settle(batch, outcome)
      if (!deleting) {
        ended()
        return settle()
      }
      return deleting.then(() => {
        ended()
        return settle()
      })
    }
    // Not `finally`, which costs two more promises per workflow.
    const result = run.result.then(
      (value) => finish('ended', () => value),
      (error: unknown) => {
        // Parked: done with its start batch here; the result follows the workflow to its end.
        if (error instanceof WorkflowParked && follow)
          return finish('ended', (): Promise<unknown> => this.#followParked(workflowId))
        const final = error instanceof WorkflowExecutionError || error instanceof WorkflowCanceledError
        return finish(final ? 'ended' : 'left', () => {
          throw error
        })
      },
    ) as Promise<T>
    this.#active.set(workflowId, {
      controller: run.controller,
      execution: run.execution,
      result,
      cancel: run.cancel,
    })
    return this.#handle(workflowId, result)
  }
}

const resultOf = <T>(handle: WorkflowHandle<T>): Promise<T> => handle.result()

/** How many reads of the parked runs a runtime follows may be in flight at once. */
const FOLLOW_READS = 16

let current: Runtime | undefined

/** The runtime set by `init()`, or one on the default storage. */
export function getRuntime(): Runtime {
  if (!current) {
    current = new Runtime(undefined)
  }
  return current
}

// `StepNode.run`, `submit` and `runAsync` run graphs on this module's runtime (the one side effect
// of loading it: package.json's `sideEffects` names this file).
setGraphRunner(getRuntime)

/** Options of `init()`: a storage (a `Storage` or a URI) and runtime options. */
export interface InitOptions extends RuntimeOptions {
  storage?: StorageSpec
}

/**
 * Chooses where workflows are stored and how they run, for this process.
 *
 * ```ts
 * await init('/var/lib/my-app/workflows')          // a folder (@wf/storage-fs)
 * await init('s3://my-bucket/workflows?region=eu-west-1') // S3 (@wf/storage-s3)
 * await init({ storage: new MemoryStorage(), maxConcurrency: 8 })
 * ```
 * Without an argument: the `WF_STORAGE` environment variable, else a folder under the OS temp dir.
 */
export async function init(options?: StorageSpec | InitOptions): Promise<Runtime> {
  const isOptions = typeof options === 'object' && options !== null && !('get' in options && 'put' in options)
  const { storage, ...runtimeOptions } = isOptions
    ? (options as InitOptions)
    : { storage: options as StorageSpec }
  const runtime = new Runtime(resolveStorage(storage), runtimeOptions)
  await runtime.storage()
  current = runtime
  return runtime
}
