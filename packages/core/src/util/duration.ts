// Durations as users write them: a number of milliseconds, or text such as '3d', '90m', '1h30m',
// '1.5h', '500ms'. The grammar is small enough to state, so it is parsed here rather than by a
// dependency: one or more `<number><unit>` parts, summed, where the number is a non-negative
// decimal and the unit one of ms, s, m, h, d, w (a day is 24 hours: durations are exact, not
// calendar days). Spaces between parts are allowed; anything else is refused.

import { InvalidOptionsError } from '../errors.js'

const UNIT_MS: { readonly [unit: string]: number } = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}

const WHOLE = /^\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*)+$/
const PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/g

/** A duration, for error messages and listings. */
export type Duration = number | string

/**
 * A duration in whole milliseconds (fractions are rounded up, so a wait never ends early).
 * `InvalidOptionsError`, naming `what`, for a negative, non-finite or unparsable one.
 */
export function parseDuration(duration: Duration, what = 'duration'): number {
  if (typeof duration === 'number') {
    if (!Number.isFinite(duration) || duration < 0) {
      throw new InvalidOptionsError(
        `${what} must be a finite, non-negative number of milliseconds, got ${String(duration)}`,
      )
    }
    return Math.ceil(duration)
  }
  if (typeof duration !== 'string' || !WHOLE.test(duration)) {
    throw new InvalidOptionsError(
      `${what} must be milliseconds or a duration such as '90s', '15m', '1h30m', '3d' (units ms, s, m, h, d, w), got ${JSON.stringify(duration) ?? String(duration)}`,
    )
  }
  let total = 0
  for (const [, amount, unit] of duration.matchAll(PART)) {
    total += Number(amount) * (UNIT_MS[unit as string] as number)
  }
  if (!Number.isFinite(total)) throw new InvalidOptionsError(`${what} is too long: ${duration}`)
  return Math.ceil(total)
}
