// Waiting for an event from outside: `waitForEvent(name, { timeout? })`, a built-in node that takes
// the next event of that name sent to the workflow (`sendEvent`), in the order events were
// accepted, each event taken by one waiting node. With a timeout, the deadline is computed when the
// node first starts and committed (`wf:event-deadline` continues into `wf:receive` with it, as a
// sleep continues into its timer), so a resume never restarts it; the node then resolves to
// `{ received: true, value }` or `{ received: false }`. The execution takes the events (inbox.ts).

import { InvalidOptionsError } from '../errors.js'
import { validateEventName } from '../model/ids.js'
import { type Duration, parseDuration } from '../util/duration.js'
import { MAX_WAKE_TIME } from './sleep.js'
import { builtinStep, type StepDefinition, StepNode } from './step.js'

/** What `waitForEvent(name, { timeout })` resolves to. */
export type EventResult<T> = { received: true; value: T } | { received: false }

/** Options of `waitForEvent`. */
export interface WaitForEventOptions {
  /** Give up after this long (ms, or a duration such as `'15m'`, `'3d'`): the node resolves to `{ received: false }`. */
  timeout?: Duration
}

/** Never called: the execution completes a receiving node with the event it takes. */
const receive: StepDefinition = builtinStep('receive', () => undefined)

const withDeadline: StepDefinition = builtinStep(
  'event-deadline',
  (name: string, timeoutMs: number): StepNode => {
    const deadline = Date.now() + timeoutMs
    if (deadline > MAX_WAKE_TIME)
      throw new InvalidOptionsError(`waitForEvent timeout ${timeoutMs}: too far ahead`)
    return new StepNode(receive, [name, deadline], receive.options)
  },
)

/** Whether `definition` is the receiving step (what `waitForEvent` becomes). */
export function isReceiveStep(definition: StepDefinition | undefined): boolean {
  return definition === receive
}

/**
 * A node that waits for the next event `name` sent to this workflow (`sendEvent` in @wf/client,
 * `wf send`) and resolves to its payload. An event sent before the node starts waits in the
 * workflow's inbox; each event is taken by one waiting node, in the order events were accepted.
 *
 * ```ts
 * const approved = ship(waitForEvent<{ by: string }>('approval'), orderId)
 * const answer = decide(waitForEvent<boolean>('reply', { timeout: '3d' })) // { received, value? }
 * ```
 */
export function waitForEvent<T = unknown>(name: string): StepNode<T>
export function waitForEvent<T = unknown>(
  name: string,
  options: WaitForEventOptions & { timeout: Duration },
): StepNode<EventResult<T>>
export function waitForEvent<T = unknown>(
  name: string,
  options?: WaitForEventOptions,
): StepNode<T> | StepNode<EventResult<T>>
export function waitForEvent<T = unknown>(
  name: string,
  options: WaitForEventOptions = {},
): StepNode<T> | StepNode<EventResult<T>> {
  validateEventName(name, 'waitForEvent(name)')
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('waitForEvent(name, options): options must be an object')
  }
  if (options.timeout === undefined) return new StepNode<T>(receive, [name, null], receive.options)
  const timeoutMs = parseDuration(options.timeout, 'waitForEvent timeout')
  if (timeoutMs > MAX_WAKE_TIME - Date.now()) {
    throw new InvalidOptionsError('waitForEvent timeout: the deadline would be past the year 2286')
  }
  return new StepNode<EventResult<T>>(withDeadline, [name, timeoutMs], withDeadline.options)
}
