// `schedule(id, spec, build, options)`: a recurring workflow declared in code beside its steps.
// Registered in this process, as steps are; workers (`createWorker`, `wf worker --import`) fire
// every registered schedule, each tick as its own workflow `<id>@<tick in ISO 8601 UTC>`.

import { InvalidOptionsError } from '../errors.js'
import { validateMetadata } from '../model/ids.js'
import type { Json } from '../model/json.js'
import { type ScheduleSpec, type Ticks, ticksOf } from '../model/schedule-spec.js'
import { type Duration, parseDuration } from '../util/duration.js'
import { isStepNode, type StepNode } from './step.js'

/** What a tick does when the schedule's previous run is still RUNNING, PENDING or RESUMABLE. */
export type OverlapPolicy = 'skip' | 'allow' | 'buffer-one'
/** Which missed ticks run after a time when no worker fired (an outage, a pause of every worker). */
export type CatchUpPolicy = 'none' | 'latest' | 'all'

/** Options of `schedule()`. */
export interface ScheduleOptions {
  /**
   * `'skip'` (default): a tick whose previous run is still going is skipped, and recorded so.
   * `'allow'`: it runs anyway. `'buffer-one'`: it runs once the previous run ends (one tick waits;
   * more are skipped).
   */
  overlap?: OverlapPolicy
  /**
   * `'latest'` (default): after downtime, the most recent missed tick runs once, the others are
   * recorded skipped. `'none'`: missed ticks are skipped (a tick counts as missed when fired more
   * than `catchUpWindow` late). `'all'`: every missed tick within `catchUpWindow` runs.
   */
  catchUp?: CatchUpPolicy
  /** How far back missed ticks are caught up. Default: one day for `'all'` and `'latest'`, one minute for `'none'`. */
  catchUpWindow?: Duration
  /** Metadata of every run (the tick time is added as `scheduledFor`). */
  metadata?: { [key: string]: Json }
  /**
   * Start each run up to this much later than its tick (its id keeps the nominal tick). The delay
   * is drawn from the schedule id and the tick, the same on every worker, and stored with the
   * decision to fire: a worker that dies before it is over neither loses nor doubles the run.
   */
  jitter?: Duration
}

/** A registered schedule. */
export interface ScheduleDefinition {
  readonly id: string
  readonly ticks: Ticks
  readonly build: (tick: Date) => StepNode
  readonly overlap: OverlapPolicy
  readonly catchUp: CatchUpPolicy
  readonly catchUpWindowMs: number
  readonly jitterMs: number
  readonly metadata: { [key: string]: Json }
}

const schedules = new Map<string, ScheduleDefinition>()

const SCHEDULE_ID = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$/

/**
 * Declares a recurring workflow: at each tick of `spec`, the workflow `build(tick)` runs as
 * `<id>@<tick in ISO 8601 UTC>`, exactly once however many workers poll.
 *
 * ```ts
 * schedule('nightly-report', { cron: '0 3 * * *', timezone: 'Europe/Berlin' }, (tick) => report(tick.toISOString()))
 * schedule('sync', { every: '15m' }, () => syncAll(), { overlap: 'skip' })
 * ```
 * A cron expression without `timezone` is read in UTC. `every` ticks are counted from the Unix epoch.
 */
export function schedule(
  id: string,
  spec: ScheduleSpec,
  build: (tick: Date) => StepNode,
  options: ScheduleOptions = {},
): ScheduleDefinition {
  const where = `schedule(${JSON.stringify(id) ?? String(id)})`
  validateScheduleId(id, where)
  if (schedules.has(id)) {
    throw new InvalidOptionsError(`${where}: a schedule with this id is already declared in this process`)
  }
  const ticks = ticksOf(spec, where)
  if (typeof build !== 'function')
    throw new InvalidOptionsError(`${where}: build must be a function (tick) => StepNode`)
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionsError(`${where}: options must be an object`)
  const overlap = options.overlap ?? 'skip'
  if (!['skip', 'allow', 'buffer-one'].includes(overlap)) {
    throw new InvalidOptionsError(`${where}: overlap must be 'skip', 'allow' or 'buffer-one'`)
  }
  const catchUp = options.catchUp ?? 'latest'
  if (!['none', 'latest', 'all'].includes(catchUp)) {
    throw new InvalidOptionsError(`${where}: catchUp must be 'none', 'latest' or 'all'`)
  }
  const catchUpWindowMs =
    options.catchUpWindow === undefined
      ? catchUp === 'none'
        ? 60_000
        : 86_400_000
      : parseDuration(options.catchUpWindow, `${where}: catchUpWindow`)
  const jitterMs = options.jitter === undefined ? 0 : parseDuration(options.jitter, `${where}: jitter`)
  const metadata = options.metadata ?? {}
  validateMetadata(metadata, where)
  const definition: ScheduleDefinition = Object.freeze({
    id,
    ticks,
    build: (tick: Date) => {
      const node = build(tick)
      if (!isStepNode(node)) throw new InvalidOptionsError(`${where}: build(tick) must return a StepNode`)
      return node
    },
    overlap,
    catchUp,
    catchUpWindowMs,
    jitterMs,
    metadata,
  })
  schedules.set(id, definition)
  return definition
}

/** Throws `InvalidOptionsError` unless `id` can name a schedule. */
export function validateScheduleId(id: unknown, where = 'schedule id'): asserts id is string {
  if (typeof id !== 'string' || !SCHEDULE_ID.test(id)) {
    throw new InvalidOptionsError(
      `${where}: a schedule id has 1 to 100 letters, digits, "_", ".", ":" and "-", starting with a letter, digit or "_", got ${JSON.stringify(id) ?? String(id)}`,
    )
  }
}

/** The schedules declared in this process. */
export function registeredSchedules(): ScheduleDefinition[] {
  return [...schedules.values()]
}

/** The schedule declared in this process under `id`, if any. */
export function registeredSchedule(id: string): ScheduleDefinition | undefined {
  return schedules.get(id)
}

/** Forgets a declared schedule (tests, and code that declares schedules at run time). */
export function unschedule(id: string): boolean {
  return schedules.delete(id)
}
