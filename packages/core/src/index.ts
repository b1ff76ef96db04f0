// @wf/core: durable workflows for TypeScript. The public API.

export * from './errors.js'
export type { Codec, CodecOptions, CodecType } from './model/codec.js'
export { createCodec, defaultCodec } from './model/codec.js'
export {
  MAX_STEP_NAME_LENGTH,
  MAX_WORKFLOW_ID_LENGTH,
  validateStepName,
  validateWorkflowId,
} from './model/ids.js'
export type { Json } from './model/json.js'
export type {
  AttemptFailure,
  DeclarationRecord,
  RecordedError,
  RootStepRun,
  RunnerInfo,
  RuntimeInfo,
  ScheduleRecord,
  SkippedTick,
  StepFailures,
  StepRecord,
  StoredOutput,
  StoredStatus,
  Versioned,
  WorkflowRecord,
  WorkflowStatus,
} from './model/records.js'
export { MAX_RECORDED_FAILURES, WORKFLOW_STATUSES } from './model/records.js'
export type { ScheduleSpec, StoredScheduleSpec } from './model/schedule-spec.js'
export type { BackoffOptions, IsolateResourceLimits } from './model/step-options.js'
export type { CancelOutcome } from './runtime/cancel.js'
export { CLOCK_SKEW_ALLOWANCE_MS } from './runtime/cancel.js'
export type { ForkedFrom } from './runtime/fork.js'
export type { InitOptions, ResumeOptions } from './runtime/runtime.js'
export { getRuntime, init, Runtime } from './runtime/runtime.js'
export type { CodeChangePolicy } from './runtime/runtime-info.js'
export {
  compareRuntime,
  compareSteps,
  currentRuntimeInfo,
} from './runtime/runtime-info.js'
export type { RuntimeOptions } from './runtime/runtime-options.js'
export type { ScheduleEvent } from './runtime/schedule-firing.js'
export { runIdOf } from './runtime/schedule-firing.js'
export type { SendEventOptions, SentEvent } from './runtime/send-event.js'
export type { Worker, WorkerOptions } from './runtime/worker.js'
export { createWorker } from './runtime/worker.js'
export type { StepContext } from './step/context.js'
export { currentStep } from './step/context.js'
export type { CallOptions, WorkflowBody, WorkflowContext, WorkflowOptions } from './step/durable.js'
export { workflow } from './step/durable.js'
export type { EventResult, WaitForEventOptions } from './step/events.js'
export { waitForEvent } from './step/events.js'
export { fingerprintStep } from './step/fingerprint.js'
export type { RunOptions, WorkflowHandle } from './step/runner.js'
export type { CatchUpPolicy, OverlapPolicy, ScheduleDefinition, ScheduleOptions } from './step/schedule.js'
export {
  registeredSchedule,
  registeredSchedules,
  schedule,
  unschedule,
  validateScheduleId,
} from './step/schedule.js'
export { MAX_WAKE_TIME, sleep, sleepUntil } from './step/sleep.js'
export type {
  Arg,
  Args,
  Resolved,
  StepDefinition,
  StepFunction,
  StepOptions,
  StepOutput,
  StepResult,
} from './step/step.js'
export { isStepNode, StepNode, step } from './step/step.js'
export { MemoryStorage } from './storage/memory-storage.js'
export type { StorageFactory, StorageSpec } from './storage/resolve.js'
export { defaultStoragePath, registerStorageScheme, resolveStorage } from './storage/resolve.js'
export type {
  ListOptions,
  ListPage,
  PutCondition,
  StagedPut,
  Storage,
  StoredValue,
} from './storage/storage.js'
export {
  compareKeys,
  MAX_KEY_BYTES,
  nextPageAfter,
  prefixUpperBound,
  validateKey,
  validatePrefix,
} from './storage/storage.js'
export type { EventSummary } from './store/events.js'
export type { Duration } from './util/duration.js'
export { parseDuration } from './util/duration.js'

// Moved to `@wf/core/internal` (no semver guarantees); kept here, deprecated, so nothing breaks.
import * as internal from './internal.js'

/** @deprecated Use `storeKeys` from `@wf/core/internal` (no semver guarantees). */
export const storeKeys: typeof internal.storeKeys = internal.storeKeys
/** @deprecated Use `STORED_STATUSES` from `@wf/core/internal` (no semver guarantees). */
export const STORED_STATUSES: typeof internal.STORED_STATUSES = internal.STORED_STATUSES
/** @deprecated Use `executionErrorOf` from `@wf/core/internal` (no semver guarantees). */
export const executionErrorOf: typeof internal.executionErrorOf = internal.executionErrorOf
/** @deprecated Use `getRegisteredStep` from `@wf/core/internal` (no semver guarantees). */
export const getRegisteredStep: typeof internal.getRegisteredStep = internal.getRegisteredStep
/** @deprecated Use `WorkflowStore` from `@wf/core/internal` (no semver guarantees). */
export const WorkflowStore: typeof internal.WorkflowStore = internal.WorkflowStore
/** @deprecated Use `WorkflowStore` from `@wf/core/internal` (no semver guarantees). */
export type WorkflowStore = internal.WorkflowStore

// Large results as bytes (issue #26, part 3): a codec's optional byte parts.
export type { Encoded } from './model/codec.js'
export { EncodedParts, MIN_PART_SIZE } from './model/codec.js'
// Retention (issue #24): the workers' `retention` option.
export type { RetentionEvent, RetentionPolicy } from './runtime/worker.js'
export { retentionPlan } from './runtime/worker.js'

// Storage self-description (issue #26, the folder's durability shown by `wf info`).
export type { StorageDescription } from './storage/storage.js'
