// Checks of what is stored, for readers outside the runtime (@wf/client's getOutput and `wf doctor`,
// through @wf/core/internal): a survey of every workflow id the store holds keys of, and the
// outputs a committed record must name (refused as a CorruptRecordError at the record's key).
// Here because they need the key layout, which core alone knows.

import { CorruptRecordError } from '../errors.js'
import {
  type StepRecord,
  type StoredOutput,
  type StoredStatus,
  storeKeys,
  type WorkflowRecord,
} from '../model/records.js'
import type { WorkflowStore } from './store.js'

/** A readable start batch (`starts/<name>`), with its key. */
export interface SurveyedBatch {
  name: string
  key: string
  runnerId: string
  createdAt: number
  workflowIds: string[]
}

/** Every workflow id the store holds any key of, and where (`surveyStore`). */
export interface StoreSurvey {
  /** The readable start batches. */
  batches: SurveyedBatch[]
  /** The statuses each id has index markers under. */
  markers: Map<string, StoredStatus[]>
  /** Each id's keys under `workflows/<id>/`. */
  stored: Map<string, string[]>
  /** Every id named by a key, a marker or a start batch, sorted. */
  workflowIds: string[]
}

/**
 * Lists the whole store: start batches, index markers, keys under `workflows/` (for checks such as
 * `wf doctor`, not hot paths). A start batch that cannot be read goes to `onUnreadableBatch`
 * (a `CorruptRecordError`), which may throw to stop the survey.
 */
export async function surveyStore(
  store: WorkflowStore,
  onUnreadableBatch: (error: CorruptRecordError) => void,
): Promise<StoreSurvey> {
  // Start batches first: a submission writes its batch (or marker) before its record, so what is
  // listed here may be a record about to appear.
  const batches: SurveyedBatch[] = []
  for (const name of await store.listStartBatches()) {
    try {
      const found = await store.readStartBatch(name)
      if (found) {
        const { runnerId, createdAt, workflowIds } = found.record
        batches.push({ name, key: storeKeys.startBatch(name), runnerId, createdAt, workflowIds })
      }
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error
      onUnreadableBatch(error)
    }
  }
  const markers = await store.indexMarkers()
  const stored = await store.storedWorkflows()
  const ids = new Set<string>([...stored.keys(), ...markers.keys()])
  for (const batch of batches) for (const id of batch.workflowIds) ids.add(id)
  return { batches, markers, stored, workflowIds: [...ids].sort() }
}

/**
 * The keys a survey found of one workflow id: under `workflows/<id>/`, its index markers, and the
 * start batches that list it (what `WorkflowStore.removeOrphanKeys` takes).
 */
export function surveyedKeys(survey: StoreSurvey, workflowId: string): string[] {
  return [
    ...(survey.stored.get(workflowId) ?? []),
    ...(survey.markers.get(workflowId) ?? []).map((status) => storeKeys.index(status, workflowId)),
    ...survey.batches.filter((b) => b.workflowIds.includes(workflowId)).map((b) => b.key),
  ]
}

/** The workflow a key under `workflows/<id>/` belongs to (a `CorruptRecordError`'s `key`), else `undefined`. */
export function workflowIdOfKey(key: string): string | undefined {
  const prefix = storeKeys.workflowsPrefix
  const end = key.indexOf('/', prefix.length)
  return key.startsWith(prefix) && end > prefix.length ? key.slice(prefix.length, end) : undefined
}

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
