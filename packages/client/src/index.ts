// @wf/client: manage wf workflows (status, resume, cancel, list, output, metadata, delete) as a
// `WorkflowClient` or as module functions bound to the process-wide runtime. The public API.

export { WorkflowClient, type WorkflowClientOptions } from './client.js'
export type { CheckStorageOptions, OrphanedWorkflow, StaleIndexEntry, StorageReport } from './doctor.js'
export { StepNotCommittedError, StepNotFoundError, WorkflowOutputUnavailableError } from './errors.js'
export type { StepView, WorkflowGraph } from './graph-view.js'
export {
  cancel,
  checkStorage,
  deleteWorkflow,
  deleteWorkflow as delete,
  getMetadata,
  getOutput,
  getStatus,
  listAll,
  listWorkflows,
  resume,
  resumeAll,
  resumeAsync,
  sendEvent,
} from './module-api.js'
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
