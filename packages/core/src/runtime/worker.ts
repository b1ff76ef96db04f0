// Workers: long-running processes that pick up PENDING workflows (submitted with `submit`) in
// submission order and RESUMABLE ones (whose runner died), without anyone calling resumeAll.
// Several workers on one storage share the work; leases keep each workflow with one of them.
// Over 400 lines: the poll loop and its pacing, documented option by option, read best in one piece.

import {
  InvalidOptionsError,
  WorkflowNotFoundError,
  WorkflowNotResumableError,
  WorkflowStillActiveError,
} from '../errors.js'
import {
  ENDED_STATUSES,
  isParked,
  type RunnerInfo,
  type StoredStatus,
  storeKeys,
  type WorkflowRecord,
} from '../model/records.js'
import { registeredSchedules, type ScheduleDefinition } from '../step/schedule.js'
import type { StorageSpec } from '../storage/resolve.js'
import { claimRetentionPass, type RetentionCursor, runRetentionPass } from '../store/retention.js'
import type { DueEntry, WorkflowStore } from '../store/store.js'
import { type Duration, parseDuration } from '../util/duration.js'
import { mapLimit } from '../util/map-limit.js'
import { ownerGone } from './claim.js'
import { Runtime } from './runtime.js'
import type { RuntimeOptions } from './runtime-options.js'
import { type ScheduleEvent, ScheduleFiring } from './schedule-firing.js'
import { WorkflowParked } from './workflow-run.js'

/** Records a poll reads at once (workflow records, then runner records), and claims at once. */
const READS_IN_FLIGHT = 16
/**
 * How many entries of the due index a poll lists first (one page, from the earliest): an idle
 * poll lists only these, the first of them not due yet. Only when all of them are due does it
 * list `DUE_PAGE` (on S3 a listing's cost grows with the keys it returns).
 */
const DUE_FIRST_PAGE = 16
/** How many entries of the due index a poll lists when its first page is all due. */
const DUE_PAGE = 256
/** Default `wakeAheadMs` (at least two poll intervals): a hundred claims take about 4 s on S3. */
const WAKE_AHEAD_MS = 5000
/** Storage requests a claim makes one after the other, about (its reads, then its writes). */
const CLAIM_REQUESTS = 6

/** Index entries a retention pass considers per poll: it goes on at the next poll, after the work. */
const RETENTION_BATCH = 100
/** Workflows a retention pass deletes at once (a few: the poll's claims come first). */
const RETENTION_IN_FLIGHT = 4
/** Default interval between two retention passes, across all workers on a storage. */
const RETENTION_INTERVAL_MS = 3_600_000

/** How long to keep ended workflows, by status (see `WorkerOptions.retention`). */
export type RetentionPolicy = { readonly [status in 'SUCCESSFUL' | 'FAILED' | 'CANCELED']?: Duration }

/** What a worker's retention pass did (`WorkerOptions.onRetention`). */
export interface RetentionEvent {
  /** `start`: this worker won the pass of this interval; `progress`: a poll's share; `end`: done. */
  phase: 'start' | 'progress' | 'end'
  /** When the pass started (ms since the epoch). */
  startedAt: number
  /** Workflows and keys deleted by the pass so far. */
  workflows: number
  keys: number
}

/** The statuses of a retention policy with their ages in ms; `InvalidOptionsError` for a bad one. */
export function retentionPlan(policy: unknown): Array<{ status: StoredStatus; ageMs: number }> {
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy))
    throw new InvalidOptionsError(
      "retention must be an object of ages by status, such as { SUCCESSFUL: '7d', FAILED: '30d' }",
    )
  const plan: Array<{ status: StoredStatus; ageMs: number }> = []
  for (const [status, age] of Object.entries(policy)) {
    if (!ENDED_STATUSES.includes(status as StoredStatus))
      throw new InvalidOptionsError(
        `retention: ${JSON.stringify(status)} is not an ended status (SUCCESSFUL, FAILED, CANCELED): RUNNING, PENDING and RESUMABLE workflows are never deleted`,
      )
    if (age === undefined) continue
    plan.push({
      status: status as StoredStatus,
      ageMs: parseDuration(age as Duration, `retention.${status}`),
    })
  }
  return plan
}

/** Shuffles `items` in place (Fisher–Yates). */
function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const item = items[i] as T
    items[i] = items[j] as T
    items[j] = item
  }
}

/** @internal Which of `count` slices a due workflow falls in (FNV-1a of its id): see `ownSliceFirst`. */
export function sliceOf(workflowId: string, count: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < workflowId.length; i++) hash = Math.imul(hash ^ workflowId.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % count
}

/** How long a worker's list of the runners on its storage is used before it is listed again. */
const PEERS_TTL_MS = 1000

const ENDED: ReadonlySet<string> = new Set(['SUCCESSFUL', 'FAILED', 'CANCELED'])

/** A workflow last read RUNNING under another runner's lease. */
interface HeldElsewhere {
  owner: RunnerInfo
  /** When to read its record again even if its owner still lives (the slow rotation). */
  rereadAt: number
}

/** A start batch (start-batches.ts) as a worker last read it. */
interface KnownBatch {
  name: string
  runnerId: string
  workflowIds: string[]
  /** Ids that no longer need this batch: their record is final, or has a marker of its own. */
  done: Set<string>
  /** Ids without a record (deleted, or a start that crashed before its record): not read again until `rereadAt`. */
  absent: Set<string>
  /** When to read the batch again (ids taken out by deletions, absent records created since). */
  rereadAt: number
  /** It could not be read (reported): its ids are unknown until it is read again. */
  unreadable?: boolean
}

function unreadableBatch(name: string, rereadAt: number): KnownBatch {
  const none = new Set<string>()
  return { name, runnerId: '', workflowIds: [], done: none, absent: none, rereadAt, unreadable: true }
}

/** Options of `createWorker`. */
export interface WorkerOptions extends RuntimeOptions {
  /** Where the workflows are (ignored when `runtime` is given). */
  storage?: StorageSpec
  /** Run on this runtime instead of a new one. */
  runtime?: Runtime
  /** At most this many workflows at once. Default 4. */
  concurrency?: number
  /** How often to look for work when idle. Default 1,000 ms. */
  pollIntervalMs?: number
  /**
   * Claim parked workflows this long before they are due, and hold each one under this worker's
   * lease until its wake time, when a local timer wakes it: the claim (several storage requests,
   * seconds for a hundred workflows on S3) is then no part of its lateness. Each claimed workflow
   * takes one of the `concurrency` slots while it waits. On a slow storage the window grows, to
   * twice the time claiming as many workflows as there are free slots takes (estimated from how
   * long the poll's listing took, and from how long this worker's last claims took). Capped by
   * `parkAfterMs` (a workflow claimed further ahead would park again); `0` claims a workflow only
   * once it is due. Default 5,000 ms, or two poll intervals when that is longer.
   */
  wakeAheadMs?: number
  /** On stop, how long running steps may take to finish before they are aborted. Default 10,000 ms. */
  shutdownGraceMs?: number
  /** Stop gracefully on SIGTERM and SIGINT. Default `true`. */
  handleSignals?: boolean
  /**
   * The schedules this worker fires. Default: every schedule declared in this process
   * (`schedule()` in the modules it imports), looked up at each poll.
   */
  schedules?: readonly ScheduleDefinition[]
  /** Called with each tick the worker fired, skipped or buffered. */
  onSchedule?: (event: ScheduleEvent) => void
  /**
   * Delete ended workflows once they are this old, by status: `{ SUCCESSFUL: '7d', FAILED: '30d',
   * CANCELED: '7d' }` (a status not named is kept). At most one pass per `retentionIntervalMs`
   * across every worker on the storage (claimed by compare-and-swap on the `retention` record), and
   * paced: each poll deletes a bounded share after taking its work. See @wf/client's `deleteWorkflows`.
   */
  retention?: RetentionPolicy
  /** How often a retention pass runs, across all workers on the storage. Default 1 hour. */
  retentionIntervalMs?: number
  /** Called as this worker's retention passes go (`start`, each poll's `progress`, `end`). */
  onRetention?: (event: RetentionEvent) => void
  /** Called when the worker takes a workflow on (waiting, resumable, or parked and now due). */
  onTake?: (workflowId: string) => void
  /**
   * Called with every workflow the worker takes, and how it ended; and with every workflow it
   * skips (`skipped: true`, outcome `ERROR`): its record cannot be read (reported once until it
   * reads again), or it cannot run here (a step not registered, its code changed under 'error').
   * Skipped workflows are tried again later, with a growing delay. `workflowId` is `''` when the
   * worker's own loop failed (storage unreachable, a start batch unreadable).
   */
  onWorkflow?: (event: {
    workflowId: string
    /** `PARKED`: it sleeps now, held by no runner; a worker takes it again when it is due. */
    outcome: 'SUCCESSFUL' | 'FAILED' | 'CANCELED' | 'RELEASED' | 'PARKED' | 'ERROR'
    error?: unknown
    skipped?: boolean
  }) => void
}

/** A running worker. */
export interface Worker {
  readonly runtime: Runtime
  /** Stops taking work, lets running steps finish within the grace period, and releases the rest. */
  stop(): Promise<void>
  /** Resolves when the worker has stopped. */
  readonly stopped: Promise<void>
}

/**
 * Starts a worker on a storage.
 *
 * ```ts
 * import '../my-steps.js' // registers the steps the workflows use
 * const worker = createWorker({ storage: 's3://bucket/workflows', concurrency: 8 })
 * ```
 */
export function createWorker(options: WorkerOptions = {}): Worker {
  const {
    storage,
    runtime: given,
    concurrency = 4,
    pollIntervalMs = 1000,
    wakeAheadMs,
    shutdownGraceMs = 10_000,
    handleSignals = true,
    onWorkflow,
    onTake,
    schedules,
    onSchedule,
    retention,
    retentionIntervalMs = RETENTION_INTERVAL_MS,
    onRetention,
    ...runtimeOptions
  } = options
  const retained = retention === undefined ? [] : retentionPlan(retention)
  if (!Number.isInteger(retentionIntervalMs) || retentionIntervalMs < 1) {
    throw new InvalidOptionsError(
      `retentionIntervalMs must be a positive integer, got ${String(retentionIntervalMs)}`,
    )
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidOptionsError(`concurrency must be a positive integer, got ${String(concurrency)}`)
  }
  if (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 1) {
    throw new InvalidOptionsError(`pollIntervalMs must be a positive integer, got ${String(pollIntervalMs)}`)
  }
  if (wakeAheadMs !== undefined && (!Number.isInteger(wakeAheadMs) || wakeAheadMs < 0)) {
    throw new InvalidOptionsError(
      `wakeAheadMs must be a non-negative integer of milliseconds (0: claim parked workflows only once due), got ${String(wakeAheadMs)}`,
    )
  }
  if (!Number.isInteger(shutdownGraceMs) || shutdownGraceMs < 0) {
    throw new InvalidOptionsError(
      `shutdownGraceMs must be a non-negative integer, got ${String(shutdownGraceMs)}`,
    )
  }
  const runtime = given ?? new Runtime(storage, runtimeOptions)
  // No further ahead than the runtime holds a sleeping workflow: claimed earlier, it would park again.
  const baseAheadMs = Math.min(
    wakeAheadMs ?? Math.max(WAKE_AHEAD_MS, 2 * pollIntervalMs),
    runtime.parkAfterMs,
  )
  // How long a listing of the due index took lately (a moving average of each poll's first): a
  // claim is several requests one after the other, so a slow storage (a busy S3 gateway) claims
  // fewer workflows a second. The window then grows to twice what claiming `room` workflows would
  // take, up to `parkAfterMs`: with 64 slots and listings of 300 ms, about 14 s.
  let listMs = 0
  // How long a claim took lately at this worker's pace (a moving average over its claim batches:
  // a batch's time over its size, or over the claims in flight when it was smaller). A listing is
  // one request on a quiet gateway; claims are many at once, and a gateway that serves a few
  // hundred requests a second (shared with other workers) claims fewer than the listing suggests:
  // after a first burst, a worker claims the next one early enough.
  let claimMs = 0
  const aheadFor = (room: number): number =>
    baseAheadMs === 0
      ? 0
      : Math.min(
          runtime.parkAfterMs,
          Math.max(
            baseAheadMs,
            Math.ceil((2 * room * CLAIM_REQUESTS * listMs) / READS_IN_FLIGHT),
            Math.ceil(2 * room * claimMs),
          ),
        )
  // The window of the last poll: its claims take what falls in it.
  let aheadMs = baseAheadMs
  const mine = new Set<string>()
  // Workflows that could not run here (a step not registered, code changed under 'error', storage
  // trouble) are retried with a growing delay, not at every poll.
  const backoff = new Map<string, { until: number; delayMs: number }>()
  const setBack = (workflowId: string) => {
    const delayMs = Math.min(60_000, (backoff.get(workflowId)?.delayMs ?? pollIntervalMs / 2) * 2)
    backoff.set(workflowId, { until: Date.now() + delayMs, delayMs })
  }
  let stopping = false
  let wake: (() => void) | undefined
  // A run ended while the loop was busy (no `wake` to call): see the loop.
  let freedWhileBusy = false
  // The due workflows the last poll listed, earliest first, for a slot that frees before the next
  // poll: it claims the next of them at once, without a poll and its listings (100 due at once
  // with 64 slots: the 36 left were claimed a few at a time, by polls one after the other).
  // Valid until the next poll, and for one poll interval at most.
  let backlog: { entries: DueEntry[]; until: number } | undefined
  // Claims in flight from the backlog: they take slots the loop must not give away meanwhile, and
  // `stop` waits for them before it gives back what the worker holds.
  const backlogClaims = new Set<Promise<void>>()
  // Workflows a claim is in flight for (a poll's or the backlog's): not claimed twice at once.
  const claiming = new Set<string>()
  let resolveStopped!: () => void
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve
  })

  /** Takes a workflow on: one the index lists as waiting for a runner, or a parked one now due. */
  const take = async (work: string | DueEntry): Promise<boolean> => {
    const workflowId = typeof work === 'string' ? work : work.workflowId
    if (claiming.has(workflowId)) return false
    claiming.add(workflowId)
    try {
      return await claim(work, workflowId)
    } finally {
      claiming.delete(workflowId)
    }
  }

  /** A freed slot: the next due workflow of the backlog, else a poll now. */
  const slotFreed = () => {
    if (!stopping && fromBacklog()) return
    if (wake) wake()
    else freedWhileBusy = true
  }

  /** Claims the next due workflow of the backlog into a free slot; false when there is none. */
  const fromBacklog = (): boolean => {
    if (backlog === undefined) return false
    if (Date.now() > backlog.until) {
      backlog = undefined
      return false
    }
    if (mine.size + backlogClaims.size >= concurrency) return false
    let entry: DueEntry | undefined
    for (;;) {
      entry = backlog.entries.shift()
      if (entry === undefined) {
        backlog = undefined
        return false
      }
      const id = entry.workflowId
      if (!mine.has(id) && !claiming.has(id) && !runtime.isActive(id)) break
    }
    const claimed: Promise<void> = take(entry).then(
      (taken) => {
        backlogClaims.delete(claimed)
        // Taken by another worker meanwhile (or ended): the next one, or a poll.
        if (!taken) slotFreed()
      },
      () => {
        backlogClaims.delete(claimed)
        slotFreed()
      },
    )
    backlogClaims.add(claimed)
    return true
  }

  const claim = async (work: string | DueEntry, workflowId: string): Promise<boolean> => {
    try {
      const handle =
        typeof work === 'string'
          ? await runtime.resumeForWorker(workflowId)
          : await runtime.resumeDue(work, Date.now() + aheadMs)
      if (handle === undefined) return false
      mine.add(workflowId)
      if (runtime.isActive(workflowId)) onTake?.(workflowId)
      handle
        .result()
        .then(
          () => {
            backoff.delete(workflowId)
            onWorkflow?.({ workflowId, outcome: 'SUCCESSFUL' })
          },
          (error: { code?: string }) => {
            const outcome =
              error?.code === 'WF_EXECUTION_FAILED'
                ? 'FAILED'
                : error?.code === 'WF_CANCELED'
                  ? 'CANCELED'
                  : error?.code === 'WF_RUNNER_SHUTDOWN'
                    ? 'RELEASED'
                    : error instanceof WorkflowParked
                      ? 'PARKED'
                      : 'ERROR'
            if (outcome === 'ERROR') setBack(workflowId)
            else backoff.delete(workflowId)
            onWorkflow?.({ workflowId, outcome, error })
          },
        )
        .finally(() => {
          mine.delete(workflowId)
          slotFreed()
        })
      return true
    } catch (error) {
      // Someone else took it, it ended, or it is gone: not ours to run.
      if (
        error instanceof WorkflowStillActiveError ||
        error instanceof WorkflowNotResumableError ||
        error instanceof WorkflowNotFoundError
      ) {
        return false
      }
      // This one cannot run here (its code changed under policy 'error', its graph cannot be
      // read…): say so and go on with the others, or one bad workflow would starve the queue.
      setBack(workflowId)
      onWorkflow?.({ workflowId, outcome: 'ERROR', error, skipped: true })
      return false
    }
  }

  // Workflows last read RUNNING under another runner's lease, by id. Their records are not read
  // again while that runner's record lives: a poll reads each such runner record once instead of
  // every record it holds (10,000 running workflows would be 10,000 reads a poll). A workflow is
  // given back with its runner record deleted (a stopping worker) or left to expire (a dead one),
  // so a poll still sees it at once. Each record is re-read anyway within `leaseTtlMs`, at spread
  // times: a change the runner record does not show (one workflow released by a runner that goes
  // on) waits for that rotation.
  const heldElsewhere = new Map<string, HeldElsewhere>()
  // Workflows whose record could not be read, with the message reported: a corrupt record is
  // reported once, not at every poll, and again only if it reads differently.
  const unreadable = new Map<string, string>()
  const rotation = () => runtime.leaseTtlMs * (0.5 + Math.random() / 2)

  /** The workflow ids whose records this poll must read: all but those held by a live runner. */
  const toRead = async (
    candidates: string[],
    now: number,
  ): Promise<{ ids: string[]; expiries: Map<string, number> }> => {
    const store = await runtime.store()
    const owners = new Map<string, RunnerInfo>()
    for (const workflowId of candidates) {
      const held = heldElsewhere.get(workflowId)
      if (held && held.rereadAt > now) owners.set(held.owner.runnerId, held.owner)
    }
    // Fresh, not from the store's cache: a runner record deleted on a graceful stop must show now.
    const expiries = new Map<string, number>()
    await mapLimit([...owners.keys()], READS_IN_FLIGHT, async (runnerId) => {
      const runner = await store.readRunner(runnerId).catch(() => null)
      if (runner !== null) expiries.set(runnerId, runner?.leaseExpiresAt ?? 0)
    })
    const ids = candidates.filter((workflowId) => {
      const held = heldElsewhere.get(workflowId)
      if (!held || held.rereadAt <= now) return true
      const expiry = expiries.get(held.owner.runnerId)
      return expiry === undefined || ownerGone(held.owner, expiry)
    })
    return { ids, expiries }
  }

  // Start batches stand for RUNNING markers of the workflows they list. Their ids are read until
  // each is done with the batch (ended, or taken over with a marker of its own: for good); a batch
  // is read again at the slow rotation, since deletions take ids out of it, and records missing
  // then may have been created since.
  const batches = new Map<string, KnownBatch>()
  const readBatches = async (store: WorkflowStore, now: number): Promise<void> => {
    const names = new Set(await store.listStartBatches())
    const earlier = new Map<string, KnownBatch>()
    for (const [name, known] of batches) {
      if (names.has(name) && known.rereadAt > now) continue
      batches.delete(name)
      if (names.has(name)) earlier.set(name, known)
    }
    const fresh = [...names].filter((name) => !batches.has(name))
    await mapLimit(fresh, READS_IN_FLIGHT, async (name) => {
      const found = await store.readStartBatch(name).catch((error: unknown) => {
        // Reported, and read again at the rotation: the other batches' workflows go on.
        onWorkflow?.({ workflowId: '', outcome: 'ERROR', error })
        batches.set(name, unreadableBatch(name, now + rotation()))
        return undefined
      })
      if (!found) return
      const { runnerId, workflowIds } = found.record
      const done = new Set(workflowIds.filter((id) => earlier.get(name)?.done.has(id)))
      batches.set(name, { name, runnerId, workflowIds, done, absent: new Set(), rereadAt: now + rotation() })
    })
  }

  // The runners on this storage (workers among them), listed when something is due, at most
  // every PEERS_TTL_MS: workers take the due workflows of their own slice first.
  let peers: { ids: string[]; until: number } | undefined
  /**
   * `due` (shuffled) with the workflows of this worker's slice first: of n runners, sorted by id,
   * the k-th takes first the due workflows whose id hashes to k, then the others. Workers that
   * all took every due workflow in their own random order raced for the same ones (with three
   * workers, one claim in three lost: a dozen requests each on S3); a runner that is no worker
   * (or is gone) leaves its slice to all, after their own.
   */
  const ownSliceFirst = async (store: WorkflowStore, due: DueEntry[], now: number): Promise<DueEntry[]> => {
    if (due.length < 2) return due
    if (!peers || peers.until <= now) {
      const prefix = storeKeys.runnersPrefix
      const listed = await store.listAllKeys(prefix).catch(() => [] as string[])
      const ids = new Set(listed.map((key) => key.slice(prefix.length)))
      ids.add(runtime.runner.runnerId)
      peers = { ids: [...ids].sort(), until: now + PEERS_TTL_MS }
    }
    const count = peers.ids.length
    if (count < 2) return due
    const own = peers.ids.indexOf(runtime.runner.runnerId)
    const mineFirst = due.filter((entry) => sliceOf(entry.workflowId, count) === own)
    return [...mineFirst, ...due.filter((entry) => sliceOf(entry.workflowId, count) !== own)]
  }

  /**
   * Parked workflows now due, then those due within `aheadMs` (claimed ahead: see `wakeAheadMs`)
   * by wake time, then PENDING workflows oldest first, then RESUMABLE ones.
   */
  const findWork = async (room: number): Promise<Array<string | DueEntry>> => {
    const store = await runtime.store()
    const now = Date.now()
    // One small page of the due index, from its earliest: however many workflows are parked, an
    // idle poll reads one listing of it, of a few keys. A page all due (or soon due): a larger one.
    aheadMs = aheadFor(room)
    const horizon = now + aheadMs
    let listed = await store.listDue(horizon, DUE_FIRST_PAGE)
    const tookMs = Date.now() - now
    listMs = listMs === 0 ? tookMs : 0.7 * listMs + 0.3 * tookMs
    if (listed.length === DUE_FIRST_PAGE) listed = await store.listDue(horizon, DUE_PAGE)
    const due = listed.filter(
      (entry) =>
        !mine.has(entry.workflowId) &&
        !runtime.isActive(entry.workflowId) &&
        (backoff.get(entry.workflowId)?.until ?? 0) <= now,
    )
    // Workers polling one storage start at different places in what is due, so that they do not
    // all race for the same workflows; and due ones take at most the room there is, leaving the
    // rest of the list to waiting and resumable workflows.
    shuffle(due)
    // A workflow may be listed twice (its own marker and one a sender or a crash left).
    const dueIds = new Set<string>()
    const dueOnce = await ownSliceFirst(
      store,
      due.filter((entry) => !dueIds.has(entry.workflowId) && dueIds.add(entry.workflowId)),
      now,
    )
    // What is due already first, then what is due soonest: a worker with little room holds the
    // workflows that wake first (a stable sort: each worker's own slice first among equals).
    const order = (entry: DueEntry) => (entry.wakeAt <= now ? 0 : entry.wakeAt)
    dueOnce.sort((a, b) => order(a) - order(b))
    // More due than this poll has room for: the rest wait for slots as they free.
    backlog =
      dueOnce.length > room ? { entries: dueOnce.slice(room), until: now + pollIntervalMs } : undefined
    // Enough due to fill the room twice over (the most a poll tries): waiting and resumable
    // workflows come after them anyway, so the indexes and the records they list are not read
    // (draining many due workflows, a worker read the record of each one others claimed).
    if (dueOnce.length >= room * 2) return dueOnce.slice(0, room * 2)
    const marked = new Set<string>()
    for (const status of ['PENDING', 'RUNNING'] as const) {
      const prefix = storeKeys.indexPrefix(status)
      for (const key of await store.listAllKeys(prefix)) marked.add(key.slice(prefix.length))
    }
    await readBatches(store, now)
    const inBatch = new Map<string, KnownBatch>()
    for (const batch of batches.values()) {
      for (const workflowId of batch.workflowIds) {
        if (batch.done.has(workflowId) || batch.absent.has(workflowId)) continue
        marked.add(workflowId)
        inBatch.set(workflowId, batch)
      }
    }
    for (const workflowId of heldElsewhere.keys())
      if (!marked.has(workflowId)) heldElsewhere.delete(workflowId)
    for (const workflowId of unreadable.keys()) if (!marked.has(workflowId)) unreadable.delete(workflowId)
    const candidates = [...marked].filter(
      (workflowId) =>
        !mine.has(workflowId) &&
        !runtime.isActive(workflowId) &&
        (backoff.get(workflowId)?.until ?? 0) <= now,
    )
    const { ids, expiries } = await toRead(candidates, now)
    // `null`: unreadable now (read again after a growing delay, reported when first seen so);
    // `undefined`: no record.
    const found = await mapLimit(ids, READS_IN_FLIGHT, (workflowId) =>
      store.readWorkflow(workflowId).then(
        (read) => {
          unreadable.delete(workflowId)
          return read
        },
        (error: unknown) => {
          setBack(workflowId)
          const message = error instanceof Error ? error.message : String(error)
          if (unreadable.get(workflowId) !== message) {
            unreadable.set(workflowId, message)
            onWorkflow?.({ workflowId, outcome: 'ERROR', error, skipped: true })
          }
          return null
        },
      ),
    )
    const pending: WorkflowRecord[] = []
    const resumable: string[] = []
    for (const [i, workflowId] of ids.entries()) {
      heldElsewhere.delete(workflowId)
      const record = found[i]?.record
      const batch = inBatch.get(workflowId)
      if (batch && found[i] === undefined) batch.absent.add(workflowId)
      else if (batch && record && (ENDED.has(record.status) || record.startBatch !== batch.name))
        batch.done.add(workflowId)
      if (!record) continue
      const owner = record.lease === 'runner' ? record.owner : undefined
      // This poll's fresh read of the owner's runner record wins when it ends the lease sooner:
      // the store's cache may still hold a deleted one alive (a takeover reads it fresh again).
      const expiry = owner && expiries.get(owner.runnerId)
      if (expiry !== undefined && expiry < (record.leaseExpiresAt ?? Number.POSITIVE_INFINITY))
        record.leaseExpiresAt = expiry
      const status = runtime.deriveStatus(record)
      // Parked (found through a marker a crash left behind): the due index wakes it at its time.
      if (isParked(record)) continue
      if (status === 'PENDING') pending.push(record)
      else if (status === 'RESUMABLE') resumable.push(workflowId)
      // Records of earlier versions, with a lease of their own, are read at every poll.
      else if (status === 'RUNNING' && owner && owner.runnerId !== runtime.runner.runnerId)
        heldElsewhere.set(workflowId, { owner, rereadAt: now + rotation() })
    }
    pending.sort((a, b) => a.createdAt - b.createdAt || (a.workflowId < b.workflowId ? -1 : 1))
    return [...dueOnce.slice(0, room), ...pending.map((r) => r.workflowId), ...resumable].slice(0, room * 2)
  }

  // Runner records of runners that died without closing stay behind: now and then a worker deletes
  // those gone for sure (see `WorkflowStore.sweepRunners`), as each runtime does once at its start.
  const staleMs = 10 * runtime.leaseTtlMs
  let sweptAt = Date.now()
  /** Deletes what nothing needs any more: runner records of runners long gone, spent start batches. */
  const sweep = async (now: number): Promise<void> => {
    if (now - sweptAt < staleMs) return
    sweptAt = now
    const store = await runtime.store()
    await store.sweepRunners(runtime.runner.runnerId, now, staleMs)
    await mapLimit([...batches.values()], READS_IN_FLIGHT, (batch) =>
      clearBatch(store, batch, now).catch(() => undefined),
    )
  }

  // A start batch whose every workflow is done with it (ended, or taken over with a marker of its
  // own) indexes nothing any more, whether its runner lives or not: it is deleted. An id without a
  // record is a start that crashed between its batch and its record, or one about to be created:
  // once its runner is gone for good (its record expired ten leases ago, or deleted), that id gets
  // a RUNNING marker, as earlier versions wrote first (listings skip a marker without a record),
  // and leaves the batch.
  const clearBatch = async (store: WorkflowStore, batch: KnownBatch, now: number): Promise<void> => {
    if (batch.unreadable) return
    const { done, absent } = batch
    if (!batch.workflowIds.every((workflowId) => done.has(workflowId) || absent.has(workflowId))) return
    const fresh = await store.readStartBatch(batch.name)
    if (!fresh) {
      batches.delete(batch.name)
      return
    }
    const missing = fresh.record.workflowIds.filter((workflowId) => !done.has(workflowId))
    if (missing.length === 0) {
      await store.deleteStartBatch(batch.name)
      batches.delete(batch.name)
      return
    }
    if (batch.runnerId === runtime.runner.runnerId) return
    const runner = await store.readRunner(batch.runnerId)
    if (runner && runner.leaseExpiresAt >= now - staleMs) return
    for (const workflowId of missing) {
      await store.addMarker('RUNNING', workflowId)
      await store.removeFromStartBatch(batch.name, workflowId)
    }
  }

  // Retention: the pass this worker won, going on poll by poll (one status after the other).
  let pass:
    | { startedAt: number; at: number; cursor?: RetentionCursor; workflows: number; keys: number }
    | undefined
  // The `retention` record is read at most this often (one read per worker, not per poll).
  const retentionCheckMs = Math.min(Math.max(1, Math.floor(retentionIntervalMs / 4)), 60_000)
  let retentionCheckedAt = Number.NEGATIVE_INFINITY
  const retain = async (now: number): Promise<void> => {
    if (retained.length === 0) return
    const store = await runtime.store()
    if (pass === undefined) {
      if (now - retentionCheckedAt < retentionCheckMs) return
      retentionCheckedAt = now
      if (!(await claimRetentionPass(store, runtime.runner, now, retentionIntervalMs))) return
      pass = { startedAt: now, at: 0, workflows: 0, keys: 0 }
      onRetention?.({ phase: 'start', startedAt: now, workflows: 0, keys: 0 })
    }
    const { status, ageMs } = retained[pass.at] as { status: StoredStatus; ageMs: number }
    const done = await runRetentionPass(store, {
      statuses: [status],
      endedBefore: pass.startedAt - ageMs,
      limit: RETENTION_BATCH,
      concurrency: RETENTION_IN_FLIGHT,
      isActive: (workflowId) => runtime.isActive(workflowId),
      ...(pass.cursor === undefined ? {} : { cursor: pass.cursor }),
    })
    pass.workflows += done.workflows
    pass.keys += done.keys
    pass.cursor = done.cursor
    if (done.cursor === undefined) pass.at++
    const { startedAt, workflows, keys } = pass
    if (pass.at < retained.length) onRetention?.({ phase: 'progress', startedAt, workflows, keys })
    else {
      pass = undefined
      onRetention?.({ phase: 'end', startedAt, workflows, keys })
    }
  }

  const firing = new ScheduleFiring({
    store: () => runtime.store(),
    runner: runtime.runner,
    leaseTtlMs: runtime.leaseTtlMs,
    deriveStatus: (record) => runtime.deriveStatus(record),
    submit: (node, workflowId, metadata) => runtime.submitIfAbsent(node, { workflowId, metadata }),
  })
  const loop = async () => {
    while (!stopping) {
      freedWhileBusy = false
      // Every slot taken (by this poll or before it): more work may be waiting for room.
      let full = false
      try {
        // First: the runs a tick creates are taken in this same poll.
        await firing.poll(schedules ?? registeredSchedules(), onSchedule)
      } catch (error) {
        onWorkflow?.({ workflowId: '', outcome: 'ERROR', error })
      }
      try {
        const room = concurrency - mine.size - backlogClaims.size
        if (room > 0) {
          // Claimed side by side, as many at once as there is room (a claim is several requests:
          // one at a time, a worker woke 20 workflows a second on S3).
          let took = 0
          const candidates = await findWork(room)
          let next = 0
          while (!stopping && took < room && next < candidates.length) {
            const batch = candidates.slice(next, next + (room - took))
            next += batch.length
            const claimedAt = Date.now()
            const taken = await mapLimit(batch, READS_IN_FLIGHT, (work) => take(work))
            took += taken.filter(Boolean).length
            if (batch.some((work) => typeof work !== 'string')) {
              const ms = (Date.now() - claimedAt) / Math.max(batch.length, READS_IN_FLIGHT)
              claimMs = claimMs === 0 ? ms : 0.7 * claimMs + 0.3 * ms
            }
          }
          full = took >= room
        } else full = true
        await sweep(Date.now())
        // After the work: a bounded share of a retention pass, never ahead of a claim.
        if (!stopping) await retain(Date.now())
      } catch (error) {
        onWorkflow?.({ workflowId: '', outcome: 'ERROR', error })
      }
      if (stopping) break
      // Slots freed while this poll claimed into full ones: poll again now, not a poll interval
      // later (100 workflows due at once with 64 slots: the 36 left waited for the next poll).
      if (!(full && freedWhileBusy))
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollIntervalMs)
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
      wake = undefined
      // Woken by a run that ended: still let timers and I/O run first, so a storage that answers
      // in microtasks (MemoryStorage) and a workflow that fails at once cannot spin this loop.
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  const stop = async (): Promise<void> => {
    if (!stopping) {
      stopping = true
      wake?.()
      await running
      await Promise.all(backlogClaims)
      await Promise.all([...mine].map((workflowId) => runtime.release(workflowId, shutdownGraceMs)))
      // Holding nothing now: delete the runner record, so that other workers read the records of
      // the workflows given back at their next poll (they skip them while it lives).
      await runtime.retire()
      await firing.retire()
      if (handleSignals) {
        process.off('SIGTERM', onSignal)
        process.off('SIGINT', onSignal)
      }
      resolveStopped()
    }
    return stopped
  }
  const onSignal = () => {
    void stop()
  }
  if (handleSignals) {
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  }
  const running = loop().catch(() => {})
  return { runtime, stop, stopped }
}
