// `listAll` and `listWorkflows`: workflows by status from the status index. Only the ids whose
// status the index cannot settle alone are read: RUNNING/PENDING markers (RESUMABLE is derived
// from the record; a marker may have no record) and ids with two markers (a crash mid-change).

import {
  InvalidOptionsError,
  type Json,
  MAX_WAKE_TIME,
  type Runtime,
  type StoredStatus,
  type Versioned,
  type WorkflowRecord,
  type WorkflowStatus,
} from '@wf/core'
import type { WorkflowStore } from '@wf/core/internal'
import { mapLimit } from '@wf/core/internal'
import { type IndexEntry, readAndRepair, scanIndex, statusesOfMarker } from './index-scan.js'
import { parseStatusFilter } from './status-filter.js'
import type {
  ListWorkflowsOptions,
  StatusFilter,
  UnreadableWorkflow,
  WorkflowList,
  WorkflowListEntry,
  WorkflowPage,
  WorkflowSummary,
} from './types.js'
import { unreadable, withErrors } from './unreadable.js'

const READ_CONCURRENCY = 16

/** Whether any status the entry's markers (a start batch counts as RUNNING) can stand for passes the filter. */
function mayMatch(entry: IndexEntry, statuses: Set<WorkflowStatus> | undefined): boolean {
  if (!statuses) return true
  const markers: StoredStatus[] = [...entry.markers]
  if (entry.batched) markers.push('RUNNING')
  if (entry.parked) markers.push('PENDING')
  return markers.some((m) => statusesOfMarker(m).some((s) => statuses.has(s)))
}

interface Settled {
  status: WorkflowStatus
  found?: Versioned<WorkflowRecord>
}

/**
 * `settle`, reporting a record that cannot be read to `errors` instead of failing the listing: one
 * corrupt record must not hide every other workflow.
 */
async function settleOrReport(
  runtime: Runtime,
  store: WorkflowStore,
  entry: IndexEntry,
  needRecord: boolean,
  errors: UnreadableWorkflow[],
): Promise<Settled | undefined> {
  try {
    return await settle(runtime, store, entry, needRecord)
  } catch (error) {
    errors.push(unreadable(error, entry.workflowId))
    return undefined
  }
}

/** The status of one index entry, reading the record only when the index cannot say (or when `needRecord`). */
async function settle(
  runtime: Runtime,
  store: WorkflowStore,
  entry: IndexEntry,
  needRecord: boolean,
): Promise<Settled | undefined> {
  const [only] = entry.markers
  if (entry.markers.length > 1) {
    const found = await readAndRepair(runtime, store, entry.workflowId)
    return found && { status: runtime.deriveStatus(found.record), found }
  }
  // In a start batch, whatever its marker says: a final marker is written before the final record.
  // Parked: the due index says when, the record whether it still is.
  if (entry.batched || entry.parked || only === 'RUNNING' || only === 'PENDING' || needRecord) {
    const found = await store.readWorkflow(entry.workflowId)
    return found && { status: runtime.deriveStatus(found.record), found }
  }
  return only && { status: only }
}

/** `listAll`: every workflow passing the filter, by workflow id. */
export async function listAll(runtime: Runtime, filter?: StatusFilter): Promise<WorkflowList> {
  const statuses = parseStatusFilter(filter)
  const store = await runtime.store()
  const entries: IndexEntry[] = []
  const errors: UnreadableWorkflow[] = []
  // listAll reads the whole index anyway: large pages (the folder reads its whole folder per page;
  // S3 caps a page at 1,000 keys).
  for await (const entry of scanIndex(store, undefined, 10_000, errors))
    if (mayMatch(entry, statuses)) entries.push(entry)
  const settled = await mapLimit(entries, READ_CONCURRENCY, (e) =>
    settleOrReport(runtime, store, e, false, errors),
  )
  const out: WorkflowListEntry[] = []
  for (let i = 0; i < entries.length; i++) {
    const s = settled[i]
    if (s && (!statuses || statuses.has(s.status))) {
      const entry: WorkflowListEntry = { workflowId: (entries[i] as IndexEntry).workflowId, status: s.status }
      const parked = s.status === 'PENDING' ? s.found?.record : undefined
      if (typeof parked?.parkedUntil === 'number' && parked.parkedUntil < MAX_WAKE_TIME)
        entry.waitingUntil = parked.parkedUntil
      if (parked?.parkedEvents?.length) entry.waitingForEvents = [...parked.parkedEvents]
      out.push(entry)
    }
  }
  return withErrors(out, errors)
}

function toMillis(value: Date | number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const ms = value instanceof Date ? value.getTime() : value
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new InvalidOptionsError(`${name} must be a Date or milliseconds since the epoch`)
  }
  return ms
}

function encodeCursor(afterId: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: afterId })).toString('base64url')
}

function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined
  try {
    const parsed = JSON.parse(Buffer.from(String(cursor), 'base64url').toString('utf8')) as {
      v?: unknown
      after?: unknown
    }
    if (parsed.v === 1 && typeof parsed.after === 'string') return parsed.after
  } catch {
    // reported below
  }
  throw new InvalidOptionsError('cursor is not one returned by listWorkflows')
}

function jsonEqual(a: Json | undefined, b: Json): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  const ra = a as { [key: string]: Json }
  const rb = b as { [key: string]: Json }
  return kb.every((k) => Object.hasOwn(ra, k) && jsonEqual(ra[k], rb[k] as Json))
}

interface PageQuery {
  statuses: Set<WorkflowStatus> | undefined
  after: number | undefined
  before: number | undefined
  metadata: [string, Json][]
  limit: number
  afterId: string | undefined
}

function parseListOptions(options: ListWorkflowsOptions): PageQuery {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('listWorkflows options must be an object')
  }
  const limit = options.limit ?? 100
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new InvalidOptionsError(`limit must be an integer from 1 to 1000, got ${String(limit)}`)
  }
  const metadata = options.metadata ?? {}
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new InvalidOptionsError('metadata must be a plain object of { key: JSON value }')
  }
  return {
    statuses: parseStatusFilter(options.status),
    after: toMillis(options.createdAfter, 'createdAfter'),
    before: toMillis(options.createdBefore, 'createdBefore'),
    metadata: Object.entries(metadata),
    limit,
    afterId: decodeCursor(options.cursor),
  }
}

function summarize(q: PageQuery, s: Settled | undefined): WorkflowSummary | undefined {
  const record = s?.found?.record
  if (!s || !record) return undefined
  if (q.statuses && !q.statuses.has(s.status)) return undefined
  if (q.after !== undefined && record.createdAt < q.after) return undefined
  if (q.before !== undefined && record.createdAt >= q.before) return undefined
  if (!q.metadata.every(([k, v]) => jsonEqual(record.metadata?.[k], v))) return undefined
  return {
    workflowId: record.workflowId,
    status: s.status,
    createdAt: record.createdAt,
    metadata: record.metadata,
  }
}

/** `listWorkflows`: one page of workflows passing the filters, by workflow id. */
export async function listWorkflows(
  runtime: Runtime,
  options: ListWorkflowsOptions = {},
): Promise<WorkflowPage> {
  const q = parseListOptions(options)
  const store = await runtime.store()
  const workflows: WorkflowSummary[] = []
  const errors: UnreadableWorkflow[] = []
  const scan = scanIndex(store, q.afterId, undefined, errors)
  // Records are read in small batches: enough in flight to be fast, few wasted past the page's end.
  const batchSize = Math.min(q.limit, 64)
  let batch: IndexEntry[] = []
  let scanDone = false
  while (workflows.length < q.limit) {
    batch = []
    while (batch.length < batchSize) {
      const next = await scan.next()
      if (next.done) {
        scanDone = true
        break
      }
      if (mayMatch(next.value, q.statuses)) batch.push(next.value)
    }
    const settled = await mapLimit(batch, READ_CONCURRENCY, (e) =>
      settleOrReport(runtime, store, e, true, errors),
    )
    for (let i = 0; i < batch.length; i++) {
      const summary = summarize(q, settled[i])
      if (!summary) continue
      workflows.push(summary)
      if (workflows.length === q.limit) {
        const more = i < batch.length - 1 || !scanDone
        await scan.return(undefined)
        return more ? { workflows, cursor: encodeCursor(summary.workflowId), errors } : { workflows, errors }
      }
    }
    if (scanDone) break
  }
  return { workflows, errors }
}
