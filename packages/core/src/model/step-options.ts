// The options of a step as stored with the workflow's graph (`StepOptions` adds what cannot be stored).

import type { Json } from './json.js'

/** Delays between retries: `initialDelayMs * factor^(attempt-1)`, capped at `maxDelayMs`. */
export interface BackoffOptions {
  /** Delay before the first retry. Default 100 ms. */
  initialDelayMs?: number
  /** Growth per retry. Default 2. */
  factor?: number
  /** Longest delay. Default 10,000 ms. */
  maxDelayMs?: number
}

/** Memory limits of an isolated step (the fields of a worker's `resourceLimits`, in megabytes). */
export interface IsolateResourceLimits {
  /** The main heap (`--max-old-space-size` for a process). */
  maxOldGenerationSizeMb?: number
  /** The heap for new objects (threads only). */
  maxYoungGenerationSizeMb?: number
  /** Space for generated code (threads only). */
  codeRangeSizeMb?: number
  /** The thread's stack (threads only). */
  stackSizeMb?: number
}

/** @internal The keys `validateStepOptions` accepts in `resourceLimits`. */
export const RESOURCE_LIMITS: readonly (keyof IsolateResourceLimits)[] = [
  'maxOldGenerationSizeMb',
  'maxYoungGenerationSizeMb',
  'codeRangeSizeMb',
  'stackSizeMb',
]

/** The options of a step that are stored with the graph: all of `StepOptions` but the `retryOn` function. */
export interface StoredStepOptions {
  /** Retries after a thrown error (not counting the first attempt). Default 3. */
  maxRetries?: number
  /** Delays between retries. */
  backoff?: BackoffOptions
  /** Turn the output into `{ ok: true, value } | { ok: false, error }` instead of failing the workflow. */
  catchExceptions?: boolean
  /** Abort an attempt (through `currentStep().signal`) and fail it after this many milliseconds. */
  timeoutMs?: number
  /** Store the result (default `true`). With `false` the step runs again on resume when its result is needed. */
  checkpoint?: boolean
  /**
   * With pipelined checkpoints (`RuntimeOptions.pipelineCheckpoints`): `false` keeps this step
   * strict, for a step with side effects that uses its `stepId` as an idempotency key: it starts
   * only once its inputs' records are durable, and its dependents wait for its own record. `true`
   * pipelines it even in a workflow that does not pipeline.
   */
  pipelineCheckpoints?: boolean
  /** Your data about the step, returned by `getMetadata(id, { stepId })`. */
  metadata?: { [key: string]: Json }
  /**
   * Run each attempt in its own worker thread or child process (Ray's per-step environment) instead
   * of on the runner's event loop; needs `module`. The isolate imports `module`, finds the step by
   * name, and runs it with the default codec (a runtime codec's extra `types` do not cross). The
   * step must return a value, not a `StepNode`. Aborting (cancel, `timeoutMs`) aborts
   * `currentStep().signal` in the isolate, then ends it after a 500 ms grace (`worker.terminate()`,
   * or SIGTERM then SIGKILL); an isolate that dies is a step failure (`IsolateExitedError`), retried
   * like a thrown error.
   *
   * ```ts
   * const render = step('render', renderFrames, { isolate: 'process', module: import.meta.url })
   * ```
   */
  isolate?: 'thread' | 'process'
  /**
   * The module the isolate imports to register this step: a `file:` URL (`import.meta.url` of the
   * file that calls `step()`) or an absolute path. It must register the step under the same name,
   * with the same `@wf/core` as the isolate's bootstrap.
   */
  module?: string
  /** Environment variables of the isolate, added to (and overriding) the runner's `process.env`. */
  env?: { [name: string]: string }
  /** Node options of the isolate (default: the runner's `process.execArgv`); threads accept only some. */
  execArgv?: string[]
  /**
   * Memory limits of the isolate: all of them for a thread (worker `resourceLimits`); a process
   * honours only `maxOldGenerationSizeMb` (as `--max-old-space-size`).
   */
  resourceLimits?: IsolateResourceLimits
}
