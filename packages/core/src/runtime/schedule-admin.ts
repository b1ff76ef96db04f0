// Managing schedules from any process (@wf/client's `listSchedules`, `pauseSchedule`…, the
// `wf schedules` commands): their records, paused and resumed by compare-and-swap, and runs started
// by hand (trigger, backfill), which need the schedule's declaration (`schedule()`) in the process.

import { ConditionFailedError, InvalidOptionsError, StorageUnavailableError } from '../errors.js'
import { MAX_SKIPPED, type ScheduleRecord, type Versioned } from '../model/records.js'
import { countTicks, ticksOf } from '../model/schedule-spec.js'
import type { ScheduleDefinition } from '../step/schedule.js'
import type { StepNode } from '../step/step.js'
import { deleteSchedule, listScheduleIds, readSchedule, updateSchedule } from '../store/schedules.js'
import type { WorkflowStore } from '../store/store.js'
import { MAX_COUNTED, runIdOf } from './schedule-firing.js'

/** The ids of every stored schedule, and their records (a record that cannot be read is `undefined`). */
export async function listScheduleRecords(store: WorkflowStore): Promise<Array<Versioned<ScheduleRecord>>> {
  const found: Array<Versioned<ScheduleRecord>> = []
  for (const id of await listScheduleIds(store)) {
    const read = await readSchedule(store, id)
    if (read) found.push(read)
  }
  return found
}

export { readSchedule as readScheduleRecord }

/** The next `count` ticks after `after` of a stored schedule's spec. */
export function upcomingTicks(record: ScheduleRecord, after: number, count: number): number[] {
  const ticks = ticksOf(record.spec, `schedule ${record.scheduleId}`)
  const out: number[] = []
  for (let t = ticks.next(after); t !== undefined && out.length < count; t = ticks.next(t)) out.push(t)
  return out
}

/**
 * Pauses or resumes a schedule (compare-and-swap, retried). A resumed schedule starts from now: the
 * ticks of the pause are recorded skipped (`paused`), never caught up. `undefined`: no such schedule.
 */
export async function setSchedulePaused(
  store: WorkflowStore,
  scheduleId: string,
  paused: boolean,
  now = Date.now(),
): Promise<ScheduleRecord | undefined> {
  for (let round = 0; round < 16; round++) {
    const found = await readSchedule(store, scheduleId)
    if (!found) return undefined
    if (found.record.paused === paused) return found.record
    const next: ScheduleRecord = { ...found.record, paused, skipped: [...found.record.skipped] }
    if (!paused) {
      const ticks = ticksOf(found.record.spec, `schedule ${scheduleId}`)
      const latest = ticks.previous(now)
      const missed =
        latest === undefined ? undefined : countTicks(ticks, found.record.lastTick, latest, MAX_COUNTED)
      if (latest !== undefined && missed) {
        next.skipped.push({
          tick: missed.first,
          until: latest,
          count: missed.count,
          reason: 'paused',
          at: now,
        })
        next.skipped = next.skipped.slice(-MAX_SKIPPED)
        next.lastTick = latest
        const upcoming = ticks.next(latest)
        if (upcoming !== undefined) next.nextTick = upcoming
      }
    }
    try {
      return (await updateSchedule(store, found, next)).record
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error
    }
  }
  throw new StorageUnavailableError(
    `could not update schedule "${scheduleId}": its record changed at every attempt`,
  )
}

export async function deleteScheduleRecord(store: WorkflowStore, scheduleId: string): Promise<boolean> {
  if (!(await readSchedule(store, scheduleId))) return false
  await deleteSchedule(store, scheduleId)
  return true
}

/** Submits a run of a declared schedule (PENDING, created if absent); resolves to whether it created it. */
export type SubmitRun = (
  node: StepNode,
  workflowId: string,
  metadata: { [key: string]: string },
) => Promise<boolean>

/** A run by hand: `<id>@manual-<now ISO>`, for the tick `now`. */
export async function triggerRun(
  definition: ScheduleDefinition,
  submit: SubmitRun,
  now = Date.now(),
): Promise<string> {
  const workflowId = `${definition.id}@manual-${new Date(now).toISOString()}`
  await submit(definition.build(new Date(now)), workflowId, {
    schedule: definition.id,
    scheduledFor: new Date(now).toISOString(),
    trigger: 'manual',
  })
  return workflowId
}

/** At most this many runs per backfill call. */
export const MAX_BACKFILL = 1000

/**
 * One run per tick of the schedule in `[from, to]`, with the ids its ticks have (`<id>@<tick>`): a
 * tick that ran or was backfilled before is not run again.
 */
export async function backfillRuns(
  definition: ScheduleDefinition,
  submit: SubmitRun,
  from: number,
  to: number,
): Promise<{ created: string[]; existing: string[] }> {
  if (!Number.isFinite(from) || !Number.isFinite(to) || from > to) {
    throw new InvalidOptionsError('backfill needs from <= to, as Dates or ms since the epoch')
  }
  const ticks: number[] = []
  for (let t = definition.ticks.next(from - 1); t !== undefined && t <= to; t = definition.ticks.next(t)) {
    ticks.push(t)
    if (ticks.length > MAX_BACKFILL) {
      throw new InvalidOptionsError(`backfill covers more than ${MAX_BACKFILL} ticks: split the range`)
    }
  }
  const created: string[] = []
  const existing: string[] = []
  for (const tick of ticks) {
    const workflowId = runIdOf(definition.id, tick)
    const made = await submit(definition.build(new Date(tick)), workflowId, {
      schedule: definition.id,
      scheduledFor: new Date(tick).toISOString(),
      trigger: 'backfill',
    })
    ;(made ? created : existing).push(workflowId)
  }
  return { created, existing }
}
