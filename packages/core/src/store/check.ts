// Checks of what is stored, for readers outside the runtime (@wf/client's getOutput, through
// @wf/core/internal): the outputs a committed record must name, refused as a CorruptRecordError at
// the record's key. Here because they need the key layout, which core alone knows.

import { CorruptRecordError } from '../errors.js'
import { type StepRecord, type StoredOutput, storeKeys, type WorkflowRecord } from '../model/records.js'

/** The output of a SUCCESSFUL workflow record; one without any is corrupt. */
export function committedWorkflowOutput(record: WorkflowRecord): StoredOutput {
  if (record.output) return record.output
  throw new CorruptRecordError(storeKeys.workflow(record.workflowId), 'it is SUCCESSFUL but has no output')
}

/** The output of a step committed with a value (`kind: 'value'`); a record without any is corrupt. */
export function committedStepOutput(workflowId: string, stepId: string, record: StepRecord): StoredOutput {
  if (record.output) return record.output
  throw new CorruptRecordError(
    storeKeys.step(workflowId, stepId),
    'the step returned a value but no output is stored',
  )
}

/** The root step of the sub-graph a continuation record stores; a record without any is corrupt. */
export function continuationRoot(workflowId: string, stepId: string, record: StepRecord): string {
  const root = record.graph?.root
  if (root !== undefined) return root
  throw new CorruptRecordError(
    storeKeys.step(workflowId, stepId),
    'the step returned a sub-graph but none is stored',
  )
}
