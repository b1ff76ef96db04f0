// Reads the status index (`index/<STATUS>/<id>` markers) without reading workflow records: the
// five status prefixes are listed page by page and merged by workflow id, so each id comes out
// once, in ascending order, with every status it has a marker under. Start batches (`starts/`,
// the workflows a runner started together, each without a RUNNING marker of its own) are read
// first and merged in too.

import {
  compareKeys,
  nextPageAfter,
  type Runtime,
  type StoredStatus,
  type Versioned,
  type WorkflowRecord,
  type WorkflowStatus,
} from '@wf/core'
import { STORED_STATUSES, storeKeys, type WorkflowStore } from '@wf/core/internal'
import { mapLimit } from './concurrency.js'
import type { UnreadableWorkflow } from './types.js'
import { unreadable } from './unreadable.js'

/** A workflow id found in the index, with the statuses it has markers under (two after a crash mid-change). */
export interface IndexEntry {
  workflowId: string
  markers: StoredStatus[]
  /** Listed by a start batch: RUNNING, or it was when the batch was written (its record says). */
  batched: boolean
}

interface PrefixCursor {
  status: StoredStatus
  prefix: string
  ids: string[]
  pos: number
  /** The storage key to list after; `undefined` once the prefix is exhausted. */
  after: string | undefined
  exhausted: boolean
}

async function fill(store: WorkflowStore, cursor: PrefixCursor, pageSize: number): Promise<void> {
  while (cursor.pos >= cursor.ids.length && !cursor.exhausted) {
    const page = await store.storage.list(
      cursor.prefix,
      cursor.after === undefined ? { limit: pageSize } : { after: cursor.after, limit: pageSize },
    )
    cursor.ids = page.keys.map((key) => key.slice(cursor.prefix.length))
    cursor.pos = 0
    // A storage whose `next` does not move forward would page for ever: StorageContractError.
    cursor.after = nextPageAfter(cursor.prefix, cursor.after, page)
    if (cursor.after === undefined) cursor.exhausted = true
  }
}

/**
 * Every workflow id in the index after `afterId` (exclusive), ascending by id in the order
 * storage lists keys in (`compareKeys`: UTF-8 bytes), each with the statuses it has markers under.
 */
export async function* scanIndex(
  store: WorkflowStore,
  afterId?: string,
  pageSize = 1000,
  errors?: UnreadableWorkflow[],
): AsyncGenerator<IndexEntry> {
  // Read first: a workflow leaves its batch only once it has a marker (see start-batches.ts in core).
  const batched = await batchedIds(store, afterId, errors)
  let nextBatched = 0
  const cursors: PrefixCursor[] = STORED_STATUSES.map((status) => {
    const prefix = storeKeys.indexPrefix(status)
    return {
      status,
      prefix,
      ids: [],
      pos: 0,
      after: afterId === undefined ? undefined : prefix + afterId,
      exhausted: false,
    }
  })
  for (;;) {
    await Promise.all(cursors.map((c) => fill(store, c, pageSize)))
    let least = batched[nextBatched]
    for (const c of cursors) {
      const id = c.ids[c.pos]
      // The storage's own order (UTF-8 bytes), not `<`: the streams must merge as they are sorted.
      if (id !== undefined && (least === undefined || compareKeys(id, least) < 0)) least = id
    }
    if (least === undefined) return
    const markers: StoredStatus[] = []
    for (const c of cursors) {
      if (c.ids[c.pos] === least) {
        markers.push(c.status)
        c.pos++
      }
    }
    const inBatch = batched[nextBatched] === least
    if (inBatch) nextBatched++
    yield { workflowId: least, markers, batched: inBatch }
  }
}

/** The ids the start batches list after `afterId`, once each, in storage key order. */
async function batchedIds(
  store: WorkflowStore,
  afterId: string | undefined,
  errors: UnreadableWorkflow[] | undefined,
): Promise<string[]> {
  // A batch that cannot be read is reported (with `errors`): the workflows of the others still list.
  const batches = await mapLimit(await store.listStartBatches(), 16, (name) =>
    errors === undefined
      ? store.readStartBatch(name)
      : store.readStartBatch(name).catch((error: unknown) => {
          errors.push(unreadable(error))
          return undefined
        }),
  )
  const ids = new Set<string>()
  for (const batch of batches) {
    for (const id of batch?.record.workflowIds ?? []) {
      if (afterId === undefined || compareKeys(id, afterId) > 0) ids.add(id)
    }
  }
  return [...ids].sort(compareKeys)
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
