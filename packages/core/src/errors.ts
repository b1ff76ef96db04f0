// Every error wf throws on purpose: a class per failure a user can act on, each with a stable
// `code` (like Node's ERR_* codes) so callers can branch without parsing messages.
// Long on purpose: one place for every class and its code (WF_ERROR_CODES) reads better than many.

/**
 * An id, name or key as an error message quotes it: in double quotes, and cut in the middle past
 * 80 characters so a 200-character id keeps its start and end readable.
 */
export function quote(text: string, max = 80): string {
  const value = String(text)
  if (value.length <= max) return `"${value}"`
  const keep = max - 1
  const head = Math.ceil(keep / 2)
  return `"${value.slice(0, head)}…${value.slice(value.length - (keep - head))}"`
}

/** The code of each @wf/core error, by its class. Stable across releases: branch on `error.code`. */
export const WF_ERROR_CODES = {
  RuntimeNotLoadedError: 'WF_RUNTIME_NOT_LOADED',
  ConditionFailedError: 'WF_CONDITION_FAILED',
  InvalidKeyError: 'WF_INVALID_KEY',
  StorageUnavailableError: 'WF_STORAGE_UNAVAILABLE',
  StorageContractError: 'WF_STORAGE_CONTRACT',
  CorruptRecordError: 'WF_CORRUPT_RECORD',
  StorageConfigError: 'WF_STORAGE_CONFIG',
  InvalidWorkflowIdError: 'WF_INVALID_WORKFLOW_ID',
  InvalidStepNameError: 'WF_INVALID_STEP_NAME',
  InvalidOptionsError: 'WF_INVALID_OPTIONS',
  StepAlreadyRegisteredError: 'WF_STEP_ALREADY_REGISTERED',
  StepNotRegisteredError: 'WF_STEP_NOT_REGISTERED',
  SerializationError: 'WF_SERIALIZATION',
  WorkflowNotFoundError: 'WF_NOT_FOUND',
  WorkflowAlreadyExistsError: 'WF_ALREADY_EXISTS',
  WorkflowStillActiveError: 'WF_STILL_ACTIVE',
  WorkflowNotResumableError: 'WF_NOT_RESUMABLE',
  WorkflowExecutionError: 'WF_EXECUTION_FAILED',
  WorkflowCanceledError: 'WF_CANCELED',
  CancelNotAcknowledgedError: 'WF_CANCEL_NOT_ACKNOWLEDGED',
  StepTimeoutError: 'WF_STEP_TIMEOUT',
  WorkflowLeaseLostError: 'WF_LEASE_LOST',
  RunnerShutdownError: 'WF_RUNNER_SHUTDOWN',
  IsolateExitedError: 'WF_ISOLATE_EXITED',
  WorkflowCodeChangedError: 'WF_CODE_CHANGED',
  InternalError: 'WF_INTERNAL',
  NotInStepError: 'WF_NOT_IN_STEP',
  StepAbortedError: 'WF_STEP_ABORTED',
  IsolateModuleError: 'WF_ISOLATE_MODULE',
  IsolateContinuationError: 'WF_ISOLATE_CONTINUATION',
  IsolateDecodeError: 'WF_SERIALIZATION',
  EventRefusedError: 'WF_EVENT_REFUSED',
  WorkflowNondeterminismError: 'WF_NONDETERMINISM',
} as const

/** A code of an @wf/core error (`WfError.code`). */
export type WfErrorCode = (typeof WF_ERROR_CODES)[keyof typeof WF_ERROR_CODES]

/**
 * Base class of every error thrown by wf. `code` is stable across releases: one of `WF_ERROR_CODES`
 * for @wf/core's errors; other @wf packages name their own codes (`WfError<'WF_…'>`).
 */
export class WfError<Code extends string = WfErrorCode> extends Error {
  readonly code: Code
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/**
 * `StepNode.run`, `submit` or `runAsync` was called with no runtime loaded: a bundler left out
 * @wf/core's runtime module although package.json's `sideEffects` names it.
 */
export class RuntimeNotLoadedError extends WfError {
  constructor() {
    super(
      'WF_RUNTIME_NOT_LOADED',
      "no wf runtime is loaded: call init() from '@wf/core' before running a graph, or make your bundler keep @wf/core's dist/runtime/runtime.js (it has a side effect)",
    )
  }
}

/** A conditional `put` lost: the key existed (`ifAbsent`) or its version changed (`ifVersion`). */
export class ConditionFailedError extends WfError {
  readonly key: string
  constructor(
    key: string,
    message = `conditional write to ${quote(key)} failed: the key was written by someone else`,
  ) {
    super('WF_CONDITION_FAILED', message)
    this.key = key
  }
}

/** A storage key broke the key rules (see `validateKey`). */
export class InvalidKeyError extends WfError {
  readonly key: string
  constructor(key: string, reason: string) {
    super('WF_INVALID_KEY', `invalid storage key ${JSON.stringify(key)}: ${reason}`)
    this.key = key
  }
}

/** The storage could not be reached or kept failing after retries. Nothing was committed by the failed call. */
export class StorageUnavailableError extends WfError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WF_STORAGE_UNAVAILABLE', message, options)
  }
}

/**
 * A storage broke its contract in a way wf cannot work around (a listing whose `next` does not
 * move forward would page for ever): a bug in the backend or plugin, named in the message.
 */
export class StorageContractError extends WfError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WF_STORAGE_CONTRACT', message, options)
  }
}

/** A record found in storage could not be read (truncated, corrupt, or written by an unknown version). */
export class CorruptRecordError extends WfError {
  readonly key: string
  constructor(key: string, detail: string, options?: { cause?: unknown }) {
    super('WF_CORRUPT_RECORD', `the record at ${quote(key)} is corrupt: ${detail}`, options)
    this.key = key
  }
}

/** A storage URI or storage option could not be turned into a storage. */
export class StorageConfigError extends WfError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WF_STORAGE_CONFIG', message, options)
  }
}

/** A workflow id is empty, too long, or holds characters that cannot be part of a storage key. */
export class InvalidWorkflowIdError extends WfError {
  readonly workflowId: unknown
  constructor(workflowId: unknown, reason: string) {
    super('WF_INVALID_WORKFLOW_ID', `invalid workflow id ${JSON.stringify(workflowId)}: ${reason}`)
    this.workflowId = workflowId
  }
}

/** A step name is empty, too long, or holds characters that cannot be part of a storage key. */
export class InvalidStepNameError extends WfError {
  constructor(name: unknown, reason: string) {
    super('WF_INVALID_STEP_NAME', `invalid step name ${JSON.stringify(name)}: ${reason}`)
  }
}

/** Options given to a public function were wrong. The message names the option. */
export class InvalidOptionsError extends WfError {
  constructor(message: string) {
    super('WF_INVALID_OPTIONS', message)
  }
}

/** An event was sent to a workflow that has ended (SUCCESSFUL or CANCELED): nothing will take it. */
export class EventRefusedError extends WfError {
  readonly workflowId: string
  readonly status: string
  constructor(workflowId: string, name: string, status: string) {
    super(
      'WF_EVENT_REFUSED',
      `event ${quote(name)} was not sent: workflow ${quote(workflowId)} is ${status} and will never take it`,
    )
    this.workflowId = workflowId
    this.status = status
  }
}

/** Two different functions were registered under one step name. */
export class StepAlreadyRegisteredError extends WfError {
  readonly stepName: string
  constructor(stepName: string) {
    super(
      'WF_STEP_ALREADY_REGISTERED',
      `a different function is already registered as step ${quote(stepName)}: step names are the durable identity of the code, give each step its own`,
    )
    this.stepName = stepName
  }
}

/** Resume found a step name in the stored graph that no loaded module registered. The workflow stays resumable. */
export class StepNotRegisteredError extends WfError {
  readonly stepName: string
  /** `message` replaces the resume's one (the isolate says which module failed to register the step). */
  constructor(stepName: string, workflowId: string, message?: string) {
    super(
      'WF_STEP_NOT_REGISTERED',
      message ??
        `workflow ${quote(workflowId)} needs step ${quote(stepName)}, which is not registered in this process: import the module that calls step(${quote(stepName)}, ...) before resuming (the workflow stays resumable)`,
    )
    this.stepName = stepName
  }
}

/** A value could not be encoded: a function, a symbol, or a class instance without a codec. */
export class SerializationError extends WfError {
  /** Where in the value the fault is (`items[2]`; for arguments `[0]` is the first); `''` at the root or when unknown. */
  readonly path: string
  readonly stepId: string | undefined
  constructor(
    what: string,
    path: string,
    stepId: string | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    const where = stepId === undefined ? '' : ` of step ${quote(stepId)}`
    super('WF_SERIALIZATION', `cannot store the ${what}${where}: ${reason}`, options)
    this.path = path
    this.stepId = stepId
  }
}

/** No workflow is stored under this id. */
export class WorkflowNotFoundError extends WfError {
  readonly workflowId: string
  constructor(workflowId: string) {
    super('WF_NOT_FOUND', `no workflow with id ${quote(workflowId)} in this storage`)
    this.workflowId = workflowId
  }
}

/** `run({ workflowId, resumeExisting: false })` with an id that is already used. */
export class WorkflowAlreadyExistsError extends WfError {
  readonly workflowId: string
  constructor(workflowId: string) {
    super(
      'WF_ALREADY_EXISTS',
      `workflow ${quote(workflowId)} already exists: pick another id, delete it first, or pass resumeExisting: true to resume it`,
    )
    this.workflowId = workflowId
  }
}

/** The workflow is being driven by a live runner (or is waiting to be picked up), so it cannot be resumed, started or deleted now. */
export class WorkflowStillActiveError extends WfError {
  readonly workflowId: string
  constructor(workflowId: string, detail = 'it is still being run') {
    super(
      'WF_STILL_ACTIVE',
      `workflow ${quote(workflowId)} is active: ${detail}. To wait for its result, call getOutput(workflowId) from @wf/client, or run \`wf output <workflowId>\``,
    )
    this.workflowId = workflowId
  }
}

/** The workflow cannot be resumed (it was canceled). */
export class WorkflowNotResumableError extends WfError {
  readonly workflowId: string
  constructor(workflowId: string, status: string) {
    super('WF_NOT_RESUMABLE', `workflow ${quote(workflowId)} is ${status} and cannot be resumed`)
    this.workflowId = workflowId
  }
}

/** A step failed after its retries; the workflow is FAILED. `cause` is the step's own error. */
export class WorkflowExecutionError extends WfError {
  readonly workflowId: string
  readonly stepId: string
  constructor(workflowId: string, stepId: string, cause: unknown) {
    const detail = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)
    super(
      'WF_EXECUTION_FAILED',
      `workflow ${quote(workflowId)} failed in step ${quote(stepId)}: ${detail}. Fix the cause and resume it; completed steps will not run again`,
      { cause },
    )
    this.workflowId = workflowId
    this.stepId = stepId
  }
}

/** The workflow was canceled; its result will never be available. */
export class WorkflowCanceledError extends WfError {
  readonly workflowId: string
  constructor(workflowId: string) {
    super('WF_CANCELED', `workflow ${quote(workflowId)} was canceled`)
    this.workflowId = workflowId
  }
}

/** @deprecated Use `WorkflowCanceledError` (spelled like the `CANCELED` status): the same class. */
export const WorkflowCancelledError = WorkflowCanceledError
/** @deprecated Use `WorkflowCanceledError` (spelled like the `CANCELED` status): the same class. */
export type WorkflowCancelledError = WorkflowCanceledError

/**
 * `cancel()` asked the live runner that drives the workflow to stop, and that runner neither
 * acknowledged (by writing CANCELED) nor lost its lease within `waitedMs`. Nothing is promised
 * about its steps yet; the request stays in the workflow record, so the runner stops at its next
 * heartbeat if it is merely slow, and a later `cancel()` writes CANCELED itself once the runner's
 * lease has run out.
 */
export class CancelNotAcknowledgedError extends WfError {
  readonly workflowId: string
  readonly owner: { host: string; pid: number; runnerId: string }
  readonly waitedMs: number
  constructor(workflowId: string, owner: { host: string; pid: number; runnerId: string }, waitedMs: number) {
    super(
      'WF_CANCEL_NOT_ACKNOWLEDGED',
      `the runner ${owner.host}:${owner.pid} driving workflow "${workflowId}" did not acknowledge the cancel within ${waitedMs} ms (leaseTtlMs + heartbeatMs), and its lease is still live: steps may still start there. The request stays recorded: the runner stops at its next heartbeat if it is only slow; if it is stuck (a paused process, a blocked event loop), stop it, or call cancel again after its lease has run out`,
    )
    this.workflowId = workflowId
    this.owner = owner
    this.waitedMs = waitedMs
  }
}

/** A step attempt ran past its `timeoutMs`. */
export class StepTimeoutError extends WfError {
  readonly stepId: string
  constructor(stepId: string, timeoutMs: number) {
    super('WF_STEP_TIMEOUT', `step ${quote(stepId)} did not finish within ${timeoutMs} ms`)
    this.stepId = stepId
  }
}

/** This runner lost its lease on a workflow (paused or cut off from storage longer than the lease time-to-live). It stopped without committing more. */
export class WorkflowLeaseLostError extends WfError {
  readonly workflowId: string
  constructor(workflowId: string, detail: string) {
    super(
      'WF_LEASE_LOST',
      `this runner lost its lease on workflow ${quote(workflowId)} (${detail}) and stopped: another runner may be driving it; nothing more was committed here`,
    )
    this.workflowId = workflowId
  }
}

/** The runner was shut down (a worker stopping) and gave the workflow back; it is RESUMABLE and another runner will pick it up. */
export class RunnerShutdownError extends WfError {
  readonly workflowId: string
  constructor(workflowId: string) {
    super(
      'WF_RUNNER_SHUTDOWN',
      `the runner shut down and released workflow ${quote(workflowId)}, which is resumable`,
    )
    this.workflowId = workflowId
  }
}

/**
 * The worker thread or child process of an isolated step died before it returned a result: an
 * uncaught exception (`cause`), `process.exit()`, running out of memory, or a signal from outside.
 * Retried like an error the step threw.
 */
export class IsolateExitedError extends WfError {
  readonly stepId: string
  readonly isolate: 'thread' | 'process'
  /** The exit code, when it exited. */
  readonly exitCode: number | null
  /** The signal that killed the process, when one did. */
  readonly signal: string | null
  constructor(
    stepName: string,
    stepId: string,
    isolate: 'thread' | 'process',
    exit: { code: number | null; signal: string | null; cause?: unknown },
  ) {
    const where = isolate === 'thread' ? 'worker thread' : 'child process'
    const named = stepId === stepName ? `"${stepName}"` : `"${stepName}" (id "${stepId}")`
    super(
      'WF_ISOLATE_EXITED',
      `step ${named} died in its ${where} before returning a result: ${describeExit(exit)}`,
      exit.cause === undefined ? undefined : { cause: exit.cause },
    )
    this.stepId = stepId
    this.isolate = isolate
    this.exitCode = exit.code
    this.signal = exit.signal
  }
}

function describeExit(exit: { code: number | null; signal: string | null; cause?: unknown }): string {
  const { cause } = exit
  if (cause instanceof Error) {
    if ((cause as { code?: unknown }).code === 'ERR_WORKER_OUT_OF_MEMORY') {
      return `it ran out of memory (resourceLimits): ${cause.message}`
    }
    return `uncaught ${cause.name}: ${cause.message}`
  }
  if (cause !== undefined) return `uncaught ${String(cause)}`
  if (exit.signal === 'SIGABRT') return 'killed by SIGABRT (a fatal V8 error, such as running out of memory)'
  if (exit.signal) return `killed by ${exit.signal}`
  return `exited with code ${exit.code}`
}

/** One difference between the recorded runtime and the current one. */
export interface RuntimeChange {
  /** A step name (`step:<name>`) or a runtime field (`node`, `lockfile`, `app.version`, `@wf/core`, …). */
  what: string
  before: string | undefined
  after: string | undefined
}

/** A resumed workflow's step code changed since submission and the policy is `'error'`. The workflow stays resumable. */
export class WorkflowCodeChangedError extends WfError {
  readonly workflowId: string
  readonly changes: RuntimeChange[]
  constructor(workflowId: string, changes: RuntimeChange[]) {
    const list = changes.map((c) => `${c.what} (${c.before ?? 'none'} → ${c.after ?? 'none'})`).join(', ')
    super(
      'WF_CODE_CHANGED',
      `workflow "${workflowId}" was submitted with other code: ${list}. Deploy the code it was submitted with, or resume with onCodeChange: 'warn' to accept the change (the workflow stays resumable)`,
    )
    this.workflowId = workflowId
    this.changes = changes
  }
}

/** wf found itself in a state it should never reach: a bug in wf, please report it with the message. */
export class InternalError extends WfError {
  constructor(message: string) {
    super('WF_INTERNAL', message)
  }
}

/** `currentStep()` was called outside a running step. */
export class NotInStepError extends WfError {
  constructor() {
    super('WF_NOT_IN_STEP', 'currentStep() can only be called while a step is running')
  }
}

/** The reason an isolated step's signal aborts with when the runner's reason could not be decoded. */
export class StepAbortedError extends WfError {
  constructor() {
    super('WF_STEP_ABORTED', 'the runner aborted this step (canceled or timed out)')
  }
}

/** The module of an isolated step could not be imported in its worker thread or child process. */
export class IsolateModuleError extends WfError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WF_ISOLATE_MODULE', message, options)
  }
}

/** An isolated step returned a `StepNode` (a continuation), which cannot leave its isolate. */
export class IsolateContinuationError extends WfError {
  constructor(message: string) {
    super('WF_ISOLATE_CONTINUATION', message)
  }
}

/** A value crossing an isolate (arguments in, an error out) could not be decoded. */
export class IsolateDecodeError extends WfError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WF_SERIALIZATION', message, options)
  }
}

/**
 * A durable function (`workflow()`), run again from the top to resume, asked for something else
 * than what its earlier run recorded: another step or other arguments at a key, or it never
 * reached a key that was recorded. The workflow becomes FAILED, not RESUMABLE (running it again
 * with this code would fail the same way): deploy the code that started it and resume it, or
 * fork it, or branch with `ctx.patched()`.
 */
export class WorkflowNondeterminismError extends WfError {
  /** The workflow. */
  readonly workflowId: string
  /** The key of the call (`<functionStepId>~<n>` or `~k:<key>`) where the runs differ. */
  readonly key: string
  /** What the earlier run recorded at the key (`step "name" with arguments #hash`), or `undefined`. */
  readonly recorded: string | undefined
  /** What this code asked for there, or `undefined` when it never reached the key. */
  readonly requested: string | undefined
  constructor(workflowId: string, key: string, recorded: string | undefined, requested: string | undefined) {
    const what =
      requested === undefined
        ? `the earlier run recorded ${recorded} at key ${quote(key)}, which this code never reached`
        : recorded === undefined
          ? `this code asked for ${requested} at key ${quote(key)}, where the earlier run recorded nothing`
          : `at key ${quote(key)} the earlier run recorded ${recorded}, and this code asked for ${requested}`
    super(
      'WF_NONDETERMINISM',
      `workflow ${quote(workflowId)} is not deterministic: ${what}. Deploy the code that started it and resume it, fork it, or branch with ctx.patched()`,
    )
    this.workflowId = workflowId
    this.key = key
    this.recorded = recorded
    this.requested = requested
  }
}
