// The runs page's listing (`GET /api/workflows`): newest first from core's creation-time index
// (`created/`, a page of keys at a time, a time range as a key range), never by reading every
// record. Three things are kept between requests:
// - the counts per status, from a scan of the status index (`listAll`): the one part that grows
//   with the store, so it is cached for COUNTS_FRESH_MS and refreshed in the background after that
//   (up to COUNTS_MAX_AGE_MS, past which a request waits for a new scan), and dropped whenever this
//   server changes a workflow, so that an action shows in the next counts;
// - the rows of workflows that can no longer change (SUCCESSFUL, CANCELED: a FAILED one may be
//   resumed), by creation-time key, so a page already seen costs a listing and no record read;
// - the workflows the creation-time index misses (created by a version of wf without it, or left
//   out by a crash), found by `checkCreatedIndex` at the first scan and every CHECK_EVERY_MS after:
//   merged into the listing by their creation time, and added to the index unless read-only.

import type { WorkflowClient, WorkflowMetadata } from '@wf/client'
import {
  CorruptRecordError,
  compareKeys,
  type Json,
  WORKFLOW_STATUSES,
  WorkflowNotFoundError,
  type WorkflowStatus,
} from '@wf/core'
import {
  type CreatedEntry,
  checkCreatedIndex,
  createdKey,
  listCreated,
  mapLimit,
  parseCreatedKey,
} from '@wf/core/internal'

/** One row of `GET /api/workflows`. */
export interface WorkflowRow {
  workflowId: string
  status: WorkflowStatus
  createdAt: number
  /** When it ended (SUCCESSFUL, FAILED, CANCELED). */
  endedAt?: number
  metadata: WorkflowMetadata['userMetadata']
  /** A parked workflow's wait: until when, for which events, in which steps (as `getMetadata`). */
  waitingFor?: WorkflowMetadata['waitingFor']
}

const READ_CONCURRENCY = 16
/** Counts younger than this are served as they are (or younger than 4 scans took: see `#counts`). */
const COUNTS_FRESH_MS = 2_000
/** A background scan waits this many times as long as the last one took, so it never takes over a core. */
const SCAN_SPACING = 4
/** Counts older than this are not served: the request waits for a new scan. */
const COUNTS_MAX_AGE_MS = 15_000
/** How often the creation-time index is checked against the status index (a whole listing of both). */
const CHECK_EVERY_MS = 10 * 60_000
/** Rows kept (of workflows that cannot change any more). */
const MAX_CACHED_ROWS = 100_000
/**
 * Keys listed at once when filters may drop many: a listing costs about the same for 1,000 keys
 * as for 100 (S3 pages are 1,000 keys; the folder storage reads the whole folder each time).
 */
const FILTERED_BATCH = 1000

const FINAL: ReadonlySet<WorkflowStatus> = new Set(['SUCCESSFUL', 'CANCELED'])

export interface RunsQuery {
  statuses?: Set<WorkflowStatus>
  prefix: string
  limit: number
  /** The creation-time key of the last workflow examined by the previous page. */
  after?: string
  createdAfter?: number
  createdBefore?: number
  metadata: [string, Json][]
}

export interface UnreadableRow {
  workflowId?: string
  key?: string
  code: string
  message: string
}

export interface RunsPage {
  counts: Record<string, number>
  total: number
  /** When the counts were scanned (ms since the epoch). */
  countsAt: number
  workflows: WorkflowRow[]
  cursor?: string
  errors: UnreadableRow[]
}

interface Scan {
  at: number
  /** How long the scan took (ms). */
  took: number
  counts: Record<string, number>
  total: number
  errors: UnreadableRow[]
  /** Each listed workflow's status as the scan read it: a hint to skip final rows a filter drops. */
  statusById: Map<string, WorkflowStatus>
}

interface Candidate {
  key: string
  workflowId: string
  createdAt: number
}

function jsonEqual(a: Json | undefined, b: Json): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  const ra = a as { [key: string]: Json }
  const rb = b as { [key: string]: Json }
  return ka.every((k) => Object.hasOwn(rb, k) && jsonEqual(ra[k], rb[k] as Json))
}

export class Runs {
  readonly #client: WorkflowClient
  readonly #readOnly: boolean
  #scan: Scan | undefined
  #scanning: Promise<Scan> | undefined
  /** Bumped by `invalidate`: a scan started before it must not be kept as current. */
  #epoch = 0
  readonly #rows = new Map<string, WorkflowRow>()
  /** Workflows without a creation-time entry, newest first, as the last check found them. */
  #unindexed: Candidate[] = []
  #checkedAt: number | undefined
  #checking: Promise<void> | undefined

  constructor(client: WorkflowClient, readOnly: boolean) {
    this.#client = client
    this.#readOnly = readOnly
  }

  /** This server changed a workflow: the next listing scans the counts again. */
  invalidate(): void {
    this.#epoch++
    this.#scan = undefined
  }

  /** The counts: cached, refreshed in the background, or scanned now when none are recent enough. */
  async #counts(): Promise<Scan> {
    const now = Date.now()
    const scan = this.#scan
    const fresh = Math.min(COUNTS_MAX_AGE_MS, Math.max(COUNTS_FRESH_MS, SCAN_SPACING * (scan?.took ?? 0)))
    if (scan && now - scan.at < fresh) return scan
    const refreshing = this.#scanning ?? this.#startScan()
    if (scan && now - scan.at < COUNTS_MAX_AGE_MS) {
      refreshing.catch(() => {}) // its failure shows in the request that waits for it
      return scan
    }
    return refreshing
  }

  #startScan(): Promise<Scan> {
    const epoch = this.#epoch
    const scanning = (async () => {
      const at = Date.now()
      const listing = this.#client.listAll()
      // The check takes the ids from this same scan of the status index (one scan, not two).
      const ids = listing.then((all) => [
        ...all.map((w) => w.workflowId),
        ...all.errors.flatMap((e) => (e.workflowId === undefined ? [] : [e.workflowId])),
      ])
      ids.catch(() => {}) // a failed listing fails this scan below, not the process (when no check runs)
      const [all] = await Promise.all([listing, this.#check(at, ids)])
      const counts: Record<string, number> = Object.fromEntries(WORKFLOW_STATUSES.map((s) => [s, 0]))
      const statusById = new Map<string, WorkflowStatus>()
      for (const w of all) {
        counts[w.status] = (counts[w.status] ?? 0) + 1
        statusById.set(w.workflowId, w.status)
      }
      const scan: Scan = {
        at,
        took: Date.now() - at,
        counts,
        total: all.length,
        errors: [...all.errors],
        statusById,
      }
      if (epoch === this.#epoch) this.#scan = scan
      return scan
    })().finally(() => {
      if (this.#scanning === scanning) this.#scanning = undefined
    })
    this.#scanning = scanning
    return scanning
  }

  /** Checks the creation-time index when it was not checked for a while (see the top of the file). */
  #check(now: number, indexed: Promise<string[]>): Promise<void> {
    if (this.#checking) return this.#checking
    if (this.#checkedAt !== undefined && now - this.#checkedAt < CHECK_EVERY_MS) return Promise.resolve()
    const checking = (async () => {
      const store = await this.#client.runtime.store()
      const report = await checkCreatedIndex(store, { fix: !this.#readOnly, indexed })
      // Once fixed, the index lists them itself.
      this.#unindexed = this.#readOnly
        ? report.missing.map(({ workflowId, createdAt }) => ({
            key: createdKey(createdAt, workflowId),
            workflowId,
            createdAt,
          }))
        : []
      this.#unindexed.sort((a, b) => compareKeys(a.key, b.key))
      this.#checkedAt = now
    })().finally(() => {
      this.#checking = undefined
    })
    this.#checking = checking
    return checking
  }

  /** The row of one listed workflow, from the cache when it cannot have changed; `undefined` when gone or stale. */
  async #row(candidate: Candidate, errors: UnreadableRow[]): Promise<WorkflowRow | undefined> {
    const cached = this.#rows.get(candidate.key)
    if (cached) return cached
    try {
      const meta = await this.#client.getMetadata(candidate.workflowId)
      // An entry of another creation time: a submission of this id that lost, or one deleted since.
      if (meta.stats.startTime !== candidate.createdAt) return undefined
      const row: WorkflowRow = {
        workflowId: candidate.workflowId,
        status: meta.status,
        createdAt: meta.stats.startTime,
        metadata: meta.userMetadata,
      }
      if (meta.stats.endTime !== undefined) row.endedAt = meta.stats.endTime
      if (meta.waitingFor) row.waitingFor = meta.waitingFor
      if (FINAL.has(row.status)) {
        if (this.#rows.size >= MAX_CACHED_ROWS) this.#rows.delete(this.#rows.keys().next().value as string)
        this.#rows.set(candidate.key, row)
      }
      return row
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined // deleted, or never created
      if (error instanceof CorruptRecordError) {
        errors.push({
          workflowId: candidate.workflowId,
          key: error.key,
          code: error.code,
          message: error.message,
        })
        return undefined
      }
      throw error
    }
  }

  /** Forgets a cached row (a workflow this server deleted). */
  forget(workflowId: string): void {
    for (const [key, row] of this.#rows) if (row.workflowId === workflowId) this.#rows.delete(key)
  }

  async page(query: RunsQuery): Promise<RunsPage> {
    const { statuses, prefix, limit, createdAfter, createdBefore, metadata } = query
    const scan = await this.#counts()
    const store = await this.#client.runtime.store()
    const errors = [...scan.errors]
    const inRange = (c: Candidate) =>
      (createdAfter === undefined || c.createdAt >= createdAfter) &&
      (createdBefore === undefined || c.createdAt < createdBefore)
    /** Whether a candidate can be dropped without reading its record. */
    const skip = (c: Candidate): boolean => {
      if (!c.workflowId.startsWith(prefix)) return true
      if (!statuses) return false
      const known = this.#rows.get(c.key)?.status ?? scan.statusById.get(c.workflowId)
      return known !== undefined && FINAL.has(known) && !statuses.has(known)
    }
    const passes = (row: WorkflowRow): boolean =>
      (!statuses || statuses.has(row.status)) && metadata.every(([k, v]) => jsonEqual(row.metadata[k], v))
    const filtered = statuses !== undefined || prefix !== '' || metadata.length > 0

    let unindexed = this.#unindexed.filter(
      (c) => (query.after === undefined || compareKeys(c.key, query.after) > 0) && inRange(c),
    )
    const workflows: WorkflowRow[] = []
    let after = query.after
    let lastExamined: string | undefined
    let more = true
    while (workflows.length < limit && more) {
      const want = filtered ? FILTERED_BATCH : limit - workflows.length
      const listed = await listCreated(store, {
        limit: want,
        ...(after === undefined ? {} : { after }),
        ...(createdAfter === undefined ? {} : { createdAfter }),
        ...(createdBefore === undefined ? {} : { createdBefore }),
      })
      const entries: Candidate[] = listed.entries
      const last: CreatedEntry | undefined = listed.entries.at(-1)
      if (listed.next !== undefined) after = listed.next
      else if (last) after = last.key
      const indexDone = listed.next === undefined
      // The unindexed ones that sort within what was listed (all that are left once it is done).
      const bound = indexDone ? undefined : after
      const merged = unindexed.filter((c) => bound === undefined || compareKeys(c.key, bound) <= 0)
      unindexed = unindexed.slice(merged.length)
      const candidates = [...entries, ...merged].sort((a, b) => compareKeys(a.key, b.key))
      const kept = candidates.filter((c) => !skip(c))
      const rows = await mapLimit(kept, READ_CONCURRENCY, (c) => this.#row(c, errors))
      const rowOf = new Map(kept.map((c, i) => [c.key, rows[i]]))
      let stopped = false
      for (const c of candidates) {
        if (workflows.length === limit) {
          stopped = true
          break
        }
        lastExamined = c.key
        const row = rowOf.get(c.key)
        if (row && passes(row)) workflows.push(row)
      }
      if (stopped) {
        more = true
        break
      }
      more = !indexDone || unindexed.length > 0
      if (candidates.length === 0 && !indexDone) continue
    }
    const page: RunsPage = {
      counts: scan.counts,
      total: scan.total,
      countsAt: scan.at,
      workflows,
      errors,
    }
    // The cursor is the last key examined: the next page goes on after it.
    const cursorKey = more ? (lastExamined ?? after) : undefined
    if (cursorKey !== undefined) page.cursor = Buffer.from(cursorKey, 'utf8').toString('base64url')
    return page
  }
}

/** The creation-time key a cursor carries; `undefined` when it is not one `GET /api/workflows` returned. */
export function keyOfCursor(raw: string): string | undefined {
  const key = Buffer.from(raw, 'base64url').toString('utf8')
  if (Buffer.from(key, 'utf8').toString('base64url') !== raw) return undefined
  // A page's cursor may be a listing's `next` (a created/ key too) or the start of a range.
  return key.startsWith('created/') && (parseCreatedKey(key) !== undefined || /^created\/\d{13}\.$/.test(key))
    ? key
    : undefined
}
