// The creation-time index: `created/<inverted creation ms, 13 digits>-<id>`, one empty key per
// workflow, so that an ascending listing (S3 lists ascending only) gives the newest workflow first,
// a page at a time, and a time range is a key range. Written by `WorkflowStore.createWorkflow` at
// the same time as the workflow's first record (never one more round trip before a start), deleted
// with the workflow (`deleteWorkflow`, so by retention too).
//
// One flat folder of keys rather than `created/<ms>/<id>`: the folder storage makes a folder per
// key segment, and a folder per millisecond would cost a directory read per row of a page.
//
// Repaired like the status index: an entry may lack its record (a crash between the two writes, a
// lost create-if-absent race, a deletion that stopped before it), which readers skip, or a record
// may lack its entry (a crash the other way, or created by a version of wf without this index).
// `checkCreatedIndex` finds both against the status index and, with `fix`, adds and drops entries:
// readers that must list every workflow (the dashboard) merge in what it reports missing meanwhile.

import { InvalidOptionsError } from '../errors.js'
import type { WorkflowRecord } from '../model/records.js'
import { compareKeys, nextPageAfter } from '../storage/storage.js'
import { mapLimit } from '../util/map-limit.js'
import {
  CREATED_PREFIX,
  type CreatedEntry,
  createdKeyOf,
  invertedTime,
  parseCreatedKey,
} from './created-keys.js'
import { scanStatusIndex } from './status-index.js'
import type { WorkflowStore } from './store.js'

export {
  CREATED_PREFIX,
  type CreatedEntry,
  createdKey,
  createdKeyOf,
  parseCreatedKey,
} from './created-keys.js'

export interface ListCreatedOptions {
  /** Go on after this key (a page's `next`, or the key of the last entry used). */
  after?: string
  /** At most this many keys listed (entries of another shape are skipped). Default 256. */
  limit?: number
  /** Only workflows created at or after this time (ms since the epoch). */
  createdAfter?: number
  /** Only workflows created before this time (ms since the epoch). */
  createdBefore?: number
}

/** The storage key a newest-first listing of workflows created before `before` starts after. */
export function createdStartAfter(before: number): string {
  // Keys of `before` itself sort below `<digits>.` ('-' < '.'), keys of earlier times above it.
  return `${CREATED_PREFIX}${invertedTime(before)}.`
}

function validateTime(value: number | undefined, name: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value)))
    throw new InvalidOptionsError(`${name} must be milliseconds since the epoch, got ${String(value)}`)
}

/**
 * One page of the creation-time index, newest first: at most `limit` keys listed (one listing),
 * `next` set when more may follow. Entries may be stale (the reader checks the record: see
 * `createdEntryHolds`); workflows without an entry are not listed (`checkCreatedIndex`).
 */
export async function listCreated(
  store: WorkflowStore,
  options: ListCreatedOptions = {},
): Promise<{ entries: CreatedEntry[]; next?: string }> {
  const { limit = 256, createdAfter, createdBefore } = options
  if (!Number.isInteger(limit) || limit < 1)
    throw new InvalidOptionsError(`limit must be a positive integer, got ${String(limit)}`)
  validateTime(createdAfter, 'createdAfter')
  validateTime(createdBefore, 'createdBefore')
  let after = options.after
  if (createdBefore !== undefined) {
    const start = createdStartAfter(createdBefore)
    if (after === undefined || compareKeys(after, start) < 0) after = start
  }
  const page = await store.storage.list(CREATED_PREFIX, after === undefined ? { limit } : { after, limit })
  const entries: CreatedEntry[] = []
  for (const key of page.keys) {
    const entry = parseCreatedKey(key)
    if (entry === undefined) continue
    // Newest first: past the oldest time wanted, no later key is wanted either.
    if (createdAfter !== undefined && entry.createdAt < createdAfter) return { entries }
    entries.push(entry)
  }
  const next = nextPageAfter(CREATED_PREFIX, after, page)
  return next === undefined ? { entries } : { entries, next }
}

/** Whether a record backs an entry (same id and creation time); a reader skips entries it does not. */
export function createdEntryHolds(entry: CreatedEntry, record: WorkflowRecord | undefined): boolean {
  return record !== undefined && createdKeyOf(record) === entry.key
}

export interface CheckCreatedOptions {
  /** Add the missing entries and drop the stale ones. Default `false`: only report. */
  fix?: boolean
  /** The current time (ms since the epoch; tests). Default `Date.now()`. */
  now?: number
  /** Entries without a record younger than this are left (a submission in flight). Default one hour. */
  graceMs?: number
  /**
   * The ids the status index lists, when the caller scans it anyway (the dashboard's counts): saves
   * a second scan, and the creation-time index is listed meanwhile. Default: scanned here.
   */
  indexed?: Iterable<string> | Promise<Iterable<string>>
}

export interface CreatedIndexReport {
  /** Workflows the status index lists whose record has no creation-time entry. */
  missing: { workflowId: string; createdAt: number }[]
  /** Entries no record backs (no record, or one created at another time), older than `graceMs`. */
  stale: string[]
  /** With `fix`: entries added and dropped. */
  added: number
  dropped: number
}

/**
 * Every key of the index, in pages of up to 10,000: S3 gives 1,000 a page whatever is asked, but
 * the folder storage reads the whole folder for each page, so 10,000 entries cost one read, not ten.
 */
async function allCreatedKeys(store: WorkflowStore): Promise<string[]> {
  const keys: string[] = []
  let after: string | undefined
  for (;;) {
    const page = await store.storage.list(
      CREATED_PREFIX,
      after === undefined ? { limit: 10_000 } : { after, limit: 10_000 },
    )
    keys.push(...page.keys)
    after = nextPageAfter(CREATED_PREFIX, after, page)
    if (after === undefined) return keys
  }
}

/**
 * Compares the creation-time index with the status index (both listed whole, at once: a tool and a
 * one-time repair, not a poll; `indexed` when the caller scanned the status index already). The
 * records of ids that have no entry are read, for their creation time. With `fix`, missing entries
 * are written and stale ones (older than `graceMs`) deleted; the entries of a record that cannot be
 * read (corrupt, or the storage failing) are left.
 */
export async function checkCreatedIndex(
  store: WorkflowStore,
  options: CheckCreatedOptions = {},
): Promise<CreatedIndexReport> {
  const { fix = false, now = Date.now(), graceMs = 60 * 60 * 1000 } = options
  const scanned = async (): Promise<Set<string>> => {
    const ids = new Set<string>()
    // An unreadable start batch is `wf doctor`'s to report: the other workflows are still checked.
    for await (const indexed of scanStatusIndex(store, undefined, 1000, () => {})) ids.add(indexed.workflowId)
    return ids
  }
  // Both listings at once: on S3 and on a folder each is a run of listing round trips.
  const [keys, indexedIds] = await Promise.all([
    allCreatedKeys(store),
    options.indexed === undefined ? scanned() : Promise.resolve(options.indexed).then((ids) => new Set(ids)),
  ])
  const entries = new Map<string, CreatedEntry[]>()
  for (const key of keys) {
    const entry = parseCreatedKey(key)
    if (entry === undefined) continue
    const list = entries.get(entry.workflowId)
    if (list) list.push(entry)
    else entries.set(entry.workflowId, [entry])
  }
  const report: CreatedIndexReport = { missing: [], stale: [], added: 0, dropped: 0 }
  const unlisted = [...indexedIds].filter((id) => !entries.has(id))
  // An id the status index lists may still have an entry of another time: read those records too.
  const suspects = [...entries.entries()].filter(([, list]) => list.length > 1).map(([id]) => id)
  // `null`: the record could not be read (corrupt, or the storage failed): its entries are left be.
  const read = async (workflowId: string): Promise<WorkflowRecord | undefined | null> => {
    try {
      return (await store.readWorkflow(workflowId))?.record
    } catch {
      return null
    }
  }
  await mapLimit(unlisted, 16, async (workflowId) => {
    const record = await read(workflowId)
    if (!record) return
    report.missing.push({ workflowId, createdAt: record.createdAt })
    if (fix) {
      await store.addCreatedEntry(record)
      report.added++
    }
  })
  const checkEntries = async (workflowId: string, list: CreatedEntry[]) => {
    const record = await read(workflowId)
    if (record === null) return
    for (const entry of list) {
      if (createdEntryHolds(entry, record) || now - entry.createdAt < graceMs) continue
      report.stale.push(entry.key)
      if (fix) {
        await store.storage.delete(entry.key)
        report.dropped++
      }
    }
  }
  // Single entries are checked against the record only when it is absent from the status index
  // (a deleted or never-created workflow): reading every record would make this a full survey.
  const toCheck = [
    ...suspects,
    ...[...entries.keys()].filter((id) => !indexedIds.has(id) && !suspects.includes(id)),
  ]
  await mapLimit(toCheck, 16, (id) => checkEntries(id, entries.get(id) ?? []))
  report.missing.sort((a, b) => b.createdAt - a.createdAt || compareKeys(a.workflowId, b.workflowId))
  report.stale.sort(compareKeys)
  return report
}
