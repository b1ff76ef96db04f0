// Errors the management API adds to core's: asking for a step that does not exist or has no
// result yet, and asking for the output of a workflow that nobody is driving to an end.

import { WfError } from '@wf/core'

/** The workflow's graph (and its expanded continuations) has no step with this id. */
export class StepNotFoundError extends WfError<'WF_STEP_NOT_FOUND'> {
  readonly workflowId: string
  readonly stepId: string
  constructor(workflowId: string, stepId: string) {
    super(
      'WF_STEP_NOT_FOUND',
      `workflow "${workflowId}" has no step "${stepId}" (run \`wf show ${workflowId}\` to see its step ids)`,
    )
    this.workflowId = workflowId
    this.stepId = stepId
  }
}

/** The step exists but has no committed result (not run yet, failed, or its continuation is unfinished). */
export class StepNotCommittedError extends WfError<'WF_STEP_NOT_COMMITTED'> {
  readonly workflowId: string
  readonly stepId: string
  constructor(workflowId: string, stepId: string, detail: string) {
    super('WF_STEP_NOT_COMMITTED', `step "${stepId}" of workflow "${workflowId}" has no result: ${detail}`)
    this.workflowId = workflowId
    this.stepId = stepId
  }
}

/** The workflow is RESUMABLE: no runner is driving it, so waiting for its output would wait forever. */
export class WorkflowOutputUnavailableError extends WfError<'WF_OUTPUT_UNAVAILABLE'> {
  readonly workflowId: string
  constructor(workflowId: string, status: string) {
    super(
      'WF_OUTPUT_UNAVAILABLE',
      `workflow "${workflowId}" is ${status}: no runner is driving it, so it has no output yet. Resume it (resume("${workflowId}") or \`wf resume\`) to finish it`,
    )
    this.workflowId = workflowId
  }
}

/** No schedule record has this id: no worker fired it yet, or it was deleted. */
export class ScheduleNotFoundError extends WfError<'WF_SCHEDULE_NOT_FOUND'> {
  readonly scheduleId: string
  constructor(scheduleId: string) {
    super(
      'WF_SCHEDULE_NOT_FOUND',
      `no schedule "${scheduleId}" is stored: a worker that imports its schedule() creates its record at its first poll (\`wf schedules list\` shows the stored ones)`,
    )
    this.scheduleId = scheduleId
  }
}

/** Running a schedule by hand needs its declaration (`schedule()`) in this process. */
export class ScheduleNotDeclaredError extends WfError<'WF_SCHEDULE_NOT_DECLARED'> {
  readonly scheduleId: string
  constructor(scheduleId: string) {
    super(
      'WF_SCHEDULE_NOT_DECLARED',
      `schedule "${scheduleId}" is not declared in this process: import the module that calls schedule("${scheduleId}", …) (\`--import\` on the command line)`,
    )
    this.scheduleId = scheduleId
  }
}
