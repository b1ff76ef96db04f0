// The runtime: submits workflows, drives them with an Execution, resumes and cancels them, and
// keeps each status change a compare-and-swap on the workflow record. One runtime per process is
// the usual case (`init()`); tests and tools may create more.

import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { type Codec, defaultCodec, encodeValue, reduceError } from './codec.js'
import {
  ConditionFailedError,
  InvalidOptionsError,
  WfError,
  WorkflowAlreadyExistsError,
  WorkflowCancelledError,
  WorkflowExecutionError,
  WorkflowNotResumableError,
  WorkflowStillActiveError,
} from './errors.js'
import { Execution, ExecutionStopped } from './execution.js'
import { type Plan, planFromStored, planGraph } from './graph.js'
import { newWorkflowId, validateWorkflowId } from './ids.js'
import { resolveStorage, type StorageSpec } from './resolve.js'
import type { Json, StepNode } from './step.js'
import type { Storage } from './storage.js'
import {
  type RunnerInfo,
  type Versioned,
  type WorkflowRecord,
  type WorkflowStatus,
  WorkflowStore,
} from './store.js'

/** Options of `run()` and `runAsync()`. */
export interface RunOptions {
  /** The workflow's id (1–200 characters, no `/`). Random when absent. */
  workflowId?: string
  /** Your data about the workflow, returned by `getMetadata`. */
  metadata?: { [key: string]: Json }
  /**
   * What to do when `workflowId` is already used. `true` (default): resume that workflow, ignoring
   * this graph (a `SUCCESSFUL` one returns its stored output). `false`: throw `WorkflowAlreadyExistsError`.
   */
  resumeExisting?: boolean
}

/** A submitted workflow. */
export interface WorkflowHandle<T> {
  readonly workflowId: string
  /** The workflow's output; rejects with `WorkflowExecutionError` or `WorkflowCancelledError`. */
  result(): Promise<T>
  /** Cancels the workflow (see `Runtime.cancel`). */
  cancel(): Promise<void>
}

/** Options of a runtime (`init({ storage, ...options })`). */
export interface RuntimeOptions {
  /** At most this many steps of one workflow run at once. Default 100. */
  maxConcurrency?: number
  /** How values are stored. Default: `defaultCodec` (devalue with Buffer and Error). */
  codec?: Codec
  /** Outputs larger than this many bytes go to content-addressed blobs. Default 256 KiB. */
  blobThresholdBytes?: number
}

interface ActiveRun {
  controller: AbortController
  result: Promise<unknown>
}

const HOST = hostname()

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Runs, resumes and cancels workflows on one storage. */
export class Runtime {
  readonly #storage: Promise<Storage>
  #store: Promise<WorkflowStore>
  readonly codec: Codec
  readonly maxConcurrency: number
  /** This runtime's identity in workflow records. */
  readonly runner: RunnerInfo
  readonly #active = new Map<string, ActiveRun>()

  constructor(storage: StorageSpec, options: RuntimeOptions = {}) {
    const { maxConcurrency = 100, codec = defaultCodec, blobThresholdBytes = 256 * 1024 } = options
    if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) {
      throw new InvalidOptionsError(
        `maxConcurrency must be a positive integer, got ${String(maxConcurrency)}`,
      )
    }
    if (!Number.isInteger(blobThresholdBytes) || blobThresholdBytes < 1024) {
      throw new InvalidOptionsError('blobThresholdBytes must be an integer of at least 1024')
    }
    if (typeof codec?.encode !== 'function' || typeof codec.decode !== 'function') {
      throw new InvalidOptionsError('codec must have encode(value) and decode(text)')
    }
    this.codec = codec
    this.maxConcurrency = maxConcurrency
    this.runner = { host: HOST, pid: process.pid, runnerId: randomBytes(8).toString('hex') }
    this.#storage = resolveStorage(storage)
    this.#store = this.#storage.then((s) => new WorkflowStore(s, blobThresholdBytes))
    // Surface a bad storage spec on use, not as an unhandled rejection at construction.
    this.#store.catch(() => {})
  }

  /** The storage this runtime uses. */
  storage(): Promise<Storage> {
    return this.#storage
  }

  /** The record layer over the storage (shared with `@wf/client`). */
  store(): Promise<WorkflowStore> {
    return this.#store
  }

  /** Whether this runtime is driving `workflowId` right now. */
  isActive(workflowId: string): boolean {
    return this.#active.has(workflowId)
  }

  /** The result of the run this runtime is driving for `workflowId`, if any. */
  activeResult(workflowId: string): Promise<unknown> | undefined {
    return this.#active.get(workflowId)?.result
  }

  /** Runs the workflow ending at `node` and resolves to its output. */
  async run<T>(node: StepNode<T>, options?: RunOptions): Promise<T> {
    return (await this.runAsync(node, options)).result()
  }

  /** Submits the workflow ending at `node` durably, starts it, and resolves to its handle. */
  async runAsync<T>(node: StepNode<T>, options: RunOptions = {}): Promise<WorkflowHandle<T>> {
    if (typeof options !== 'object' || options === null)
      throw new InvalidOptionsError('run options must be an object')
    const workflowId = options.workflowId ?? newWorkflowId()
    validateWorkflowId(workflowId)
    const metadata = options.metadata ?? {}
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new InvalidOptionsError('metadata must be a plain JSON object')
    }
    try {
      JSON.stringify(metadata)
    } catch (error) {
      throw new InvalidOptionsError(`metadata must be JSON-serializable: ${String(error)}`)
    }
    if (this.#active.has(workflowId))
      throw new WorkflowStillActiveError(workflowId, 'this process is running it')
    const store = await this.#store
    const existing = await store.readWorkflow(workflowId)
    if (existing) {
      if (options.resumeExisting === false) throw new WorkflowAlreadyExistsError(workflowId)
      return this.#resumeRecord<T>(store, existing)
    }
    // Plan (and encode every argument) before writing anything: bad input fails with nothing stored.
    const plan = planGraph(node, '', this.codec)
    const graph = await store.writeGraph(workflowId, plan.stored)
    const now = Date.now()
    const record: WorkflowRecord = {
      v: 1,
      workflowId,
      status: 'RUNNING',
      createdAt: now,
      updatedAt: now,
      startedAt: now,
      metadata: metadata as WorkflowRecord['metadata'],
      graph,
      rootStepId: plan.root.id,
      runs: 1,
      owner: this.runner,
    }
    let created: Versioned<WorkflowRecord>
    try {
      created = await store.createWorkflow(record)
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error
      // Another submission of this id won the race.
      if (options.resumeExisting === false) throw new WorkflowAlreadyExistsError(workflowId)
      return this.#resumeRecord<T>(store, await store.requireWorkflow(workflowId))
    }
    return this.#start<T>(store, created, plan, false)
  }

  /** Resumes a workflow: runs only what is not committed. `SUCCESSFUL` resolves to the stored output. */
  async resume<T = unknown>(workflowId: string): Promise<T> {
    return (await this.resumeAsync<T>(workflowId)).result()
  }

  /** Like `resume`, resolving to a handle once the workflow is taken over. */
  async resumeAsync<T = unknown>(workflowId: string): Promise<WorkflowHandle<T>> {
    validateWorkflowId(workflowId)
    if (this.#active.has(workflowId))
      throw new WorkflowStillActiveError(workflowId, 'this process is running it')
    const store = await this.#store
    return this.#resumeRecord<T>(store, await store.requireWorkflow(workflowId))
  }

  /** The status of a stored record: `RUNNING` becomes `RESUMABLE` when its runner is gone. */
  deriveStatus(record: WorkflowRecord): WorkflowStatus {
    if (record.status !== 'RUNNING') return record.status
    const owner = record.owner
    if (!owner) return 'RESUMABLE'
    if (owner.runnerId === this.runner.runnerId)
      return this.#active.has(record.workflowId) ? 'RUNNING' : 'RESUMABLE'
    if (owner.host === HOST && !pidAlive(owner.pid)) return 'RESUMABLE'
    return 'RUNNING'
  }

  /** Cancels a workflow: it becomes `CANCELED`, and a run in this process aborts its steps. A finished workflow is left as it is. */
  async cancel(workflowId: string): Promise<void> {
    validateWorkflowId(workflowId)
    const store = await this.#store
    for (;;) {
      const current = await store.requireWorkflow(workflowId)
      const { status } = current.record
      if (status === 'CANCELED' || status === 'SUCCESSFUL') break
      try {
        const { owner: _owner, ...rest } = current.record
        await store.updateWorkflow(current, { ...rest, status: 'CANCELED', endedAt: Date.now() })
        break
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error
      }
    }
    this.#active.get(workflowId)?.controller.abort()
  }

  async #resumeRecord<T>(store: WorkflowStore, found: Versioned<WorkflowRecord>): Promise<WorkflowHandle<T>> {
    const { record } = found
    const workflowId = record.workflowId
    if (record.status === 'SUCCESSFUL') {
      const output = this.#decodeOutput<T>(store, record)
      return this.#handle(workflowId, output)
    }
    if (record.status === 'CANCELED') throw new WorkflowNotResumableError(workflowId, 'CANCELED')
    if (this.deriveStatus(record) === 'RUNNING') {
      throw new WorkflowStillActiveError(
        workflowId,
        `runner ${record.owner?.host}:${record.owner?.pid} is driving it`,
      )
    }
    const plan = planFromStored(await store.readGraph(workflowId, record.graph), `workflow ${workflowId}`)
    const { error: _error, ...rest } = record
    let taken: Versioned<WorkflowRecord>
    try {
      taken = await store.updateWorkflow(found, {
        ...rest,
        status: 'RUNNING',
        owner: this.runner,
        startedAt: Date.now(),
        runs: record.runs + 1,
      })
    } catch (error) {
      if (error instanceof ConditionFailedError) {
        throw new WorkflowStillActiveError(workflowId, 'another runner took it over at the same moment')
      }
      throw error
    }
    return this.#start<T>(store, taken, plan, true)
  }

  async #decodeOutput<T>(store: WorkflowStore, record: WorkflowRecord): Promise<T> {
    if (!record.output)
      throw new WfError('WF_INTERNAL', `workflow "${record.workflowId}" has no stored output`)
    return this.codec.decode(await store.loadOutput(record.workflowId, record.output)) as T
  }

  #handle<T>(workflowId: string, result: Promise<T>): WorkflowHandle<T> {
    result.catch(() => {}) // the caller may never ask for the result; do not crash on an unhandled rejection
    return { workflowId, result: () => result, cancel: () => this.cancel(workflowId) }
  }

  #start<T>(
    store: WorkflowStore,
    taken: Versioned<WorkflowRecord>,
    plan: Plan,
    resume: boolean,
  ): WorkflowHandle<T> {
    const workflowId = taken.record.workflowId
    const controller = new AbortController()
    const execution = new Execution({
      workflowId,
      store,
      codec: this.codec,
      maxConcurrency: this.maxConcurrency,
      signal: controller.signal,
    })
    const result = this.#drive(store, taken, execution.run(plan, resume)).finally(() => {
      this.#active.delete(workflowId)
    }) as Promise<T>
    this.#active.set(workflowId, { controller, result })
    return this.#handle(workflowId, result)
  }

  /** Waits for the execution and records how it ended, by compare-and-swap on the record. */
  async #drive(
    store: WorkflowStore,
    taken: Versioned<WorkflowRecord>,
    running: Promise<unknown>,
  ): Promise<unknown> {
    const workflowId = taken.record.workflowId
    const { owner: _owner, ...base } = taken.record
    try {
      const output = await running
      const stored = await store.storeOutput(
        workflowId,
        encodeValue(this.codec, output, 'output', taken.record.rootStepId),
      )
      await this.#finish(store, taken, { ...base, status: 'SUCCESSFUL', endedAt: Date.now(), output: stored })
      return output
    } catch (error) {
      const failure =
        error instanceof ExecutionStopped ? error.failure : ({ kind: 'infrastructure', error } as const)
      if (failure.kind === 'canceled') throw new WorkflowCancelledError(workflowId)
      if (failure.kind === 'step') {
        const recorded = reduceError(
          failure.error instanceof Error ? failure.error : new Error(String(failure.error)),
        )
        const failed: WorkflowRecord = {
          ...base,
          status: 'FAILED',
          endedAt: Date.now(),
          error: {
            name: recorded.name,
            message: recorded.message,
            stack: recorded.stack,
            stepId: failure.stepId,
          },
        }
        await this.#finish(store, taken, failed)
        throw new WorkflowExecutionError(workflowId, failure.stepId, failure.error)
      }
      // Not the workflow's fault (storage down, step not registered): leave it resumable by
      // giving up ownership, if the storage lets us.
      await store.updateWorkflow(taken, { ...base, status: 'RUNNING' }).catch(() => {})
      throw failure.error
    }
  }

  /** Writes the final record; when a cancel got there first, the run ends as canceled. */
  async #finish(store: WorkflowStore, taken: Versioned<WorkflowRecord>, next: WorkflowRecord): Promise<void> {
    try {
      await store.updateWorkflow(taken, next)
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error
      const now = await store.readWorkflow(taken.record.workflowId)
      if (now?.record.status === 'CANCELED') throw new WorkflowCancelledError(taken.record.workflowId)
      throw error
    }
  }
}

let current: Runtime | undefined

/** The runtime set by `init()`, or one on the default storage. */
export function getRuntime(): Runtime {
  if (!current) {
    current = new Runtime(undefined)
  }
  return current
}

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
