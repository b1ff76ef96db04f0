// Canceling a workflow, with one promise: once `cancel` resolves, no step of the workflow starts
// anywhere and no result finishing later is committed. A run this runtime drives stops at once (in
// memory). A run driven by another live runner is asked to stop by a request in its record
// (`cancelRequested`, set by compare-and-swap: no key of its own, nothing to clean up); that runner
// reads its records at every heartbeat, stops starting and committing steps, and acknowledges by
// writing CANCELED, which is what `cancel` waits for. A workflow nobody drives is canceled here.

import { CancelNotAcknowledgedError, ConditionFailedError } from '../errors.js'
import {
  type RunnerInfo,
  unparked,
  type Versioned,
  type WorkflowRecord,
  type WorkflowStatus,
} from '../model/records.js'
import { type WorkflowStore, withoutOwner } from '../store/store.js'
import { ownerGone } from './claim.js'

/**
 * How far the clocks of two machines may disagree. A canceler writes CANCELED over a runner's
 * workflow only once that runner's lease (stamped by the runner's clock) has been over for longer
 * than this, so a runner whose clock is behind still sees its own lease run out first.
 */
export const CLOCK_SKEW_ALLOWANCE_MS = 1000

/** What `cancel` found, and what it waited for. */
export interface CancelOutcome {
  workflowId: string
  /** `CANCELED`, or `SUCCESSFUL` for a workflow that had succeeded already (left as it was). */
  status: 'CANCELED' | 'SUCCESSFUL'
  /** Its status when the cancel first read it (`RESUMABLE` when RUNNING with nobody driving it). */
  was: WorkflowStatus
  /**
   * What the cancel waited for: `'nothing'` (it was ended, PENDING, FAILED or RESUMABLE: the
   * record was written here), `'this-process'` (this runtime drove it and stopped it at once),
   * `'owner'` (the live runner driving it acknowledged), `'owner-gone'` (the runner driving it
   * was gone, its process dead or its lease run out: the record was written here).
   */
  waitedFor: 'nothing' | 'this-process' | 'owner' | 'owner-gone'
  /** The runner that drove it, when `waitedFor` is `'owner'` or `'owner-gone'`. */
  owner?: RunnerInfo
  /** How long the cancel took, in ms. */
  elapsedMs: number
}

/** What a cancel needs from its runtime. */
export interface CancelContext {
  store: WorkflowStore
  runner: RunnerInfo
  leaseTtlMs: number
  heartbeatMs: number
  /**
   * Stops the run of `workflowId` this runtime drives, if any, at once, and resolves once its
   * CANCELED record is written; `undefined` when this runtime does not drive it.
   */
  cancelLocal(workflowId: string): Promise<void> | undefined
  /** Called once, when the cancel starts waiting for a live runner in another process to stop. */
  onWaiting?: (owner: RunnerInfo, upToMs: number) => void
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Cancels `workflowId` (see the file comment). Throws `CancelNotAcknowledgedError` when its live
 * owner neither acknowledges nor loses its lease within `leaseTtlMs + heartbeatMs`.
 */
export async function cancelWorkflow(context: CancelContext, workflowId: string): Promise<CancelOutcome> {
  const { store, runner, leaseTtlMs, heartbeatMs } = context
  const startedAt = Date.now()
  const waitMs = leaseTtlMs + heartbeatMs
  // Often enough that the acknowledgement is seen soon after it is written (one read per poll,
  // and only while waiting for a live runner, at most leaseTtlMs + heartbeatMs).
  const pollMs = Math.min(100, Math.max(10, Math.floor(heartbeatMs / 10)))
  let waitedFor: CancelOutcome['waitedFor'] = 'nothing'
  let owner: RunnerInfo | undefined
  let was: WorkflowStatus | undefined
  const outcome = (status: CancelOutcome['status']): CancelOutcome => ({
    workflowId,
    status,
    was: was ?? status,
    waitedFor,
    ...(owner ? { owner } : {}),
    elapsedMs: Date.now() - startedAt,
  })
  for (;;) {
    const local = context.cancelLocal(workflowId)
    if (local) {
      waitedFor = 'this-process'
      was ??= 'RUNNING'
      await local
    }
    const current = await store.requireWorkflow(workflowId)
    const { record } = current
    if (record.status === 'SUCCESSFUL' || record.status === 'CANCELED') return outcome(record.status)
    const driver = record.status === 'RUNNING' ? record.owner : undefined
    const gone = driver === undefined || local !== undefined || (await driverGone(store, runner, record))
    was ??= local ? 'RUNNING' : record.status === 'RUNNING' && gone ? 'RESUMABLE' : record.status
    if (!gone && driver) {
      // A live runner drives it: ask it, and wait for its CANCELED record.
      if (waitedFor !== 'owner') context.onWaiting?.(driver, waitMs)
      waitedFor = 'owner'
      owner = driver
      if (record.cancelRequested === undefined) {
        try {
          await store.updateWorkflow(current, { ...record, cancelRequested: { at: Date.now(), by: runner } })
        } catch (error) {
          if (!(error instanceof ConditionFailedError)) throw error
          continue
        }
      }
      if (Date.now() - startedAt > waitMs) throw new CancelNotAcknowledgedError(workflowId, driver, waitMs)
      await sleep(pollMs)
      continue
    }
    if (driver && !local) {
      waitedFor = 'owner-gone'
      owner = driver
    }
    // PENDING, FAILED, or RUNNING with nobody driving it: CANCELED here. The compare-and-swap
    // loses to any runner that took it meanwhile, and the next round asks that one.
    if (await writeCanceled(store, current)) return outcome('CANCELED')
  }
}

/**
 * Whether nobody drives a RUNNING record: its owner's process on this host is dead, or its lease
 * has been over for longer than the clock-skew allowance (read fresh before trusting a cached
 * "gone"), or it names this runtime, which does not drive it (a run that ended without being able
 * to give it back). A run this runtime is claiming right now is canceled as it starts (`Runtime`).
 */
async function driverGone(
  store: WorkflowStore,
  runner: RunnerInfo,
  record: WorkflowRecord,
): Promise<boolean> {
  const owner = record.owner as RunnerInfo
  if (owner.runnerId === runner.runnerId) return true
  if (ownerGone(owner, undefined)) return true
  const over = (r: WorkflowRecord) =>
    r.leaseExpiresAt !== undefined && r.leaseExpiresAt + CLOCK_SKEW_ALLOWANCE_MS < Date.now()
  if (!over(record)) return false
  if (record.lease !== 'runner') return true
  return over(await store.fillRunnerLease(record, { fresh: true }))
}

async function writeCanceled(store: WorkflowStore, current: Versioned<WorkflowRecord>): Promise<boolean> {
  try {
    await store.updateWorkflow(current, {
      ...withoutOwner(unparked(current.record)),
      status: 'CANCELED',
      endedAt: Date.now(),
    })
    return true
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error
    return false
  }
}
