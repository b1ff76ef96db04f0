// Retention: deleting ended workflows in bulk (@wf/client's deleteWorkflows and `wf gc`, and the
// workers' `retention` option). A pass lists the ended index (`ended/<day>/<id>`) day by day up to
// the cutoff's day, so it reads only the records of workflows that ended before it, never every
// record; `full` also walks the status index, for workflows that ended before the ended index was
// written (and writes their entries, so the next pass needs no full walk). Each workflow goes by
// `WorkflowStore.deleteWorkflow`: marked first by compare-and-swap, so one resumed meanwhile stays.

import { ConditionFailedError, CorruptRecordError, InvalidOptionsError } from '../errors.js'
import type { Json } from '../model/json.js'
import {
  ENDED_STATUSES,
  endedDay,
  endedKey,
  type RetentionRecord,
  type RunnerInfo,
  type StoredStatus,
  storeKeys,
  utf8,
  type Versioned,
  type WorkflowRecord,
} from '../model/records.js'
import { nextPageAfter } from '../storage/storage.js'
import { mapLimit } from '../util/map-limit.js'
import { type EndedEntry, indexStatus, type WorkflowStore } from './store.js'

/** Which ended workflows a pass deletes. */
export interface RetentionFilter {
  /** Among FAILED, CANCELED and SUCCESSFUL (never an active one). */
  statuses: readonly StoredStatus[]
  /** Those that ended before this time (ms since the epoch). */
  endedBefore: number
  /** Those whose metadata has each of these fields with this value (compared as JSON). */
  metadata?: { [key: string]: Json }
}

/** Where a pass stopped at its `limit`: pass it back as `cursor` to go on. */
export interface RetentionCursor {
  /** The ended index, after this entry; or (`full`) the status index of `status`, after this key. */
  phase: 'ended' | 'full'
  after?: string
  status?: StoredStatus
}

export interface RetentionPassOptions extends RetentionFilter {
  /** Count what would go, delete nothing. */
  dryRun?: boolean
  /** Also walk the status index (workflows that ended before the ended index existed). */
  full?: boolean
  /** Consider at most this many entries, then stop with a `cursor` (pacing). Default: no limit. */
  limit?: number
  cursor?: RetentionCursor
  /** Workflows handled at once. Default 16. */
  concurrency?: number
  /** Workflows this process is running: never deleted, whatever their record says. */
  isActive?: (workflowId: string) => boolean
  /** Called after each workflow considered. */
  onProgress?: (progress: RetentionProgress) => void
}

export interface RetentionProgress {
  /** Index entries considered so far. */
  scanned: number
  /** Workflows deleted (or, dry run, that would be) so far. */
  workflows: number
}

/** What a pass did. */
export interface RetentionResult {
  /** Workflows deleted (dry run: that would be). */
  workflows: number
  /** Keys deleted (dry run: that would be): every key under each workflow, its index entries. */
  keys: number
  /** The ids of those workflows, in the order handled. */
  workflowIds: string[]
  /** Index entries considered. */
  scanned: number
  /** Workflows that matched but were left: resumed or changed meanwhile, or unreadable (`wf doctor`). */
  skipped: number
  /** Set when `limit` stopped the pass before the end: pass it back to go on. */
  cursor?: RetentionCursor
}

const ENDED = new Set<StoredStatus>(ENDED_STATUSES)

/** Checks a filter: `InvalidOptionsError`, saying what to give, for a bad one. */
export function validateRetentionFilter(filter: RetentionFilter): void {
  const { statuses, endedBefore, metadata } = filter
  if (!Array.isArray(statuses) || statuses.length === 0)
    throw new InvalidOptionsError('status must name one or more of FAILED, CANCELED, SUCCESSFUL')
  for (const status of statuses) {
    if (!ENDED.has(status))
      throw new InvalidOptionsError(
        `status ${JSON.stringify(status)} cannot be deleted in bulk: only ended workflows can (FAILED, CANCELED, SUCCESSFUL); RUNNING, PENDING and RESUMABLE ones never are`,
      )
  }
  if (typeof endedBefore !== 'number' || !Number.isFinite(endedBefore))
    throw new InvalidOptionsError('endedBefore must be a Date or a time in ms since the epoch')
  if (
    metadata !== undefined &&
    (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
  )
    throw new InvalidOptionsError('metadata must be an object of the fields to match')
}

function matchesMetadata(record: WorkflowRecord, wanted: { [key: string]: Json } | undefined): boolean {
  if (wanted === undefined) return true
  for (const [key, value] of Object.entries(wanted)) {
    if (JSON.stringify(record.metadata?.[key]) !== JSON.stringify(value)) return false
  }
  return true
}

/** How many ended index entries lie on or before the cutoff's day (a listing of keys, no record read). */
export async function countEnded(store: WorkflowStore, endedBefore: number): Promise<number> {
  const lastDay = endedDay(endedBefore)
  let count = 0
  let after: string | undefined
  for (;;) {
    const page = await store.listEnded(
      lastDay,
      after === undefined ? { limit: 1000 } : { after, limit: 1000 },
    )
    count += page.entries.length
    if (page.next === undefined) return count
    after = page.next
  }
}

/**
 * Deletes (or, `dryRun`, counts) the ended workflows that match, with every key they own. Never a
 * workflow whose record is not ended when read; one resumed between that read and its deletion
 * loses nothing (the mark's compare-and-swap fails: it is `skipped`). Records marked `deleting`
 * that a crash left are finished on the way (whatever the filter: they are gone already).
 */
export async function runRetentionPass(
  store: WorkflowStore,
  options: RetentionPassOptions,
): Promise<RetentionResult> {
  validateRetentionFilter(options)
  const { dryRun = false, full = false, limit, concurrency = 16, isActive, onProgress } = options
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
    throw new InvalidOptionsError(`limit must be a positive integer, got ${String(limit)}`)
  const result: RetentionResult = { workflows: 0, keys: 0, workflowIds: [], scanned: 0, skipped: 0 }
  const statuses = new Set(options.statuses)
  const lastDay = endedDay(options.endedBefore)

  const counted = (workflowId: string, keys: number) => {
    result.workflows++
    result.keys += keys
    result.workflowIds.push(workflowId)
  }

  /** One workflow an index lists; `entry` when the ended index does. */
  const consider = async (workflowId: string, entry: EndedEntry | undefined): Promise<void> => {
    result.scanned++
    let found: Versioned<WorkflowRecord> | undefined
    try {
      found = await store.readStoredWorkflow(workflowId)
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error
      result.skipped++ // `wf doctor` reports it; deleting it needs `delete(id, { force: true })`.
      return
    }
    if (found === undefined) {
      // Deleted (a crash after its record went), or its entry is all a lost race left.
      if (entry && !dryRun) await store.deleteEndedEntry(entry)
      return
    }
    const { record } = found
    if (record.deleting !== undefined) {
      // Marked by a deletion that did not finish (a crash): gone for every reader; finished here.
      counted(
        workflowId,
        dryRun ? await keysOf(store, record) : await store.deleteWorkflow(workflowId, found),
      )
      return
    }
    if (entry && endedKey(record) !== entry.key) {
      // Stale: resumed since, or ended again another day. Its current end has an entry of its own.
      if (!dryRun) await dropStaleEntry(store, entry)
      return
    }
    if (!statuses.has(record.status) || !ENDED.has(record.status)) return
    if (!(typeof record.endedAt === 'number' && record.endedAt < options.endedBefore)) {
      // A full walk meets workflows the ended index misses: it adds them, for the next passes.
      if (!entry && !dryRun) await store.addEndedEntry(record)
      return
    }
    if (!matchesMetadata(record, options.metadata) || isActive?.(workflowId)) return
    if (dryRun) {
      counted(workflowId, await keysOf(store, record))
      return
    }
    try {
      counted(workflowId, await store.deleteWorkflow(workflowId, found))
    } catch (error) {
      // Written since it was read (a resume took it): it stays.
      if (!(error instanceof ConditionFailedError)) throw error
      result.skipped++
    }
  }

  const budget = () => (limit === undefined ? 256 : Math.min(256, limit - result.scanned))
  let cursor = options.cursor ?? { phase: 'ended' }

  if (cursor.phase === 'ended') {
    let after = cursor.after
    for (;;) {
      if (budget() <= 0) return { ...result, cursor: { phase: 'ended', after } }
      const page = await store.listEnded(
        lastDay,
        after === undefined ? { limit: budget() } : { after, limit: budget() },
      )
      await mapLimit(page.entries, concurrency, async (entry) => {
        await consider(entry.workflowId, entry)
        onProgress?.({ scanned: result.scanned, workflows: result.workflows })
      })
      const last = page.entries.at(-1)
      if (last) after = last.key
      if (page.next === undefined) break
      after = page.next
    }
    if (!full) return result
    cursor = { phase: 'full' }
  }

  // The status index of each status wanted, for workflows without an ended entry.
  const order = ENDED_STATUSES.filter((status) => statuses.has(status))
  let at = cursor.status === undefined ? 0 : order.indexOf(cursor.status)
  let after = cursor.after
  for (; at >= 0 && at < order.length; at++, after = undefined) {
    const status = order[at] as StoredStatus
    const prefix = storeKeys.indexPrefix(status)
    for (;;) {
      if (budget() <= 0) return { ...result, cursor: { phase: 'full', status, after } }
      const page = await store.storage.list(
        prefix,
        after === undefined ? { limit: budget() } : { after, limit: budget() },
      )
      await mapLimit(page.keys, concurrency, async (key) => {
        await consider(key.slice(prefix.length), undefined)
        onProgress?.({ scanned: result.scanned, workflows: result.workflows })
      })
      const next = nextPageAfter(prefix, after, page)
      if (next === undefined) break
      after = next
    }
  }
  return result
}

/** The keys a deletion of this workflow would remove (a dry run's count, as `deleteWorkflow` counts). */
async function keysOf(store: WorkflowStore, record: WorkflowRecord): Promise<number> {
  const own = await store.listAllKeys(storeKeys.workflowPrefix(record.workflowId))
  return own.length + (indexStatus(record) === undefined ? 0 : 1) + (endedKey(record) ? 1 : 0)
}

/**
 * Drops an entry its record no longer backs. Read again after: a workflow that ended again the
 * same day between the read and the delete wrote this very entry, which must stay.
 */
async function dropStaleEntry(store: WorkflowStore, entry: EndedEntry): Promise<void> {
  await store.deleteEndedEntry(entry)
  const again = await store.readWorkflow(entry.workflowId).catch(() => undefined)
  if (again && endedKey(again.record) === entry.key) await store.addEndedEntry(again.record)
}

/**
 * Claims the workers' retention pass for this interval: by compare-and-swap on the `retention`
 * record, so that of many workers polling at once exactly one wins, and none again before
 * `intervalMs` has passed since the last pass started. Resolves to whether this runner won.
 */
export async function claimRetentionPass(
  store: WorkflowStore,
  runner: RunnerInfo,
  now: number,
  intervalMs: number,
): Promise<boolean> {
  const key = storeKeys.retention
  const found = await store.storage.get(key)
  let previous: RetentionRecord | undefined
  if (found) {
    try {
      previous = JSON.parse(new TextDecoder().decode(found.data)) as RetentionRecord
    } catch {
      previous = undefined // unreadable: overwritten by the winner of the swap below
    }
    if (previous && typeof previous.startedAt === 'number' && now - previous.startedAt < intervalMs)
      return false
  }
  const record: RetentionRecord = { v: 1, startedAt: now, by: runner }
  try {
    await store.storage.put(
      key,
      utf8(JSON.stringify(record)),
      found ? { ifVersion: found.version } : { ifAbsent: true },
    )
    return true
  } catch (error) {
    if (error instanceof ConditionFailedError) return false
    throw error
  }
}
