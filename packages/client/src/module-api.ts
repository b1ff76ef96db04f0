// The management API as module functions bound to the process-wide runtime (`init()` sets it),
// Ray's style: `import { getStatus, listAll } from '@wf/client'`.

import type { SendEventOptions, SentEvent, WorkflowHandle, WorkflowStatus } from '@wf/core'
import { WorkflowClient } from './client.js'
import type { CheckStorageOptions, StorageReport } from './doctor.js'
import type { ForkOptions, ForkResult } from './fork.js'
import type { DeleteWorkflowsOptions, DeleteWorkflowsResult } from './retention.js'
import type { ScheduleInfo } from './schedules.js'
import type {
  DeleteOptions,
  GetOutputOptions,
  ListWorkflowsOptions,
  ResumeAllOptions,
  ResumedWorkflows,
  StatusFilter,
  StepMetadata,
  WorkflowList,
  WorkflowMetadata,
  WorkflowPage,
} from './types.js'

// No options: it looks up the process-wide runtime on every call, so a later init() is followed.
const processClient = new WorkflowClient()

/** See `WorkflowClient.getStatus`. */
export function getStatus(workflowId: string): Promise<WorkflowStatus> {
  return processClient.getStatus(workflowId)
}

/** See `WorkflowClient.resume`. */
export function resume<T = unknown>(workflowId: string): Promise<T> {
  return processClient.resume<T>(workflowId)
}

/** See `WorkflowClient.resumeAsync`. */
export function resumeAsync<T = unknown>(workflowId: string): Promise<WorkflowHandle<T>> {
  return processClient.resumeAsync<T>(workflowId)
}

/** See `WorkflowClient.cancel`. */
export function cancel(workflowId: string): Promise<'CANCELED' | 'SUCCESSFUL'> {
  return processClient.cancel(workflowId)
}

/** See `WorkflowClient.listAll`. */
export function listAll(filter?: StatusFilter): Promise<WorkflowList> {
  return processClient.listAll(filter)
}

/** See `WorkflowClient.listWorkflows`. */
export function listWorkflows(options?: ListWorkflowsOptions): Promise<WorkflowPage> {
  return processClient.listWorkflows(options)
}

/** See `WorkflowClient.resumeAll`. */
export function resumeAll<T = unknown>(options?: ResumeAllOptions): Promise<ResumedWorkflows<T>> {
  return processClient.resumeAll<T>(options)
}

/** See `WorkflowClient.fork`. */
export function fork<T = unknown>(workflowId: string, options?: ForkOptions): Promise<ForkResult<T>> {
  return processClient.fork<T>(workflowId, options)
}

/** See `WorkflowClient.listSchedules`. */
export function listSchedules(): Promise<ScheduleInfo[]> {
  return processClient.listSchedules()
}

/** See `WorkflowClient.getSchedule`. */
export function getSchedule(scheduleId: string, options?: { upcoming?: number }): Promise<ScheduleInfo> {
  return processClient.getSchedule(scheduleId, options)
}

/** See `WorkflowClient.pauseSchedule`. */
export function pauseSchedule(scheduleId: string): Promise<ScheduleInfo> {
  return processClient.pauseSchedule(scheduleId)
}

/** See `WorkflowClient.resumeSchedule`. */
export function resumeSchedule(scheduleId: string): Promise<ScheduleInfo> {
  return processClient.resumeSchedule(scheduleId)
}

/** See `WorkflowClient.triggerSchedule`. */
export function triggerSchedule(scheduleId: string): Promise<string> {
  return processClient.triggerSchedule(scheduleId)
}

/** See `WorkflowClient.backfillSchedule`. */
export function backfillSchedule(
  scheduleId: string,
  from: Date | number,
  to: Date | number,
): Promise<{ created: string[]; existing: string[] }> {
  return processClient.backfillSchedule(scheduleId, from, to)
}

/** See `WorkflowClient.deleteSchedule`. */
export function deleteSchedule(scheduleId: string): Promise<void> {
  return processClient.deleteSchedule(scheduleId)
}

/** See `WorkflowClient.sendEvent`. */
export function sendEvent(
  workflowId: string,
  name: string,
  payload: unknown,
  options?: SendEventOptions,
): Promise<SentEvent> {
  return processClient.sendEvent(workflowId, name, payload, options)
}

/** See `WorkflowClient.getOutput`. */
export function getOutput<T = unknown>(workflowId: string, options?: GetOutputOptions): Promise<T> {
  return processClient.getOutput<T>(workflowId, options)
}

/** See `WorkflowClient.getMetadata`. */
export function getMetadata(workflowId: string): Promise<WorkflowMetadata>
export function getMetadata(workflowId: string, options: { stepId: string }): Promise<StepMetadata>
export function getMetadata(
  workflowId: string,
  options?: { stepId?: string },
): Promise<WorkflowMetadata | StepMetadata>
export function getMetadata(
  workflowId: string,
  options?: { stepId?: string },
): Promise<WorkflowMetadata | StepMetadata> {
  return processClient.getMetadata(workflowId, options)
}

/** See `WorkflowClient.delete`. Also exported as `delete`. */
export function deleteWorkflow(workflowId: string, options?: DeleteOptions): Promise<void> {
  return processClient.delete(workflowId, options)
}

/** See `WorkflowClient.checkStorage`. */
export function checkStorage(options?: CheckStorageOptions): Promise<StorageReport> {
  return processClient.checkStorage(options)
}

/** See `WorkflowClient.deleteWorkflows`. */
export function deleteWorkflows(options: DeleteWorkflowsOptions): Promise<DeleteWorkflowsResult> {
  return processClient.deleteWorkflows(options)
}
