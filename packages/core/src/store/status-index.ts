// Reads the status index (`index/<STATUS>/<id>` markers) without reading workflow records: the
// five status prefixes are listed page by page and merged by workflow id, so each id comes out
// once, in ascending order, with every status it has a marker under. Start batches (`starts/`,
// the workflows a runner started together, each without a RUNNING marker of its own) are read
// first and merged in too, and so are parked workflows (the due index, `due/<time>/<id>`, which
// sorts by wake time: read whole, as start batches are). Used by @wf/client's listings (through @wf/core/internal), so that
// the layout of the index stays known to core alone.

import { STORED_STATUSES, type StoredStatus, storeKeys } from '../model/records.js'
import { compareKeys, nextPageAfter } from '../storage/storage.js'
import { mapLimit } from '../util/map-limit.js'
import type { WorkflowStore } from './store.js'

/** A workflow id found in the index, with the statuses it has markers under (two after a crash mid-change). */
export interface IndexEntry {
  workflowId: string
  markers: StoredStatus[]
  /** Listed by a start batch: RUNNING, or it was when the batch was written (its record says). */
  batched: boolean
  /** Listed by the due index: PENDING and parked, or it was when listed (its record says). */
  parked: boolean
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
export async function* scanStatusIndex(
  store: WorkflowStore,
  afterId?: string,
  pageSize = 1000,
  onUnreadableBatch?: (error: unknown) => void,
): AsyncGenerator<IndexEntry> {
  // Read first: a workflow leaves its batch only once it has a marker (see start-batches.ts).
  const batched = await batchedIds(store, afterId, onUnreadableBatch)
  const parked = await parkedIds(store, afterId)
  let nextBatched = 0
  let nextParked = 0
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
    const parkedId = parked[nextParked]
    if (parkedId !== undefined && (least === undefined || compareKeys(parkedId, least) < 0)) least = parkedId
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
    const isParked = parked[nextParked] === least
    if (isParked) nextParked++
    yield { workflowId: least, markers, batched: inBatch, parked: isParked }
  }
}

/** The ids the due index lists after `afterId`, once each, in storage key order. */
async function parkedIds(store: WorkflowStore, afterId: string | undefined): Promise<string[]> {
  const ids = new Set<string>()
  for (const { workflowId } of await store.allDue()) {
    if (afterId === undefined || compareKeys(workflowId, afterId) > 0) ids.add(workflowId)
  }
  return [...ids].sort(compareKeys)
}

/** The ids the start batches list after `afterId`, once each, in storage key order. */
async function batchedIds(
  store: WorkflowStore,
  afterId: string | undefined,
  onUnreadable: ((error: unknown) => void) | undefined,
): Promise<string[]> {
  // A batch that cannot be read is reported (to `onUnreadable`): the workflows of the others still list.
  const batches = await mapLimit(await store.listStartBatches(), 16, (name) =>
    onUnreadable === undefined
      ? store.readStartBatch(name)
      : store.readStartBatch(name).catch((error: unknown) => {
          onUnreadable(error)
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
