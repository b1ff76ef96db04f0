// Schedules as the management API shows them: their stored records (spec, paused, last and next
// tick, skipped ticks), the spec in words (cronstrue), the next fire times, and runs started by
// hand. The records and their keys are core's (`@wf/core/internal`).

import {
  type DeclarationRecord,
  InvalidOptionsError,
  type Runtime,
  registeredSchedule,
  type ScheduleRecord,
  type SkippedTick,
  type StoredScheduleSpec,
  validateScheduleId,
} from '@wf/core'
import {
  backfillRuns,
  deleteScheduleRecord,
  listScheduleRecords,
  readDeclarations,
  readScheduleRecord,
  setSchedulePaused,
  triggerRun,
  upcomingTicks,
} from '@wf/core/internal'
import cronstrue from 'cronstrue'
import { ScheduleNotDeclaredError, ScheduleNotFoundError } from './errors.js'

/** A schedule as `listSchedules` and `getSchedule` return it. */
export interface ScheduleInfo {
  scheduleId: string
  spec: StoredScheduleSpec
  /** The spec in words: `At 03:00, Europe/Berlin`, `Every 15 minutes`. */
  description: string
  paused: boolean
  overlap: string
  catchUp: string
  /** The last tick handled (fired or skipped), ms since the epoch. */
  lastTick: number
  /** The id of the last run fired. */
  lastRun?: string
  /** The next tick. */
  nextTick?: number
  /** A tick waiting for the previous run to end (overlap `'buffer-one'`). */
  buffered?: number
  /** The last skipped ticks and why. */
  skipped: SkippedTick[]
  /** Whether this process declares it (`schedule()`): only then can it be triggered or backfilled here. */
  declaredHere: boolean
  /** Whether a live worker declares it (fires it). */
  declared: boolean
  /** The live workers that declare it, and whether their spec is the stored one. */
  workers: Array<{ host: string; pid: number; startedAt: number; sameSpec: boolean }>
  /** When no live worker declares it: the last worker that did, and since when it is not declared. */
  undeclared?: { host: string; pid: number; since: number }
  /** The worker whose declaration the record holds, and when it started. */
  declaredBy?: { host: string; pid: number; at: number }
  /** With `getSchedule`: the next fire times. */
  upcoming?: number[]
}

/** The spec in words. */
export function describeSpec(spec: StoredScheduleSpec): string {
  if (spec.everyMs !== undefined) return `Every ${everyText(spec.everyMs)}`
  let words: string
  try {
    words = cronstrue.toString(spec.cron ?? '', { use24HourTimeFormat: true })
  } catch {
    words = spec.cron ?? ''
  }
  return `${words}, ${spec.timezone ?? 'UTC'}`
}

function everyText(ms: number): string {
  const units: [number, string][] = [
    [604_800_000, 'week'],
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1000, 'second'],
  ]
  for (const [size, name] of units) {
    if (ms % size === 0) {
      const n = ms / size
      return n === 1 ? name : `${n} ${name}s`
    }
  }
  return `${ms} ms`
}

function info(record: ScheduleRecord, declarations: readonly DeclarationRecord[], now: number): ScheduleInfo {
  const listing = declarations.filter((d) => d.schedules[record.scheduleId] !== undefined)
  const live = listing.filter((d) => d.expiresAt > now)
  const out: ScheduleInfo = {
    scheduleId: record.scheduleId,
    spec: record.spec,
    description: describeSpec(record.spec),
    paused: record.paused,
    overlap: record.overlap,
    catchUp: record.catchUp,
    lastTick: record.lastTick,
    skipped: record.skipped,
    declaredHere: registeredSchedule(record.scheduleId) !== undefined,
    declared: live.length > 0,
    workers: live.map((d) => ({
      host: d.runner.host,
      pid: d.runner.pid,
      startedAt: d.startedAt,
      sameSpec: d.schedules[record.scheduleId] === record.specHash,
    })),
  }
  if (live.length === 0) {
    const last = listing.reduce<DeclarationRecord | undefined>(
      (a, d) => (a && a.expiresAt >= d.expiresAt ? a : d),
      undefined,
    )
    if (last) out.undeclared = { host: last.runner.host, pid: last.runner.pid, since: last.expiresAt }
  }
  if (record.lastRun !== undefined) out.lastRun = record.lastRun
  if (record.nextTick !== undefined) out.nextTick = record.nextTick
  if (record.buffered !== undefined) out.buffered = record.buffered
  if (record.declaredBy) {
    const { runner, at } = record.declaredBy
    out.declaredBy = { host: runner.host, pid: runner.pid, at }
  }
  return out
}

export async function listSchedules(runtime: Runtime): Promise<ScheduleInfo[]> {
  const store = await runtime.store()
  const declarations = await readDeclarations(store)
  const now = Date.now()
  return (await listScheduleRecords(store)).map((found) => info(found.record, declarations, now))
}

export async function getSchedule(runtime: Runtime, scheduleId: string, upcoming = 5): Promise<ScheduleInfo> {
  validateScheduleId(scheduleId)
  if (!Number.isInteger(upcoming) || upcoming < 0 || upcoming > 1000) {
    throw new InvalidOptionsError('getSchedule upcoming must be an integer from 0 to 1,000')
  }
  const store = await runtime.store()
  const found = await readScheduleRecord(store, scheduleId)
  if (!found) throw new ScheduleNotFoundError(scheduleId)
  const out = info(found.record, await readDeclarations(store), Date.now())
  out.upcoming = upcomingTicks(found.record, Math.max(found.record.lastTick, Date.now()), upcoming)
  return out
}

export async function pauseSchedule(
  runtime: Runtime,
  scheduleId: string,
  paused: boolean,
): Promise<ScheduleInfo> {
  validateScheduleId(scheduleId)
  const record = await setSchedulePaused(await runtime.store(), scheduleId, paused)
  if (!record) throw new ScheduleNotFoundError(scheduleId)
  return info(record, await readDeclarations(await runtime.store()), Date.now())
}

export async function deleteSchedule(runtime: Runtime, scheduleId: string): Promise<void> {
  validateScheduleId(scheduleId)
  if (!(await deleteScheduleRecord(await runtime.store(), scheduleId)))
    throw new ScheduleNotFoundError(scheduleId)
}

function declared(scheduleId: string) {
  validateScheduleId(scheduleId)
  const definition = registeredSchedule(scheduleId)
  if (!definition) throw new ScheduleNotDeclaredError(scheduleId)
  return definition
}

export function triggerSchedule(runtime: Runtime, scheduleId: string): Promise<string> {
  return triggerRun(declared(scheduleId), (node, workflowId, metadata) =>
    runtime.submitIfAbsent(node, { workflowId, metadata }),
  )
}

export function backfillSchedule(
  runtime: Runtime,
  scheduleId: string,
  from: number,
  to: number,
): Promise<{ created: string[]; existing: string[] }> {
  return backfillRuns(
    declared(scheduleId),
    (node, workflowId, metadata) => runtime.submitIfAbsent(node, { workflowId, metadata }),
    from,
    to,
  )
}
