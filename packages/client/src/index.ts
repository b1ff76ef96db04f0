// @wf/client: manage wf workflows (status, resume, cancel, list, output, metadata, delete) as a
// `WorkflowClient` or as module functions bound to the process-wide runtime. The public API.

export { WorkflowClient, type WorkflowClientOptions } from './client.js'
export type { CheckStorageOptions, OrphanedWorkflow, StaleIndexEntry, StorageReport } from './doctor.js'
export {
  ScheduleNotDeclaredError,
  ScheduleNotFoundError,
  StepNotCommittedError,
  StepNotFoundError,
  WorkflowOutputUnavailableError,
} from './errors.js'
export type { ForkOptions, ForkResult } from './fork.js'
export type { StepView, WorkflowGraph } from './graph-view.js'
export {
  backfillSchedule,
  cancel,
  checkStorage,
  deleteSchedule,
  deleteWorkflow,
  deleteWorkflow as delete,
  deleteWorkflows,
  fork,
  getMetadata,
  getOutput,
  getSchedule,
  getStatus,
  listAll,
  listSchedules,
  listWorkflows,
  pauseSchedule,
  resume,
  resumeAll,
  resumeAsync,
  resumeSchedule,
  sendEvent,
  triggerSchedule,
} from './module-api.js'
export type { DeleteWorkflowsOptions, DeleteWorkflowsResult } from './retention.js'
export { describeSpec, type ScheduleInfo } from './schedules.js'
export type {
  DeleteOptions,
  FailureInfo,
  GetOutputOptions,
  ListWorkflowsOptions,
  ResumeAllOptions,
  ResumedWorkflow,
  ResumedWorkflows,
  StatusFilter,
  StepMetadata,
  StepStatus,
  StoredGraph,
  StoredGraphNode,
  StoredStepOptions,
  UnreadableWorkflow,
  WorkflowList,
  WorkflowListEntry,
  WorkflowMetadata,
  WorkflowPage,
  WorkflowSummary,
} from './types.js'
