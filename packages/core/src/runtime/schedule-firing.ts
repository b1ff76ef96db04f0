// How workers fire schedules. Each worker computes a schedule's ticks locally from its spec and
// reads the schedule's record only when a tick is due (or, paused, once a lease period), so idle
// schedules cost nothing per poll. A due tick is decided in one compare-and-swap of the record:
// fired (its run id listed under `creating`), skipped (overlap, missed) or buffered. Only then is
// the run created, `<id>@<tick ISO>`, create-if-absent and PENDING for any worker to run; a worker
// that dies in between leaves it under `creating`, and whoever reads the record next creates it.
// Two workers racing: one compare-and-swap wins, the other reads the record again and finds the
// tick handled.
// Over 400 lines: deciding, creating and declaring ticks share the firing state of a worker.

import { createHash } from 'node:crypto'
import { ConditionFailedError } from '../errors.js'
import {
  MAX_SKIPPED,
  type RunnerInfo,
  type ScheduleRecord,
  type SkippedTick,
  type Versioned,
  type WorkflowRecord,
  type WorkflowStatus,
} from '../model/records.js'
import { countTicks, ticksOf } from '../model/schedule-spec.js'
import type { ScheduleDefinition } from '../step/schedule.js'
import type { StepNode } from '../step/step.js'
import {
  createSchedule,
  deleteDeclaration,
  readDeclarations,
  readSchedule,
  updateSchedule,
  writeDeclaration,
} from '../store/schedules.js'
import type { WorkflowStore } from '../store/store.js'

/** At most this many ticks of one schedule fire in one poll (catch-up `'all'`): the rest at the next. */
const MAX_FIRED_PER_POLL = 100
/** Missed ticks are counted up to this many (a per-second schedule down for a day misses 86,400). */
export const MAX_COUNTED = 10_000
const MAX_ROUNDS = 16
/** At most this many schedules are fired at once in one poll. */
const FIRE_SIDE_BY_SIDE = 8
/** A worker renews its declarations every this many lease periods; they count for three times that. */
export const DECLARATION_RENEW_LEASES = 10

/** What happened to a tick (reported to `createWorker`'s `onSchedule`). */
export interface ScheduleEvent {
  scheduleId: string
  tick: number
  outcome: 'FIRED' | 'SKIPPED' | 'BUFFERED'
  runId?: string
  reason?: SkippedTick['reason']
  count?: number
}

/** What firing needs from its runtime. */
export interface FiringContext {
  store(): Promise<WorkflowStore>
  readonly runner: RunnerInfo
  readonly leaseTtlMs: number
  deriveStatus(record: WorkflowRecord): WorkflowStatus
  /**
   * Stores the run PENDING unless a workflow with its id exists; resolves to `false` when one did
   * (another worker created it: this one does not report it fired).
   */
  submit(node: StepNode, workflowId: string, metadata: WorkflowRecord['metadata']): Promise<unknown>
}

/** The run id of a schedule's tick: `<scheduleId>@<tick in ISO 8601 UTC>`. */
export function runIdOf(scheduleId: string, tick: number): string {
  return `${scheduleId}@${new Date(tick).toISOString()}`
}

/**
 * When a tick's run is created under `jitter`: its tick plus a delay below `jitterMs` drawn from
 * the schedule id and the tick, so every worker computes the same, and the one stored in the
 * record with the decision to fire holds however many workers die before it comes.
 */
export function jitteredDueAt(scheduleId: string, tick: number, jitterMs: number): number {
  if (jitterMs <= 0) return tick
  const digest = createHash('sha256').update(`${scheduleId}@${tick}`).digest()
  return tick + Math.floor((digest.readUIntBE(0, 6) / 2 ** 48) * jitterMs)
}

interface Known {
  lastTick: number
  paused: boolean
  busy: boolean
  readAt: number
  /** The earliest `dueAt` of a run waiting under `creating` (jitter): the record is read then. */
  wakeAt?: number
}

export class ScheduleFiring {
  readonly #context: FiringContext
  readonly #now: () => number
  readonly #known = new Map<string, Known>()
  readonly #startedAt: number

  constructor(context: FiringContext, now: () => number = Date.now) {
    this.#context = context
    this.#now = now
    this.#startedAt = now()
  }

  #declared: { hashes: string; schedules: { [id: string]: string }; at: number } | undefined

  /**
   * Writes this worker's declarations when they changed or are due for renewal (one write every
   * `DECLARATION_RENEW_LEASES` lease periods, however many schedules).
   */
  async #declare(definitions: readonly ScheduleDefinition[], now: number): Promise<void> {
    const schedules: { [id: string]: string } = {}
    for (const d of definitions) schedules[d.id] = d.ticks.hash
    const hashes = JSON.stringify(schedules)
    const renewMs = DECLARATION_RENEW_LEASES * this.#context.leaseTtlMs
    if (this.#declared && this.#declared.hashes === hashes && now - this.#declared.at < renewMs) return
    await this.#writeDeclaration(schedules, now, now + 3 * renewMs)
    // Renewals are rare (every few minutes): they also clear declarations long expired.
    if (this.#declared) await this.#sweepDeclarations(now).catch(() => {})
    this.#declared = { hashes, schedules, at: now }
  }

  async #writeDeclaration(
    schedules: { [id: string]: string },
    now: number,
    expiresAt: number,
  ): Promise<void> {
    const store = await this.#context.store()
    await writeDeclaration(store, {
      v: 1,
      runner: this.#context.runner,
      startedAt: this.#startedAt,
      updatedAt: now,
      expiresAt,
      schedules,
    })
  }

  /**
   * Ends this worker's declarations (a worker that stops): kept, expired, so that a schedule no
   * worker declares any more still says who declared it last and until when. Best effort.
   */
  async retire(): Promise<void> {
    const declared = this.#declared
    if (!declared) return
    this.#declared = undefined
    const now = this.#now()
    await this.#writeDeclaration(declared.schedules, now, now).catch(() => {})
  }

  /** Deletes the declarations of workers gone for more than a day. */
  async #sweepDeclarations(now: number): Promise<void> {
    const store = await this.#context.store()
    for (const record of await readDeclarations(store)) {
      if (record.expiresAt < now - 86_400_000) await deleteDeclaration(store, record.runner.runnerId)
    }
  }

  /** Fires the due ticks of `definitions`; reads no record of a schedule with nothing due. */
  async poll(
    definitions: readonly ScheduleDefinition[],
    report?: (event: ScheduleEvent) => void,
  ): Promise<void> {
    if (definitions.length > 0) await this.#declare(definitions, this.#now())
    const due: ScheduleDefinition[] = []
    const now = this.#now()
    for (const definition of definitions) {
      const known = this.#known.get(definition.id)
      if (known && !known.busy) {
        if (known.paused) {
          if (now - known.readAt < this.#context.leaseTtlMs) continue
        } else {
          const next = definition.ticks.next(known.lastTick)
          const at = Math.min(next ?? Number.POSITIVE_INFINITY, known.wakeAt ?? Number.POSITIVE_INFINITY)
          if (at > now) continue
        }
      }
      due.push(definition)
    }
    // Several schedules side by side: one after the other, ten per-second schedules took a poll
    // longer than a second on S3 (a tick is four to six requests), and their ticks came late.
    let next = 0
    const failures: unknown[] = []
    const lane = async () => {
      while (next < due.length) {
        const definition = due[next++] as ScheduleDefinition
        try {
          await this.#fire(definition, this.#now(), report)
        } catch (error) {
          failures.push(error)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(FIRE_SIDE_BY_SIDE, due.length) }, lane))
    if (failures.length > 0) throw failures[0]
  }

  async #fire(
    definition: ScheduleDefinition,
    now: number,
    report: ((event: ScheduleEvent) => void) | undefined,
  ): Promise<void> {
    const store = await this.#context.store()
    for (let round = 0; round < MAX_ROUNDS; round++) {
      let found = await readSchedule(store, definition.id)
      if (!found) {
        // A new schedule starts now: ticks before its first record are not missed ones.
        const start = definition.ticks.previous(now) ?? now
        try {
          found = await createSchedule(store, this.#newRecord(definition, start, now))
        } catch (error) {
          if (error instanceof ConditionFailedError) continue
          throw error
        }
      }
      const outcome = await this.#decide(definition, found.record, now)
      if (outcome === undefined) {
        if (found.record.creating?.length) await this.#createRuns(definition, found, report)
        this.#remember(definition.id, found.record, now)
        return
      }
      let written: Versioned<ScheduleRecord>
      try {
        written = await updateSchedule(store, found, outcome.record)
      } catch (error) {
        if (error instanceof ConditionFailedError) continue
        throw error
      }
      // A run is reported fired once its workflow exists, by the worker that created it.
      for (const event of outcome.events) report?.(event)
      await this.#createRuns(definition, written, report)
      return
    }
  }

  #newRecord(definition: ScheduleDefinition, lastTick: number, now: number): ScheduleRecord {
    const record: ScheduleRecord = {
      v: 1,
      scheduleId: definition.id,
      spec: definition.ticks.spec,
      specHash: definition.ticks.hash,
      overlap: definition.overlap,
      catchUp: definition.catchUp,
      createdAt: now,
      updatedAt: now,
      paused: false,
      lastTick,
      skipped: [],
      declaredBy: { runner: this.#context.runner, at: this.#startedAt },
    }
    const next = definition.ticks.next(lastTick)
    if (next !== undefined) record.nextTick = next
    return record
  }

  /**
   * What to write for the ticks due now (`undefined`: nothing to change): the ticks to fire,
   * those skipped (missed, overlap) or buffered, decided from this read of the record alone.
   */
  async #decide(
    definition: ScheduleDefinition,
    record: ScheduleRecord,
    now: number,
  ): Promise<{ record: ScheduleRecord; events: ScheduleEvent[] } | undefined> {
    // A newer declaration than this worker's (a deploy under way, this worker the old version)
    // decides when ticks fall: the stored spec.
    const newer = record.specHash !== definition.ticks.hash && (record.declaredBy?.at ?? 0) > this.#startedAt
    const ticks = newer ? ticksOf(record.spec, `schedule ${record.scheduleId}`) : definition.ticks
    const next: ScheduleRecord = { ...record, skipped: [...record.skipped] }
    let changed = false
    // A newer declaration (a worker started later: a deploy) replaces the stored spec.
    if (record.specHash !== ticks.hash && (record.declaredBy?.at ?? 0) <= this.#startedAt) {
      next.spec = ticks.spec
      next.specHash = ticks.hash
      next.overlap = definition.overlap
      next.catchUp = definition.catchUp
      next.declaredBy = { runner: this.#context.runner, at: this.#startedAt }
      changed = true
    }
    if (record.paused) return changed ? { record: next, events: [] } : undefined
    const events: ScheduleEvent[] = []
    const skip = (tick: number, reason: SkippedTick['reason'], until?: number, count?: number) => {
      const entry: SkippedTick = { tick, reason, at: now }
      if (until !== undefined && count !== undefined && count > 1) {
        entry.until = until
        entry.count = count
      }
      next.skipped.push(entry)
      events.push({
        scheduleId: definition.id,
        tick,
        outcome: 'SKIPPED',
        reason,
        ...(count ? { count } : {}),
      })
    }
    let fire: number[] = []
    const latest = ticks.previous(now)
    if (latest !== undefined && latest > record.lastTick) {
      const windowStart = now - definition.catchUpWindowMs
      if (definition.catchUp === 'all') {
        let missed = 0
        let firstMissed: number | undefined
        let lastMissed = record.lastTick
        let t = ticks.next(record.lastTick)
        while (t !== undefined && t <= latest && fire.length < MAX_FIRED_PER_POLL) {
          if (t >= windowStart) fire.push(t)
          else if (missed < MAX_COUNTED) {
            missed++
            firstMissed ??= t
            lastMissed = t
          } else {
            t = ticks.previous(windowStart - 1) ?? t
          }
          t = ticks.next(t)
        }
        if (firstMissed !== undefined) skip(firstMissed, 'missed', lastMissed, missed)
        next.lastTick = fire.length > 0 ? (fire[fire.length - 1] as number) : latest
      } else {
        // The ticks before the latest are missed; the latest runs if it is not too late.
        const missed = countTicks(ticks, record.lastTick, latest - 1, MAX_COUNTED)
        if (missed) skip(missed.first, 'missed', missed.last, missed.count)
        if (latest >= windowStart) fire.push(latest)
        else skip(latest, 'missed')
        next.lastTick = latest
      }
      changed = true
    }
    // Overlap: against the previous run, as this read of the record names it.
    if (
      (fire.length > 0 || record.buffered !== undefined) &&
      definition.overlap !== 'allow' &&
      record.lastRun
    ) {
      const running = await this.#stillRunning(record.lastRun, record)
      if (running) {
        if (definition.overlap === 'skip') {
          for (const tick of fire) skip(tick, 'overlap')
        } else {
          // buffer-one: the newest tick waits for the previous run; the one it replaces is skipped.
          const waiting = [...(record.buffered === undefined ? [] : [record.buffered]), ...fire]
          const keep = waiting.pop() as number
          for (const tick of waiting) skip(tick, 'overlap')
          if (keep !== record.buffered)
            events.push({ scheduleId: definition.id, tick: keep, outcome: 'BUFFERED' })
          next.buffered = keep
          changed = changed || keep !== record.buffered
        }
        fire = []
      } else if (record.buffered !== undefined) {
        // The previous run ended: the buffered tick runs now, and a tick due as well waits for it.
        const newest = fire.pop()
        fire = [record.buffered]
        delete next.buffered
        if (newest !== undefined) next.buffered = newest
        changed = true
      }
    }
    if (!changed && fire.length === 0) return undefined
    if (fire.length > 0) {
      next.creating = [
        ...(record.creating ?? []),
        ...fire.map((tick) => {
          const entry: { runId: string; tick: number; dueAt?: number } = {
            runId: runIdOf(definition.id, tick),
            tick,
          }
          if (definition.jitterMs > 0) entry.dueAt = jitteredDueAt(definition.id, tick, definition.jitterMs)
          return entry
        }),
      ]
      next.lastRun = runIdOf(definition.id, fire[fire.length - 1] as number)
    }
    if (next.skipped.length > MAX_SKIPPED) next.skipped = next.skipped.slice(-MAX_SKIPPED)
    const upcoming = ticks.next(next.lastTick)
    if (upcoming === undefined) delete next.nextTick
    else next.nextTick = upcoming
    return { record: next, events }
  }

  /** Whether a run counts as still going: RUNNING, PENDING (parked too) or RESUMABLE. */
  async #stillRunning(runId: string, record: ScheduleRecord): Promise<boolean> {
    if (record.creating?.some((c) => c.runId === runId)) return true
    const store = await this.#context.store()
    const found = await store.readWorkflow(runId).catch(() => undefined)
    if (!found) return false
    const status = this.#context.deriveStatus(found.record)
    return status === 'RUNNING' || status === 'PENDING' || status === 'RESUMABLE'
  }

  /**
   * Creates the runs the record lists under `creating` whose time has come (create-if-absent),
   * then takes them off the list; a run waiting for its jittered `dueAt` stays on it, for whoever
   * reads the record then. Reports FIRED for each run this call created.
   */
  async #createRuns(
    definition: ScheduleDefinition,
    found: Versioned<ScheduleRecord>,
    report: ((event: ScheduleEvent) => void) | undefined,
  ): Promise<void> {
    const now = this.#now()
    const creating = (found.record.creating ?? []).filter((c) => (c.dueAt ?? c.tick) <= now)
    if (creating.length === 0) {
      this.#remember(definition.id, found.record, now)
      return
    }
    for (const { runId, tick } of creating) {
      const created = await this.#context.submit(definition.build(new Date(tick)), runId, {
        ...definition.metadata,
        schedule: definition.id,
        scheduledFor: new Date(tick).toISOString(),
      })
      if (created !== false) report?.({ scheduleId: definition.id, tick, outcome: 'FIRED', runId })
    }
    const store = await this.#context.store()
    let current: Versioned<ScheduleRecord> | undefined = found
    // Cleared by compare-and-swap; a record that changed meanwhile is cleared by its next writer.
    for (let round = 0; current && round < 4; round++) {
      const left = (current.record.creating ?? []).filter((c) => !creating.some((d) => d.runId === c.runId))
      const next: ScheduleRecord = { ...current.record }
      if (left.length > 0) next.creating = left
      else delete next.creating
      try {
        const written = await updateSchedule(store, current, next)
        this.#remember(definition.id, written.record, this.#now())
        return
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error
        current = await readSchedule(store, definition.id)
      }
    }
  }

  #remember(scheduleId: string, record: ScheduleRecord, now: number): void {
    const creating = record.creating ?? []
    const waiting = creating.filter((c) => (c.dueAt ?? c.tick) > now).map((c) => c.dueAt as number)
    const known: Known = {
      lastTick: record.lastTick,
      paused: record.paused,
      busy: record.buffered !== undefined || creating.length > waiting.length,
      readAt: now,
    }
    if (waiting.length > 0) known.wakeAt = Math.min(...waiting)
    this.#known.set(scheduleId, known)
  }
}
