// `checkStore` (`checkStorage` in the API, what `wf doctor` runs): finds what listings and workers cannot see past, namely
// records that cannot be read, keys of workflows without a record (orphans), and index markers
// that disagree with their record; with `fix`, repairs the index and removes old orphans. It reads
// the whole store (every key under workflows/, index/ and starts/), so it is a tool, not a poll.

import {
  CorruptRecordError,
  InvalidOptionsError,
  type Runtime,
  type StoredStatus,
  type WorkflowStatus,
} from '@wf/core'
import {
  checkCreatedIndex,
  endedKey,
  mapLimit,
  type SurveyedBatch,
  storeKeys,
  surveyedKeys,
  surveyStore,
  type WorkflowStore,
} from '@wf/core/internal'
import { readAndRepair } from './index-scan.js'
import type { UnreadableWorkflow } from './types.js'
import { unreadable } from './unreadable.js'

const READ_CONCURRENCY = 16
/** Orphans must be this many lease periods old (and their runner gone) before `fix` removes them. */
export const ORPHAN_AGE_LEASES = 10

/** Options of `checkStorage()`. */
export interface CheckStorageOptions {
  /** Repair stale index markers and remove old orphans. Default `false`: only report. */
  fix?: boolean
  /** The current time, ms since the epoch (tests). Default `Date.now()`. */
  now?: number
}

/** Keys of a workflow id that has no workflow record. */
export interface OrphanedWorkflow {
  workflowId: string
  /** Its keys: under `workflows/<id>/`, index markers, start batches that list it. */
  keys: string[]
  /** The latest time its keys record (step end times, graph creation), when any does. */
  lastWrittenAt?: number
  /** Whether `fix` removes (or removed) it; when not, `reason` says why it is kept. */
  removable: boolean
  reason?: string
  /** With `fix`: it was removed. */
  removed?: boolean
}

/** A workflow whose index markers disagree with its (readable) record. */
export interface StaleIndexEntry {
  workflowId: string
  status: WorkflowStatus
  /** The statuses it has markers under. */
  markers: StoredStatus[]
  /** The one marker its record calls for. */
  expected: StoredStatus
  /** With `fix`: the index was repaired (not while a live runner drives it: that runner moves it). */
  repaired?: boolean
}

/** What `checkStorage()` found (and, with `fix`, did). */
export interface StorageReport {
  /** How many workflow ids were looked at. */
  checked: number
  /** Records (and start batches) that cannot be read: `delete(id, { force: true })` removes a workflow's. */
  corrupt: UnreadableWorkflow[]
  orphans: OrphanedWorkflow[]
  staleIndex: StaleIndexEntry[]
  /**
   * Workflows whose deletion was cut short (a crash after their record was marked `deleting`):
   * gone for every reader, some keys left. `fix` finishes them.
   */
  unfinishedDeletions: string[]
  /**
   * Ended workflows without their ended index entry (a crash right after the end, or ended
   * before wf indexed ended workflows by day): retention passes miss them. `fix` adds them.
   */
  unindexedEnded: string[]
  /**
   * Workflows missing from the creation-time index (a crash between a workflow's first record and
   * its entry, or a store from before the index): the dashboard's runs list does not show them.
   * `fix` adds them.
   */
  unindexedCreated: string[]
  /**
   * Creation-time entries no record backs (its workflow is gone, or was created at another time),
   * older than an hour: `fix` deletes them.
   */
  staleCreated: string[]
  /** Whether `fix` was asked for. */
  fixed: boolean
}

const FINAL: ReadonlySet<StoredStatus> = new Set(['SUCCESSFUL', 'FAILED', 'CANCELED'])

/**
 * `checkStorage` on a runtime's store (see `WorkflowClient.checkStorage`): reports, and with
 * `fix` repairs, never touching a readable workflow nor what may belong to a submission in flight.
 */
export async function checkStore(
  runtime: Runtime,
  options: CheckStorageOptions = {},
): Promise<StorageReport> {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionsError('checkStorage options must be an object')
  const fix = options.fix ?? false
  if (typeof fix !== 'boolean') throw new InvalidOptionsError('fix must be a boolean')
  const now = options.now ?? Date.now()
  if (typeof now !== 'number' || !Number.isFinite(now))
    throw new InvalidOptionsError('now must be milliseconds since the epoch')
  const store = await runtime.store()
  const report: StorageReport = {
    checked: 0,
    corrupt: [],
    orphans: [],
    staleIndex: [],
    unfinishedDeletions: [],
    unindexedEnded: [],
    unindexedCreated: [],
    staleCreated: [],
    fixed: fix,
  }

  const survey = await surveyStore(store, (error) => report.corrupt.push(unreadable(error)))
  const sorted = survey.workflowIds
  report.checked = sorted.length
  const endedEntries = new Set(await store.listAllKeys(storeKeys.endedPrefix))

  const staleMs = ORPHAN_AGE_LEASES * runtime.leaseTtlMs
  const runnerGone = new Map<string, Promise<boolean>>()
  /** Whether a runner is gone for good: no runner record, or one expired more than ten leases ago. */
  const gone = (runnerId: string): Promise<boolean> => {
    let known = runnerGone.get(runnerId)
    if (!known) {
      known = store.readRunner(runnerId).then((r) => r === undefined || r.leaseExpiresAt < now - staleMs)
      runnerGone.set(runnerId, known)
    }
    return known
  }

  await mapLimit(sorted, READ_CONCURRENCY, async (workflowId) => {
    const marked = survey.markers.get(workflowId) ?? []
    let found: Awaited<ReturnType<WorkflowStore['readWorkflow']>>
    try {
      found = await store.readStoredWorkflow(workflowId)
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error
      report.corrupt.push(unreadable(error, workflowId))
      return
    }
    if (found?.record.deleting !== undefined) {
      report.unfinishedDeletions.push(workflowId)
      if (fix) await store.deleteWorkflow(workflowId, found)
      return
    }
    if (found) {
      const ended = endedKey(found.record)
      if (ended !== undefined && !endedEntries.has(ended)) {
        report.unindexedEnded.push(workflowId)
        if (fix) await store.addEndedEntry(found.record)
      }
      const expected = store.expectedMarker(found.record)
      // Listed by its start batch instead of a marker: nothing to compare.
      if (expected === undefined) return
      if (marked.length === 1 && marked[0] === expected) return
      const entry: StaleIndexEntry = {
        workflowId,
        status: runtime.deriveStatus(found.record),
        markers: marked,
        expected,
      }
      if (fix) {
        // As listings repair: a record a live runner drives is left to that runner.
        await readAndRepair(runtime, store, workflowId)
        entry.repaired = entry.status !== 'RUNNING'
      }
      report.staleIndex.push(entry)
      return
    }
    const listing = survey.batches.filter((b) => b.workflowIds.includes(workflowId))
    const keys = surveyedKeys(survey, workflowId)
    const orphan: OrphanedWorkflow = { workflowId, keys, removable: false }
    const lastWrittenAt = await store.lastWrittenAt(workflowId, survey.stored.get(workflowId) ?? [])
    if (lastWrittenAt !== undefined) orphan.lastWrittenAt = lastWrittenAt
    orphan.reason = await keepReason(orphan, marked, listing, now, staleMs, gone)
    orphan.removable = orphan.reason === undefined
    if (orphan.removable) delete orphan.reason
    if (fix && orphan.removable) {
      await store.removeOrphanKeys(workflowId, keys)
      orphan.removed = true
    }
    report.orphans.push(orphan)
  })
  // After the workflows above: a deletion finished here leaves its entry to be found stale.
  const created = await checkCreatedIndex(store, { fix, now, indexed: sorted })
  report.unindexedCreated = created.missing.map((m) => m.workflowId).sort()
  report.staleCreated = created.stale
  const byId = <T extends { workflowId?: string; key?: string }>(a: T, b: T) =>
    (a.workflowId ?? a.key ?? '') < (b.workflowId ?? b.key ?? '') ? -1 : 1
  report.corrupt.sort(byId)
  report.orphans.sort(byId)
  report.staleIndex.sort(byId)
  report.unfinishedDeletions.sort()
  report.unindexedEnded.sort()
  return report
}

/**
 * Why an orphan must stay, or `undefined` when `fix` may remove it. Storage keeps no modification
 * times, so age comes from inside the keys: step records' end times, graph keys' creation times,
 * and the start batches' `createdAt`. A submission writes its batch, marker and large graph just
 * before its record, and steps are committed only under a record; so keys that old, whose runner
 * (named by the batch that lists them) is gone for good, belong to nobody: every status change
 * of a workflow reads and replaces its record, and there is none. A final marker (SUCCESSFUL,
 * FAILED, CANCELED) alone is stale at once: only a record that existed is ever marked so. Active
 * markers alone carry no time: they are kept (`wf delete ID --force` removes them on purpose).
 */
async function keepReason(
  orphan: OrphanedWorkflow,
  marked: StoredStatus[],
  listing: SurveyedBatch[],
  now: number,
  staleMs: number,
  gone: (runnerId: string) => Promise<boolean>,
): Promise<string | undefined> {
  for (const batch of listing) {
    if (!(await gone(batch.runnerId)))
      return `its start batch's runner ${batch.runnerId} may still be submitting it`
  }
  const onlyFinalMarkers =
    listing.length === 0 &&
    marked.length > 0 &&
    marked.length === orphan.keys.length &&
    marked.every((s) => FINAL.has(s))
  if (onlyFinalMarkers) return undefined
  const times = [orphan.lastWrittenAt, ...listing.map((b) => b.createdAt)].filter(
    (t): t is number => t !== undefined,
  )
  if (times.length === 0)
    return 'nothing in its keys tells their age (a submission may be in flight): `wf delete ID --force` removes them'
  const latest = Math.max(...times)
  if (now - latest <= staleMs)
    return `written less than ${ORPHAN_AGE_LEASES} lease periods ago (a submission may be in flight)`
  return undefined
}
