// Durable sleep: `sleep(duration)` and `sleepUntil(time)`, built-in nodes resolving to their wake
// time. A sleep is two built-in steps: `wf:sleep` computes the wake time when it first starts and
// returns a `wf:timer` node for it, so the wake time is committed as that continuation (once: a
// resume, a crash or a takeover finds it and never restarts the timer); `wf:timer` completes at
// its wake time. The execution knows timers (it waits for them without a body, and a runner may
// park a workflow whose every running step is one); `sleepUntil` is a timer from the start.

import { InvalidOptionsError } from '../errors.js'
import { type Duration, parseDuration } from '../util/duration.js'
import { builtinStep, type StepDefinition, StepNode } from './step.js'

/**
 * The latest wake time wf can store: due keys hold it in 13 digits (the year 2286), far beyond any
 * real wait, and a `Date` could not hold much more anyway.
 */
export const MAX_WAKE_TIME = 9_999_999_999_999

/** A timer's body is never called: the execution completes a timer node at its wake time. */
const timer: StepDefinition = builtinStep('timer', (wakeAt: number) => wakeAt)

const sleeper: StepDefinition = builtinStep('sleep', (ms: number): StepNode<number> => {
  const wakeAt = Date.now() + ms
  if (wakeAt > MAX_WAKE_TIME) throw new InvalidOptionsError(`sleep(${ms}): the wake time is too far ahead`)
  return new StepNode<number>(timer, [wakeAt], timer.options)
})

/** Whether `definition` is the timer step (`sleepUntil`, and what `sleep` continues into). */
export function isTimerStep(definition: StepDefinition | undefined): boolean {
  return definition === timer
}

/**
 * A node that waits `duration` (milliseconds, or text such as `'90s'`, `'15m'`, `'1h30m'`, `'3d'`)
 * and resolves to its wake time, ms since the epoch. The wake time is computed when the node first
 * starts and committed: a workflow resumed after a crash sleeps only what is left.
 *
 * ```ts
 * const reminder = sendReminder(sleep('3d'), userId)
 * ```
 * A workflow whose steps all sleep longer than the runtime's `parkAfterMs` is parked: no process
 * holds it, and a worker (or the process awaiting it) wakes it at its time.
 */
export function sleep(duration: Duration): StepNode<number> {
  const ms = parseDuration(duration, 'sleep(duration)')
  if (ms > MAX_WAKE_TIME - Date.now()) {
    throw new InvalidOptionsError(
      `sleep(${JSON.stringify(duration)}): the wake time would be past the year 2286`,
    )
  }
  return new StepNode<number>(sleeper, [ms], sleeper.options)
}

/**
 * A node that waits until `time` (a `Date`, or ms since the epoch) and resolves to it. A time
 * already past completes at once.
 */
export function sleepUntil(time: Date | number): StepNode<number> {
  const wakeAt = time instanceof Date ? time.getTime() : time
  if (typeof wakeAt !== 'number' || !Number.isFinite(wakeAt) || wakeAt < 0 || wakeAt > MAX_WAKE_TIME) {
    throw new InvalidOptionsError(
      `sleepUntil(time) needs a valid Date or ms since the epoch (up to ${MAX_WAKE_TIME}), got ${time instanceof Date ? 'an invalid Date' : String(time)}`,
    )
  }
  return new StepNode<number>(timer, [Math.ceil(wakeAt)], timer.options)
}
