// The status index as listings read it: core's scan of the markers and start batches
// (`scanStatusIndex` from @wf/core/internal, which alone knows their keys), what a marker can
// stand for, and the repair of a workflow found under two markers.

import type { Runtime, StoredStatus, Versioned, WorkflowRecord, WorkflowStatus } from '@wf/core'
import { type IndexEntry, scanStatusIndex, type WorkflowStore } from '@wf/core/internal'
import type { UnreadableWorkflow } from './types.js'
import { unreadable } from './unreadable.js'

export type { IndexEntry }

/**
 * Every workflow id in the index after `afterId` (exclusive), ascending in storage key order,
 * each with the statuses it has markers under; a start batch that cannot be read goes to `errors`.
 */
export function scanIndex(
  store: WorkflowStore,
  afterId?: string,
  pageSize = 1000,
  errors?: UnreadableWorkflow[],
): AsyncGenerator<IndexEntry> {
  return scanStatusIndex(
    store,
    afterId,
    pageSize,
    errors === undefined ? undefined : (error) => errors.push(unreadable(error)),
  )
}

/**
 * The statuses a marker can stand for: a RUNNING marker may be a RESUMABLE workflow, and a
 * PENDING one a workflow a runner took since (it keeps its marker while RUNNING).
 */
export function statusesOfMarker(marker: StoredStatus): WorkflowStatus[] {
  // A RUNNING record may read FAILED: a resume of a failure whose runner died before it committed.
  if (marker === 'RUNNING') return ['RUNNING', 'RESUMABLE', 'FAILED']
  if (marker === 'PENDING') return ['PENDING', 'RUNNING', 'RESUMABLE']
  return [marker]
}

/**
 * Reads the record of a workflow with more than one marker and settles the index from it. A
 * status change in flight also leaves two markers for a moment (new marker, then the record,
 * then the old marker goes), so: a record held by a live runner is left alone (that runner moves
 * the index itself), and when the record changed while we repaired, we repair again from the
 * record that won, so a marker we removed cannot stay lost.
 */
export async function readAndRepair(
  runtime: Runtime,
  store: WorkflowStore,
  workflowId: string,
): Promise<Versioned<WorkflowRecord> | undefined> {
  const found = await store.readWorkflow(workflowId)
  // No record: a submission between its marker and its record, or a crashed one. Drop it from the
  // listing but keep the marker: deleting it could hide a workflow being created right now.
  if (!found) return undefined
  if (runtime.deriveStatus(found.record) === 'RUNNING') return found
  await store.repairIndex(workflowId)
  const after = await store.readWorkflow(workflowId)
  if (after && after.version !== found.version) await store.repairIndex(workflowId)
  return after
}
