// The options and handles of running a graph, shared by `StepNode.run` (step.ts) and the runtime
// that does the running (runtime/runtime.ts).

import type { Json } from '../model/json.js'

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
  /**
   * Pipelined checkpoints for this workflow, whichever runner drives it (stored with it): a step's
   * dependents start while its record is being written. Default: the runtime's
   * `pipelineCheckpoints`. See `RuntimeOptions.pipelineCheckpoints` for what it changes.
   */
  pipelineCheckpoints?: boolean
}

/** A submitted workflow. */
export interface WorkflowHandle<T> {
  readonly workflowId: string
  /** The workflow's output; rejects with `WorkflowExecutionError` or `WorkflowCanceledError`. */
  result(): Promise<T>
  /** Cancels the workflow (see `Runtime.cancel`); resolves to its status then. */
  cancel(): Promise<'CANCELED' | 'SUCCESSFUL'>
}
