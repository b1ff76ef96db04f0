// `currentStep()`: what a running step knows about itself, carried by AsyncLocalStorage so a step
// body (and anything it calls) can read it without threading it through arguments.

import { AsyncLocalStorage } from 'node:async_hooks'
import { WfError } from './errors.js'

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
  if (!context)
    throw new WfError('WF_NOT_IN_STEP', 'currentStep() can only be called while a step is running')
  return context
}
