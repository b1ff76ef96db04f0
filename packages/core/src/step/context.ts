// `currentStep()`: what a running step knows about itself, carried by AsyncLocalStorage so a step
// body (and anything it calls) can read it without threading it through arguments.

import { AsyncLocalStorage } from 'node:async_hooks'
import { NotInStepError, StepTimeoutError } from '../errors.js'

/** What a running step knows about itself. */
export interface StepContext {
  /** The workflow this step runs in. */
  readonly workflowId: string
  /** The step's id: stable across retries and resumes, so it is the idempotency key to hand to external APIs. */
  readonly stepId: string
  /** 1 for the first attempt, 2 for the first retry, … */
  readonly attempt: number
  /** Aborted when the workflow is canceled or the attempt times out. */
  readonly signal: AbortSignal
}

export const stepContext = new AsyncLocalStorage<StepContext>()

/**
 * The context of the step running now. Throws outside a step.
 *
 * ```ts
 * const charge = step('charge', async (cents: number) => {
 *   const { stepId, signal } = currentStep()
 *   return payments.charge({ cents, idempotencyKey: stepId }, { signal })
 * })
 * ```
 */
export function currentStep(): StepContext {
  const context = stepContext.getStore()
  if (!context) throw new NotInStepError()
  return context
}

/**
 * The context of one attempt of a step run in this process. Its signal is the run's, made only
 * when the step reads it (see `LazyAbortController`): most steps never do.
 */
export class AttemptContext implements StepContext {
  readonly workflowId: string
  readonly stepId: string
  readonly attempt: number
  readonly #abort: { readonly signal: AbortSignal }

  constructor(workflowId: string, stepId: string, attempt: number, abort: { readonly signal: AbortSignal }) {
    this.workflowId = workflowId
    this.stepId = stepId
    this.attempt = attempt
    this.#abort = abort
  }

  get signal(): AbortSignal {
    return this.#abort.signal
  }
}

/** A step body as the engine calls it. */
export type StepBody = (...args: unknown[]) => unknown

/**
 * Calls `fn` in `context`, synchronously: a plain value comes back as it is (no promise, no
 * microtask), a promise as it is. A thenable that is not a native promise is adopted here, inside
 * the context, as an async body's result would be. Throws what `fn` throws.
 */
export function callInContext(context: StepContext, fn: StepBody, args: unknown[]): unknown {
  return stepContext.run(context, callBody, fn, args)
}

function callBody(fn: StepBody, args: unknown[]): unknown {
  const result = fn(...args)
  if (
    result !== null &&
    typeof result === 'object' &&
    !(result instanceof Promise) &&
    typeof (result as { then?: unknown }).then === 'function'
  )
    return Promise.resolve(result)
  return result
}

/**
 * Calls `fn` in a context whose signal also aborts after `timeoutMs`; rejects with
 * `StepTimeoutError` then, even if the body ignores its signal.
 */
export function callWithTimeout(
  context: Omit<StepContext, 'signal'>,
  parent: AbortSignal,
  timeoutMs: number,
  fn: StepBody,
  args: unknown[],
): Promise<unknown> {
  const controller = new AbortController()
  const signal = AbortSignal.any([parent, controller.signal])
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = new StepTimeoutError(context.stepId, timeoutMs)
      controller.abort(error)
      reject(error)
    }, timeoutMs)
    stepContext
      .run({ ...context, signal }, async () => fn(...args))
      .then(
        (value) => {
          clearTimeout(timer)
          resolve(value)
        },
        (error) => {
          clearTimeout(timer)
          reject(error)
        },
      )
  })
}
