// deleteWorkflows: bulk deletion of ended workflows (DBOS's garbageCollect, Restate's retention),
// what `wf gc` runs. Core does the work (`runRetentionPass`: the ended index, the mark-first
// deletion); here the user's options are checked and the result is shaped.

import { InvalidOptionsError, type Runtime, type StoredStatus, type WorkflowStatus } from '@wf/core'
import {
  countEnded,
  ENDED_STATUSES,
  type RetentionFilter,
  runRetentionPass,
  validateRetentionFilter,
} from '@wf/core/internal'
import { parseStatusFilter } from './status-filter.js'
import type { StatusFilter } from './types.js'

/** A JSON value, as workflow metadata holds. */
type MetadataValue = null | boolean | number | string | MetadataValue[] | { [key: string]: MetadataValue }

/** Options of `deleteWorkflows`. */
export interface DeleteWorkflowsOptions {
  /** Which ended statuses: `'SUCCESSFUL'`, `['SUCCESSFUL', 'CANCELED']`… (FAILED, CANCELED, SUCCESSFUL only). */
  status: StatusFilter
  /** Delete those that ended before this time (a `Date` or ms since the epoch). */
  endedBefore: Date | number
  /** Only those whose metadata has each of these fields with this value. */
  metadata?: { [key: string]: MetadataValue }
  /** Count what would go; delete nothing. */
  dryRun?: boolean
  /**
   * Also walk the status index, for workflows that ended before this version of wf indexed ended
   * workflows by day (it indexes those it meets, so one full pass is enough). Slower: it reads
   * the record of every ended workflow of the statuses given.
   */
  full?: boolean
  /** Called as the pass goes; `total` is the ended index entries on or before the cutoff's day. */
  onProgress?: (progress: { scanned: number; workflows: number; total: number }) => void
}

/** What `deleteWorkflows` deleted (or, `dryRun`, would delete). */
export interface DeleteWorkflowsResult {
  /** How many workflows. */
  workflows: number
  /**
   * How many storage keys: records, steps, failures, graphs, blobs, events and index entries. No
   * byte count: the storage contract lists keys without their sizes, and reading every value to
   * weigh it would cost what the index saves.
   */
  keys: number
  /** Their ids. */
  workflowIds: string[]
  /** Workflows that matched but stayed: resumed meanwhile, or unreadable (see `checkStorage`). */
  skipped: number
  dryRun: boolean
}

const KNOWN = new Set(['status', 'endedBefore', 'metadata', 'dryRun', 'full', 'onProgress'])

/** Checks `deleteWorkflows` options: `InvalidOptionsError`, saying what to give, for bad ones. */
export function parseDeleteWorkflowsOptions(options: unknown): RetentionFilter & {
  dryRun: boolean
  full: boolean
} {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionsError(
      "deleteWorkflows needs options: { status: 'SUCCESSFUL', endedBefore: Date.now() - 30 * 86_400_000 }",
    )
  const given = options as { [key: string]: unknown }
  // A misspelt `dryRun` must not turn a count into a deletion.
  for (const key of Object.keys(given)) {
    if (!KNOWN.has(key))
      throw new InvalidOptionsError(
        `deleteWorkflows: unknown option ${JSON.stringify(key)} (known: ${[...KNOWN].join(', ')})`,
      )
  }
  if (given.status === undefined)
    throw new InvalidOptionsError('deleteWorkflows: give status, one or more of FAILED, CANCELED, SUCCESSFUL')
  const statuses = [...(parseStatusFilter(given.status as StatusFilter) ?? [])] as WorkflowStatus[]
  const { endedBefore } = given
  if (endedBefore === undefined)
    throw new InvalidOptionsError('deleteWorkflows: give endedBefore, a Date or ms since the epoch')
  const before = endedBefore instanceof Date ? endedBefore.getTime() : endedBefore
  if (typeof before !== 'number' || !Number.isFinite(before))
    throw new InvalidOptionsError('deleteWorkflows: endedBefore must be a valid Date or ms since the epoch')
  for (const flag of ['dryRun', 'full'] as const) {
    if (given[flag] !== undefined && typeof given[flag] !== 'boolean')
      throw new InvalidOptionsError(`deleteWorkflows: ${flag} must be a boolean`)
  }
  if (given.onProgress !== undefined && typeof given.onProgress !== 'function')
    throw new InvalidOptionsError('deleteWorkflows: onProgress must be a function')
  const filter: RetentionFilter = { statuses: statuses as StoredStatus[], endedBefore: before }
  if (given.metadata !== undefined) filter.metadata = given.metadata as RetentionFilter['metadata']
  validateRetentionFilter(filter)
  return { ...filter, dryRun: given.dryRun === true, full: given.full === true }
}

/** Deletes ended workflows in bulk (see `WorkflowClient.deleteWorkflows`). */
export async function deleteWorkflows(
  runtime: Runtime,
  options: DeleteWorkflowsOptions,
): Promise<DeleteWorkflowsResult> {
  const { dryRun, ...pass } = parseDeleteWorkflowsOptions(options)
  const store = await runtime.store()
  const { onProgress } = options
  const total = onProgress ? await countEnded(store, pass.endedBefore) : 0
  const result = await runRetentionPass(store, {
    ...pass,
    dryRun,
    isActive: (workflowId) => runtime.isActive(workflowId),
    ...(onProgress ? { onProgress: (p) => onProgress({ ...p, total: Math.max(total, p.scanned) }) } : {}),
  })
  const { workflows, keys, workflowIds, skipped } = result
  return { workflows, keys, workflowIds, skipped, dryRun }
}

/** The ended statuses, for help texts. */
export const DELETABLE_STATUSES: readonly string[] = ENDED_STATUSES
