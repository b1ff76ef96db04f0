// When a schedule's ticks fall: a cron expression (5 fields, or 6 with seconds) in an IANA time
// zone, parsed by croner (never by hand: daylight saving and calendars are its job), or a fixed
// interval counted from the Unix epoch, so every worker computes the same ticks from the spec alone.
//
// Daylight saving, as croner defines it for fixed-time expressions: a tick in the hour that is
// skipped in spring (02:30 on the spring-forward day in Europe/Berlin) fires at the first valid
// time after the gap (03:00); a tick in the hour that repeats in autumn fires once, at its first
// occurrence.

import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import type { Cron } from 'croner'
import { InvalidOptionsError } from '../errors.js'
import { type Duration, parseDuration } from '../util/duration.js'

/** When a schedule fires: `{ cron, timezone? }` or `{ every }`. */
export type ScheduleSpec = { cron: string; timezone?: string } | { every: Duration }

/** A spec as stored in a schedule record: `every` in ms. */
export interface StoredScheduleSpec {
  cron?: string
  timezone?: string
  everyMs?: number
}

/** The ticks of a spec: computed locally, the same on every worker. */
export interface Ticks {
  readonly spec: StoredScheduleSpec
  /** A hash of the spec: two declarations with one hash fire the same ticks. */
  readonly hash: string
  /** The first tick strictly after `after` (ms since the epoch), or `undefined` if there is none. */
  next(after: number): number | undefined
  /** The last tick at or before `at`, or `undefined`. */
  previous(at: number): number | undefined
}

/** Checks a spec and returns its ticks; `InvalidOptionsError` names what is wrong. */
export function ticksOf(spec: ScheduleSpec | StoredScheduleSpec, where: string): Ticks {
  if (typeof spec !== 'object' || spec === null) {
    throw new InvalidOptionsError(`${where}: the spec must be { cron, timezone? } or { every }`)
  }
  const stored = storedSpec(spec, where)
  const hash = createHash('sha256').update(JSON.stringify(stored)).digest('hex').slice(0, 16)
  if (stored.everyMs !== undefined) {
    const every = stored.everyMs
    return {
      spec: stored,
      hash,
      next: (after) => (Math.floor(after / every) + 1) * every,
      previous: (at) => Math.floor(at / every) * every,
    }
  }
  const cron = compile(stored.cron as string, stored.timezone, where)
  return {
    spec: stored,
    hash,
    next: (after) => cron.nextRun(new Date(after))?.getTime(),
    previous: (at) => cron.previousRuns(1, new Date(at + 1))[0]?.getTime(),
  }
}

function storedSpec(spec: ScheduleSpec | StoredScheduleSpec, where: string): StoredScheduleSpec {
  if ('everyMs' in spec && typeof spec.everyMs === 'number') return { everyMs: spec.everyMs }
  if ('every' in spec) {
    if ('cron' in spec) throw new InvalidOptionsError(`${where}: give cron or every, not both`)
    const everyMs = parseDuration(spec.every, `${where}: every`)
    if (everyMs < 1000) throw new InvalidOptionsError(`${where}: every must be at least one second`)
    return { everyMs }
  }
  if (!('cron' in spec) || typeof spec.cron !== 'string') {
    throw new InvalidOptionsError(`${where}: the spec must be { cron, timezone? } or { every }`)
  }
  const { cron, timezone } = spec
  if (timezone !== undefined) {
    if (typeof timezone !== 'string') throw new InvalidOptionsError(`${where}: timezone must be a string`)
    try {
      new Intl.DateTimeFormat('en', { timeZone: timezone })
    } catch {
      throw new InvalidOptionsError(
        `${where}: unknown time zone ${JSON.stringify(timezone)} (use an IANA name such as 'Europe/Berlin')`,
      )
    }
  }
  return timezone === undefined ? { cron: cron.trim() } : { cron: cron.trim(), timezone }
}

/**
 * A run of ticks counted: the `count` ticks strictly after `after` and at or before `until`
 * (counted up to `cap`), the first and the last of them. `undefined` when there is none.
 */
export interface CountedTicks {
  first: number
  last: number
  count: number
}

/**
 * Counts the ticks strictly after `after` and at or before `until`, stopping at `cap` (a
 * per-second schedule down for a day has 86,400: the count says "at least `cap`" then).
 */
export function countTicks(
  ticks: Ticks,
  after: number,
  until: number,
  cap: number,
): CountedTicks | undefined {
  const first = ticks.next(after)
  if (first === undefined || first > until) return undefined
  let count = 0
  let last = first
  for (let t: number | undefined = first; t !== undefined && t <= until && count < cap; t = ticks.next(t)) {
    count++
    last = t
  }
  return { first, last, count }
}

// croner is loaded on the first cron expression compiled, not at start-up: a process that
// declares no cron schedule (most workers, every client) never pays for loading it. Synchronous
// (schedule() is), hence require rather than import(); `import type` keeps its types.
let CronClass: typeof Cron | undefined
function loadCron(): typeof Cron {
  CronClass ??= (createRequire(import.meta.url)('croner') as { Cron: typeof Cron }).Cron
  return CronClass
}

function compile(pattern: string, timezone: string | undefined, where: string): Cron {
  const fields = pattern.trim().split(/\s+/).length
  if (fields !== 5 && fields !== 6) {
    throw new InvalidOptionsError(
      `${where}: a cron expression has 5 fields (minute hour day month weekday), or 6 with seconds first; ${JSON.stringify(pattern)} has ${fields}`,
    )
  }
  const Cron = loadCron()
  try {
    return new Cron(pattern, {
      paused: true,
      mode: '5-or-6-parts',
      ...(timezone === undefined ? { timezone: 'UTC' } : { timezone }),
    })
  } catch (error) {
    throw new InvalidOptionsError(
      `${where}: invalid cron expression ${JSON.stringify(pattern)}: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
}
