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
import { isParked, type RunnerInfo, storeKeys, type WorkflowRecord } from '../model/records.js'
import { registeredSchedules, type ScheduleDefinition } from '../step/schedule.js'
import type { StorageSpec } from '../storage/resolve.js'
import type { DueEntry, WorkflowStore } from '../store/store.js'
import { mapLimit } from '../util/map-limit.js'
import { ownerGone } from './claim.js'
import { Runtime } from './runtime.js'
import type { RuntimeOptions } from './runtime-options.js'
import { type ScheduleEvent, ScheduleFiring } from './schedule-firing.js'
import { WorkflowParked } from './workflow-run.js'

/** Records a poll reads at once (workflow records, then runner records), and claims at once. */
const READS_IN_FLIGHT = 16
/** How many entries of the due index a poll lists (one page, from the earliest). */
const DUE_PAGE = 256

/** Shuffles `items` in place (Fisher–Yates). */
function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const item = items[i] as T
    items[i] = items[j] as T
    items[j] = item
  }
}

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
    shutdownGraceMs = 10_000,
    handleSignals = true,
    onWorkflow,
    onTake,
    schedules,
    onSchedule,
    ...runtimeOptions
  } = options
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidOptionsError(`concurrency must be a positive integer, got ${String(concurrency)}`)
  }
  if (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 1) {
    throw new InvalidOptionsError(`pollIntervalMs must be a positive integer, got ${String(pollIntervalMs)}`)
  }
  if (!Number.isInteger(shutdownGraceMs) || shutdownGraceMs < 0) {
    throw new InvalidOptionsError(
      `shutdownGraceMs must be a non-negative integer, got ${String(shutdownGraceMs)}`,
    )
  }
  const runtime = given ?? new Runtime(storage, runtimeOptions)
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
  let resolveStopped!: () => void
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve
  })

  /** Takes a workflow on: one the index lists as waiting for a runner, or a parked one now due. */
  const take = async (work: string | DueEntry): Promise<boolean> => {
    const workflowId = typeof work === 'string' ? work : work.workflowId
    try {
      const handle =
        typeof work === 'string' ? await runtime.resumeForWorker(workflowId) : await runtime.resumeDue(work)
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
          wake?.()
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

  /** Parked workflows now due, most overdue first, then PENDING workflows oldest first, then RESUMABLE ones. */
  const findWork = async (room: number): Promise<Array<string | DueEntry>> => {
    const store = await runtime.store()
    const now = Date.now()
    // One page of the due index, from its earliest: however many workflows are parked, an idle
    // poll reads one listing of it.
    const due = (await store.listDue(now, DUE_PAGE)).filter(
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
    const dueOnce = due.filter((entry) => !dueIds.has(entry.workflowId) && dueIds.add(entry.workflowId))
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

  const firing = new ScheduleFiring({
    store: () => runtime.store(),
    runner: runtime.runner,
    leaseTtlMs: runtime.leaseTtlMs,
    deriveStatus: (record) => runtime.deriveStatus(record),
    submit: (node, workflowId, metadata) => runtime.submitIfAbsent(node, { workflowId, metadata }),
  })
  const loop = async () => {
    while (!stopping) {
      try {
        // First: the runs a tick creates are taken in this same poll.
        await firing.poll(schedules ?? registeredSchedules(), onSchedule)
      } catch (error) {
        onWorkflow?.({ workflowId: '', outcome: 'ERROR', error })
      }
      try {
        const room = concurrency - mine.size
        if (room > 0) {
          // Claimed side by side, as many at once as there is room (a claim is several requests:
          // one at a time, a worker woke 20 workflows a second on S3).
          let took = 0
          const candidates = await findWork(room)
          let next = 0
          while (!stopping && took < room && next < candidates.length) {
            const batch = candidates.slice(next, next + (room - took))
            next += batch.length
            const taken = await mapLimit(batch, READS_IN_FLIGHT, (work) => take(work))
            took += taken.filter(Boolean).length
          }
        }
        await sweep(Date.now())
      } catch (error) {
        onWorkflow?.({ workflowId: '', outcome: 'ERROR', error })
      }
      if (stopping) break
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
