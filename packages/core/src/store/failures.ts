// The failed attempts of each step, recorded beside it (`workflows/<id>/failures/<stepId>`) so that
// `wf show` can say how a step failed, how often and for how long, even when `catchExceptions` or
// a later attempt hid the error. Written only on the failure path: a run without failures pays nothing.

import { fileURLToPath } from 'node:url'
import { type AttemptFailure, MAX_RECORDED_FAILURES, type StepFailures } from '../model/records.js'
import type { WorkflowStore } from './store.js'

/** Lines of a stack kept per error: enough to find the throwing line, small enough for five of them. */
const STACK_LINES = 12

// wf's own folder (src or dist), as stack frames name it (a URL for ES modules, a path otherwise):
// the frames of the engine that called the step body say nothing about the failure.
const ENGINE_DIR = new URL('..', import.meta.url)
const ENGINE_MARKS = [ENGINE_DIR.href, fileURLToPath(ENGINE_DIR)]

/**
 * Whether a stack frame is in one of wf's own files: at the top or in a layer's folder, not in tests
 * (`__tests__/`, `testing/`, `test-support/`, nor a `*.test.*` file beside its source).
 */
function isEngineFrame(line: string): boolean {
  for (const mark of ENGINE_MARKS) {
    const at = line.indexOf(mark)
    if (
      at !== -1 &&
      /^(?:(?!__tests__|testing[/\\]|test-support[/\\])[^/\\]+[/\\])?(?![^/\\]+\.test\.)[^/\\]+:\d+/.test(
        line.slice(at + mark.length),
      )
    )
      return true
  }
  return false
}

/** The stack up to the first frame inside wf (the step body's caller), at most `STACK_LINES` lines. */
function userStack(stack: string): string {
  const kept: string[] = []
  for (const line of stack.split('\n')) {
    if (/^\s+at /.test(line) && isEngineFrame(line)) break
    kept.push(line)
    if (kept.length === STACK_LINES) break
  }
  return kept.join('\n')
}

/** `error` as recorded: name, message and the first lines of its stack. */
export function attemptFailure(error: unknown, attempt: number, time: number): AttemptFailure {
  const failure: AttemptFailure =
    error instanceof Error
      ? { attempt, time, name: error.name, message: error.message }
      : { attempt, time, name: 'Error', message: String(error) }
  const stack = error instanceof Error ? error.stack : undefined
  if (typeof stack === 'string') failure.stack = userStack(stack)
  return failure
}

/** The record after one more failed attempt (the oldest errors beyond the last five are dropped). */
export function withFailure(
  previous: StepFailures | undefined,
  name: string,
  error: unknown,
  startTime: number,
  caught: boolean,
  now = Date.now(),
): StepFailures {
  const attempts = (previous?.attempts ?? 0) + 1
  const errors = [...(previous?.errors ?? []), attemptFailure(error, attempts, now)]
  const next: StepFailures = {
    v: 1,
    name,
    attempts,
    startTime: previous?.startTime ?? startTime,
    endTime: now,
    errors: errors.slice(-MAX_RECORDED_FAILURES),
  }
  if (caught) next.caught = true
  return next
}

/**
 * The failure records of one execution's steps: each step's record is read once (a resumed
 * workflow goes on from what earlier runs recorded), then kept here and rewritten per failure.
 */
export class FailureLog {
  readonly #store: WorkflowStore
  readonly #workflowId: string
  readonly #records = new Map<string, StepFailures | undefined>()

  constructor(store: WorkflowStore, workflowId: string) {
    this.#store = store
    this.#workflowId = workflowId
  }

  /** Records a failed attempt of step `stepId`; resolves once it is written. */
  async record(
    stepId: string,
    name: string,
    error: unknown,
    startTime: number,
    caught: boolean,
  ): Promise<void> {
    const previous = this.#records.has(stepId)
      ? this.#records.get(stepId)
      : await this.#store.readFailures(this.#workflowId, stepId).catch(() => undefined)
    const next = withFailure(previous, name, error, startTime, caught)
    this.#records.set(stepId, next)
    await this.#store.writeFailures(this.#workflowId, stepId, next)
  }
}
