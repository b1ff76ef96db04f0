// The shapes the management API returns and accepts. Kept apart from the code so the public
// surface can be read in one place.

import type { Json, RuntimeInfo, StepFailures, StepRecord, WorkflowHandle, WorkflowStatus } from '@wf/core'

/** The stored form of a step graph (the workflow's, or a continuation's sub-graph). */
export type StoredGraph = NonNullable<StepRecord['graph']>
/** One node of a stored graph: step id, step name, options, encoded arguments, references to upstream nodes. */
export type StoredGraphNode = StoredGraph['nodes'][number]
/** The options stored with a step node (everything but code such as `retryOn`). */
export type StoredStepOptions = StoredGraphNode['options']

/** What `listAll()` accepts: one status, any iterable of statuses (an array, a Set…), or nothing for all. */
export type StatusFilter = WorkflowStatus | Iterable<WorkflowStatus>

/** One row of `listAll()`. */
export interface WorkflowListEntry {
  workflowId: string
  status: WorkflowStatus
  /** A parked workflow (PENDING, held by no runner): until when it waits (ms since the epoch), if a time ends it. */
  waitingUntil?: number
  /** A parked workflow: the events it waits for. */
  waitingForEvents?: string[]
}

/**
 * A workflow (or a start batch) that a listing could not read: its record is corrupt (truncated,
 * overwritten, written by an unknown version of wf). Listings show every other workflow and
 * report these; `wf doctor` lists them all, `delete(id, { force: true })` removes one.
 */
export interface UnreadableWorkflow {
  /** The workflow's id; absent for a start batch that cannot be read (the ids it lists are unknown). */
  workflowId?: string
  /** The storage key that could not be read. */
  key: string
  /** The error's stable code (`WF_CORRUPT_RECORD`). */
  code: string
  message: string
}

/**
 * What `listAll()` returns: an array of the workflows it could read (as before), carrying in
 * `errors` those it could not. `errors` is not enumerable, so the array compares, spreads and
 * prints as a plain one; copies made with `map`/`filter` do not keep it.
 */
export interface WorkflowList extends Array<WorkflowListEntry> {
  readonly errors: UnreadableWorkflow[]
}

/** Options of `listWorkflows()`. */
export interface ListWorkflowsOptions {
  /** Only these statuses (as `listAll`'s filter). */
  status?: StatusFilter
  /** Only workflows created at or after this time (a Date or milliseconds since the epoch). */
  createdAfter?: Date | number
  /** Only workflows created before this time. */
  createdBefore?: Date | number
  /** Only workflows whose user metadata has these keys with these (JSON-equal) values. */
  metadata?: { [key: string]: Json }
  /** At most this many workflows in the page (1–1000, default 100). */
  limit?: number
  /** The `cursor` of the previous page. */
  cursor?: string
}

/** One workflow in a page of `listWorkflows()`. */
export interface WorkflowSummary {
  workflowId: string
  status: WorkflowStatus
  /** Milliseconds since the epoch. */
  createdAt: number
  metadata: { [key: string]: Json }
}

/** A page of `listWorkflows()`; pass `cursor` back for the next one (absent on the last page). */
export interface WorkflowPage {
  workflows: WorkflowSummary[]
  cursor?: string
  /** Workflows of this page's stretch of ids whose records could not be read (not in `workflows`). */
  errors: UnreadableWorkflow[]
}

/** Options of `resumeAll()`. */
export interface ResumeAllOptions {
  /** Also resume FAILED workflows (from their failed step). Default false, as in Ray. */
  includeFailed?: boolean
}

/** What `resumeAll()` returns: the workflows taken over, carrying in `errors` those it could not read (as `WorkflowList`). */
export interface ResumedWorkflows<T = unknown> extends Array<ResumedWorkflow<T>> {
  readonly errors: UnreadableWorkflow[]
}

/** Options of `delete()`. */
export interface DeleteOptions {
  /**
   * Also delete a workflow whose record cannot be read (corrupt), or is gone while other keys of
   * it remain (steps, index markers, its id in a start batch): every key of it is removed. A
   * readable workflow is deleted as without it (never while RUNNING or PENDING).
   */
  force?: boolean
}

/** One workflow taken over by `resumeAll()`. */
export interface ResumedWorkflow<T = unknown> {
  workflowId: string
  /** The workflow's output; rejects like `resume()`. */
  result: Promise<T>
  /** The handle of the run, to cancel it. */
  handle: WorkflowHandle<T>
}

/** Options of `getOutput()`. */
export interface GetOutputOptions {
  /** The result of this step instead of the workflow's output. */
  stepId?: string
  /** How often to re-read the record while another process runs the workflow. Default 500 ms. */
  pollIntervalMs?: number
  /** Stops waiting (rejects with the signal's reason). */
  signal?: AbortSignal
}

/** An error as recorded in a FAILED workflow. */
export interface FailureInfo {
  stepId: string
  name: string
  message: string
  stack?: string
}

/** What `getMetadata(workflowId)` returns. */
export interface WorkflowMetadata {
  workflowId: string
  status: WorkflowStatus
  /** The `metadata` given to `run()`. */
  userMetadata: { [key: string]: Json }
  stats: {
    /** When the workflow was submitted (ms since the epoch). */
    startTime: number
    /** When it ended (SUCCESSFUL, FAILED or CANCELED); absent while it can still run. */
    endTime?: number
    /** When the latest run (first run or resume) started. */
    lastRunStartTime?: number
    /** How many times a runner took it (1 + resumes). */
    runs: number
  }
  /** The id of the step whose output is the workflow's output. */
  rootStepId: string
  /** The failure, for a FAILED workflow. */
  error?: FailureInfo
  /** The runner driving it (or that last drove it), for a RUNNING/RESUMABLE workflow. */
  runner?: { host: string; pid: number; runnerId: string }
  /**
   * A cancel not acknowledged yet, for a RUNNING/RESUMABLE workflow: `cancel()` in another runtime
   * asked the runner driving it to stop (`at`, ms since the epoch, by the runner `by`); the runner
   * writes CANCELED at its next heartbeat, and a runner taking it over cancels it first.
   */
  cancelRequested?: { at: number; by: { host: string; pid: number; runnerId: string } }
  /** What it was submitted with: Node, platform, application, lockfile hash, @wf/* versions. */
  runtime?: RuntimeInfo
  /**
   * For a parked workflow (PENDING, every step it can run sleeping or waiting for an event, held by
   * no runner): until when (ms since the epoch; a worker, or the process awaiting it, wakes it then;
   * absent when only an event can), the events it waits for, and the ids of the waiting steps.
   */
  waitingFor?: { until?: number; events?: string[]; steps: string[] }
  /** A fork (`fork()`): the workflow and step it was forked from. */
  forkedFrom?: { workflowId: string; stepId: string }
}

/**
 * A step's status: `SUCCESSFUL` (result committed), `FAILED` (the workflow failed in it or in its
 * continuation), `CONTINUED` (it returned a sub-graph that has not finished), `PENDING` (planned, no
 * result yet: not started, or in flight in a live run).
 */
export type StepStatus = 'SUCCESSFUL' | 'FAILED' | 'CONTINUED' | 'PENDING'

/** What `getMetadata(workflowId, { stepId })` returns. */
export interface StepMetadata {
  workflowId: string
  stepId: string
  name: string
  status: StepStatus
  /** The step's options as stored with the graph. */
  options: StoredStepOptions
  /** The step's `metadata` option. */
  userMetadata: { [key: string]: Json }
  stats: {
    /** When the attempt that committed started; absent when nothing is committed. */
    startTime?: number
    endTime?: number
    /** Attempts of the committed run (0 when nothing is committed). */
    attempts: number
  }
  /** Ids of the steps whose outputs this step takes. */
  dependsOn: string[]
  /** For a step that returned a sub-graph: the id of that sub-graph's final step. */
  continuationRootId?: string
  /** For a step inside a continuation: the step that returned the sub-graph. */
  parentStepId?: string
  /** The failure, when this step (or its continuation) failed the workflow. */
  error?: FailureInfo
  /**
   * Its failed attempts, when any failed (in any run): the last five errors (name, message, time,
   * the first lines of the stack), how many attempts failed, since when, and whether the last error
   * was caught by `catchExceptions`. A step that failed and then succeeded keeps them.
   */
  failures?: StepFailures
  /** Whether its code changed since submission (as registered in this process); absent when unknown. */
  codeChanged?: boolean
}
