// @wf/core: durable workflows for TypeScript. The public API.

export type { CancelOutcome } from './cancel.js'
export { CLOCK_SKEW_ALLOWANCE_MS } from './cancel.js'
export type { Codec, CodecOptions, CodecType } from './codec.js'
export { createCodec, defaultCodec } from './codec.js'
export type { StepContext } from './context.js'
export { currentStep } from './context.js'
export * from './errors.js'
export { MAX_STEP_NAME_LENGTH, MAX_WORKFLOW_ID_LENGTH, validateStepName, validateWorkflowId } from './ids.js'
export { IsolateExitedError, type IsolateResourceLimits } from './isolate.js'
export { MemoryStorage } from './memory-storage.js'
export type {
  AttemptFailure,
  RecordedError,
  RootStepRun,
  RunnerInfo,
  StepFailures,
  StepRecord,
  StoredOutput,
  StoredStatus,
  Versioned,
  WorkflowRecord,
  WorkflowStatus,
} from './records.js'
export { MAX_RECORDED_FAILURES, STORED_STATUSES, storeKeys, WORKFLOW_STATUSES } from './records.js'
export type { StorageFactory, StorageSpec } from './resolve.js'
export { defaultStoragePath, registerStorageScheme, resolveStorage } from './resolve.js'
export type { InitOptions, ResumeOptions, RunOptions, WorkflowHandle } from './runtime.js'
export { getRuntime, init, Runtime } from './runtime.js'
export type { CodeChangePolicy, RuntimeChange, RuntimeInfo } from './runtime-info.js'
export {
  compareRuntime,
  compareSteps,
  currentRuntimeInfo,
  fingerprintStep,
  WorkflowCodeChangedError,
} from './runtime-info.js'
export type { RuntimeOptions } from './runtime-options.js'
export type {
  Arg,
  Args,
  BackoffOptions,
  Json,
  Resolved,
  StepDefinition,
  StepFunction,
  StepOptions,
  StepOutput,
  StepResult,
} from './step.js'
export { getRegisteredStep, isStepNode, StepNode, step } from './step.js'
export type { ListOptions, ListPage, PutCondition, Storage, StoredValue } from './storage.js'
export {
  compareKeys,
  MAX_KEY_BYTES,
  nextPageAfter,
  prefixUpperBound,
  validateKey,
  validatePrefix,
} from './storage.js'
export { WorkflowStore } from './store.js'
export type { Worker, WorkerOptions } from './worker.js'
export { createWorker } from './worker.js'
export { executionErrorOf } from './workflow-run.js'
