// Workers: long-running processes that pick up PENDING workflows (submitted with `submit`) in
// submission order and RESUMABLE ones (whose runner died), without anyone calling resumeAll.
// Several workers on one storage share the work; leases keep each workflow with one of them.

import {
  InvalidOptionsError,
  WorkflowNotFoundError,
  WorkflowNotResumableError,
  WorkflowStillActiveError,
} from './errors.js'
import type { StorageSpec } from './resolve.js'
import { Runtime } from './runtime.js'
import type { RuntimeOptions } from './runtime-options.js'
import { storeKeys, type WorkflowRecord } from './store.js'

/** Options of `createWorker`. */
export interface WorkerOptions extends RuntimeOptions {
  /** Where the workflows are (ignored when `runtime` is given). */
  storage?: StorageSpec
  /** Run on this runtime instead of a new one. */
  runtime?: Runtime
  /** At most this many workflows at once. Default 4. */
  concurrency?: number
  /** How often to look for work when idle. Default 1,000 ms. */
  pollIntervalMs?: number
  /** On stop, how long running steps may take to finish before they are aborted. Default 10,000 ms. */
  shutdownGraceMs?: number
  /** Stop gracefully on SIGTERM and SIGINT. Default `true`. */
  handleSignals?: boolean
  /** Called with every workflow the worker takes, and how it ended. */
  onWorkflow?: (event: {
    workflowId: string
    outcome: 'SUCCESSFUL' | 'FAILED' | 'CANCELED' | 'RELEASED' | 'ERROR'
    error?: unknown
  }) => void
}

/** A running worker. */
export interface Worker {
  readonly runtime: Runtime
  /** Stops taking work, lets running steps finish within the grace period, and releases the rest. */
  stop(): Promise<void>
  /** Resolves when the worker has stopped. */
  readonly stopped: Promise<void>
}

/**
 * Starts a worker on a storage.
 *
 * ```ts
 * import './my-steps.js' // registers the steps the workflows use
 * const worker = createWorker({ storage: 's3://bucket/workflows', concurrency: 8 })
 * ```
 */
export function createWorker(options: WorkerOptions = {}): Worker {
  const {
    storage,
    runtime: given,
    concurrency = 4,
    pollIntervalMs = 1000,
    shutdownGraceMs = 10_000,
    handleSignals = true,
    onWorkflow,
    ...runtimeOptions
  } = options
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidOptionsError(`concurrency must be a positive integer, got ${String(concurrency)}`)
  }
  if (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 1) {
    throw new InvalidOptionsError(`pollIntervalMs must be a positive integer, got ${String(pollIntervalMs)}`)
  }
  if (!Number.isInteger(shutdownGraceMs) || shutdownGraceMs < 0) {
    throw new InvalidOptionsError(
      `shutdownGraceMs must be a non-negative integer, got ${String(shutdownGraceMs)}`,
    )
  }
  const runtime = given ?? new Runtime(storage, runtimeOptions)
  const mine = new Set<string>()
  // Workflows that could not run here (a step not registered, code changed under 'error', storage
  // trouble) are retried with a growing delay, not at every poll.
  const backoff = new Map<string, { until: number; delayMs: number }>()
  const setBack = (workflowId: string) => {
    const delayMs = Math.min(60_000, (backoff.get(workflowId)?.delayMs ?? pollIntervalMs / 2) * 2)
    backoff.set(workflowId, { until: Date.now() + delayMs, delayMs })
  }
  let stopping = false
  let wake: (() => void) | undefined
  let resolveStopped!: () => void
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve
  })

  const take = async (workflowId: string): Promise<boolean> => {
    try {
      const handle = await runtime.resumeAsync(workflowId)
      mine.add(workflowId)
      handle
        .result()
        .then(
          () => {
            backoff.delete(workflowId)
            onWorkflow?.({ workflowId, outcome: 'SUCCESSFUL' })
          },
          (error: { code?: string }) => {
            const outcome =
              error?.code === 'WF_EXECUTION_FAILED'
                ? 'FAILED'
                : error?.code === 'WF_CANCELED'
                  ? 'CANCELED'
                  : error?.code === 'WF_RUNNER_SHUTDOWN'
                    ? 'RELEASED'
                    : 'ERROR'
            if (outcome === 'ERROR') setBack(workflowId)
            else backoff.delete(workflowId)
            onWorkflow?.({ workflowId, outcome, error })
          },
        )
        .finally(() => {
          mine.delete(workflowId)
          wake?.()
        })
      return true
    } catch (error) {
      // Someone else took it, it ended, or it is gone: not ours to run.
      if (
        error instanceof WorkflowStillActiveError ||
        error instanceof WorkflowNotResumableError ||
        error instanceof WorkflowNotFoundError
      ) {
        return false
      }
      // This one cannot run here (its code changed under policy 'error', its graph cannot be
      // read…): say so and go on with the others, or one bad workflow would starve the queue.
      setBack(workflowId)
      onWorkflow?.({ workflowId, outcome: 'ERROR', error })
      return false
    }
  }

  /** PENDING workflows oldest first, then RESUMABLE ones. */
  const findWork = async (room: number): Promise<string[]> => {
    const store = await runtime.store()
    const pending: WorkflowRecord[] = []
    const resumable: string[] = []
    for (const status of ['PENDING', 'RUNNING'] as const) {
      const prefix = storeKeys.indexPrefix(status)
      for (const key of await store.listAllKeys(prefix)) {
        const workflowId = key.slice(prefix.length)
        if (mine.has(workflowId) || runtime.isActive(workflowId)) continue
        if ((backoff.get(workflowId)?.until ?? 0) > Date.now()) continue
        const found = await store.readWorkflow(workflowId).catch(() => undefined)
        if (!found) continue
        const status = runtime.deriveStatus(found.record)
        if (status === 'PENDING') pending.push(found.record)
        else if (status === 'RESUMABLE') resumable.push(workflowId)
      }
    }
    pending.sort((a, b) => a.createdAt - b.createdAt || (a.workflowId < b.workflowId ? -1 : 1))
    return [...pending.map((r) => r.workflowId), ...resumable].slice(0, room * 2)
  }

  const loop = async () => {
    while (!stopping) {
      try {
        const room = concurrency - mine.size
        if (room > 0) {
          let took = 0
          for (const workflowId of await findWork(room)) {
            if (stopping || took >= room) break
            if (await take(workflowId)) took++
          }
        }
      } catch (error) {
        onWorkflow?.({ workflowId: '', outcome: 'ERROR', error })
      }
      if (stopping) break
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollIntervalMs)
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      wake = undefined
      // Woken by a run that ended: still let timers and I/O run first, so a storage that answers
      // in microtasks (MemoryStorage) and a workflow that fails at once cannot spin this loop.
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  const stop = async (): Promise<void> => {
    if (!stopping) {
      stopping = true
      wake?.()
      await running
      await Promise.all([...mine].map((workflowId) => runtime.release(workflowId, shutdownGraceMs)))
      if (handleSignals) {
        process.off('SIGTERM', onSignal)
        process.off('SIGINT', onSignal)
      }
      resolveStopped()
    }
    return stopped
  }
  const onSignal = () => {
    void stop()
  }
  if (handleSignals) {
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  }
  const running = loop().catch(() => {})
  return { runtime, stop, stopped }
}
