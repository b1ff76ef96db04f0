// Durable async functions: `workflow(name, fn)` registers an async function whose body awaits
// steps with plain `if`, `for` and `try` (`ctx.run`), beside the typed graph and on the same step
// records. To resume, the body runs again from the top and each call whose key is committed gets
// its stored outcome back without running; the execution runs the calls (execution/calls.ts).

import { randomUUID } from 'node:crypto'
import { InvalidOptionsError } from '../errors.js'
import type { Duration } from '../util/duration.js'
import type { EventResult, WaitForEventOptions } from './events.js'
import {
  builtinStep,
  type Resolved,
  registerStep,
  type StepFunction,
  type StepNode,
  type StepOptions,
  type StepOutput,
} from './step.js'

/** The record of a call of a graph: a continuation into it, at the call's key (never run). */
export const callStep = builtinStep('call', () => undefined)
/** `ctx.now()`, `ctx.random()`, `ctx.uuid()`: values recorded so that a replay gets them back. */
export const nowStep = builtinStep('now', () => Date.now())
export const randomStep = builtinStep('random', () => Math.random())
export const uuidStep = builtinStep('uuid', () => randomUUID())
/** The marker of `ctx.patched(changeId)`: this run took the new path. */
export const patchStep = builtinStep('patched', () => true)

/** Options of one `ctx.run` call. */
export interface CallOptions {
  /**
   * The call's key instead of its place in the call order: `<functionStepId>~k:<key>`. Checked by
   * the step-name rules. Recommended inside loops and callbacks whose order may change between
   * versions of the code (`{ key: 'reserve-' + item.id }`); each key is used once per run.
   */
  key?: string
}

/**
 * What a durable function's body gets first: the way to run steps durably. Each call is committed
 * under a key that does not depend on timing (`<functionStepId>~<n>`, with `n` the order in which
 * the body made its calls, or `~k:<key>` with an explicit key); when the workflow resumes, the body
 * runs again from the top and each committed call returns its stored outcome without running.
 *
 * The body must make the same calls in the same order each time it runs: read time, randomness and
 * ids through `ctx.now()`, `ctx.random()` and `ctx.uuid()`, and branch on a code change with
 * `ctx.patched()`. A run that asks for something else than what was recorded fails the workflow
 * with `WorkflowNondeterminismError`.
 */
export interface WorkflowContext {
  /** The workflow this function runs in. */
  readonly workflowId: string
  /** The function's own step id: its calls' keys start with it. */
  readonly stepId: string
  /**
   * Runs a step node (or a whole graph ending in one) and resolves to its output; an array or plain
   * object of nodes runs them side by side and resolves to their outputs in place. A step that fails
   * for good (after its retries) rejects, so `try`/`catch` works; its error is committed at its key
   * and a resume throws it again without running the step.
   */
  run<T>(node: StepNode<T>, options?: CallOptions): Promise<T>
  run<const T extends readonly unknown[] | Readonly<Record<string, unknown>>>(
    nodes: T,
    options?: CallOptions,
  ): Promise<Resolved<T>>
  /** Sleeps durably (`sleep(duration)`) and resolves to the wake time. */
  sleep(duration: Duration, options?: CallOptions): Promise<number>
  /** Sleeps durably until `time` (`sleepUntil`) and resolves to it. */
  sleepUntil(time: Date | number, options?: CallOptions): Promise<number>
  /** Waits for the next event `name` (`waitForEvent`). */
  waitForEvent<T = unknown>(name: string, options?: CallOptions): Promise<T>
  waitForEvent<T = unknown>(
    name: string,
    options: WaitForEventOptions & CallOptions & { timeout: Duration },
  ): Promise<EventResult<T>>
  /** The time (ms since the epoch), recorded: a resume gets the same value back. */
  now(): Promise<number>
  /** `Math.random()`, recorded. */
  random(): Promise<number>
  /** `crypto.randomUUID()`, recorded. */
  uuid(): Promise<string>
  /**
   * Whether this run takes the code path of change `changeId` (as Temporal's `patched`): `true` for
   * a run that reaches this point with the new code (recorded, so it stays `true` on resume), and
   * `false` for a run that an earlier version of the code had already taken past this point.
   *
   * ```ts
   * if (await ctx.patched('fraud-review')) await ctx.run(review(order))
   * ```
   */
  patched(changeId: string): Promise<boolean>
}

/** Options of a durable function: a step's, without the isolation and time limit of a step body. */
export type WorkflowOptions = Omit<
  StepOptions,
  'isolate' | 'module' | 'env' | 'execArgv' | 'resourceLimits' | 'timeoutMs'
>

/** The body of a durable function. */
export type WorkflowBody<A extends unknown[], R> = (ctx: WorkflowContext, ...args: A) => R

/**
 * Registers a durable async function under `name` and returns a step function: its calls are
 * `StepNode`s, run like any graph (`run`, `runAsync`, `submit`, workers, the client), used as a
 * step of a graph, or awaited by another durable function (`ctx.run(child(args))`).
 *
 * ```ts
 * export const processOrder = workflow('processOrder', async (ctx, orderId: string) => {
 *   const order = await ctx.run(loadOrder(orderId))
 *   await ctx.run(order.items.map(reserve))          // side by side
 *   if (order.total > 1000) await ctx.run(review(order))
 *   await ctx.sleep('1h')
 *   return ctx.run(charge(order))
 * })
 * await processOrder('o-42').run({ workflowId: 'order-o-42' })
 * ```
 * A body that throws fails the workflow (not retried unless `maxRetries` says so: each attempt
 * runs the body again from the top, replaying its calls).
 */
export function workflow<A extends unknown[], R>(
  name: string,
  fn: WorkflowBody<A, R>,
  options: WorkflowOptions & { catchExceptions: true },
): StepFunction<A, StepOutput<R>, true>
export function workflow<A extends unknown[], R>(
  name: string,
  fn: WorkflowBody<A, R>,
  options?: WorkflowOptions,
): StepFunction<A, StepOutput<R>, false>
export function workflow<A extends unknown[], R>(
  name: string,
  fn: WorkflowBody<A, R>,
  options: WorkflowOptions = {},
): StepFunction<A, StepOutput<R>, boolean> {
  if (typeof options === 'object' && options !== null) {
    for (const key of ['isolate', 'module', 'env', 'execArgv', 'resourceLimits', 'timeoutMs']) {
      if ((options as Record<string, unknown>)[key] !== undefined) {
        throw new InvalidOptionsError(
          `workflow("${String(name)}"): ${key} is an option of steps; a durable function runs in the runner's process without a time limit (set it on the steps it calls)`,
        )
      }
    }
  }
  const withDefaults =
    typeof options === 'object' && options !== null ? { maxRetries: 0, ...options } : (options as StepOptions)
  return registerStep('workflow', name, fn, withDefaults, true) as unknown as StepFunction<
    A,
    StepOutput<R>,
    boolean
  >
}
