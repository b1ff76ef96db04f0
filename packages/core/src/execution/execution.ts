// Drives one workflow's plan: the Execution a runtime creates per run. This layer starts each
// ready step's body (in context, with a time limit, or in an isolate) and retries it with backoff;
// scheduler.ts decides which node runs when, and commit.ts commits each result once and, on
// resume, loads only the committed records the remaining steps need.
// Over 400 lines: attempts, timers, event waiters and parking; the waiting could become a layer of its own.

import { InvalidOptionsError, StepNotRegisteredError, StepTimeoutError } from '../errors.js'
import { encodeValue } from '../model/codec.js'
import { NodeState, type Plan, type PlanNode, releaseInputs, resolveArgs } from '../plan/graph.js'
import { AttemptContext, callInContext, callWithTimeout, type StepBody } from '../step/context.js'
import { isReceiveStep } from '../step/events.js'
import { isTimerStep, MAX_WAKE_TIME } from '../step/sleep.js'
import { collectNode, holdsStepNode, isStepNode } from '../step/step.js'
import { CallLayer } from './calls.js'
import { inputsCheckpoint, whenDurable } from './checkpoints.js'
import { Inbox, listenInbox } from './inbox.js'
import { runIsolated } from './isolate.js'
import type { ExecutionFailure, RootCommit } from './scheduler.js'

export type { ExecutionFailure, ExecutionOptions, RootCommit } from './scheduler.js'
export { ExecutionStopped } from './scheduler.js'

const DEFAULT_MAX_RETRIES = 3

/** The longest delay `setTimeout` takes (about 24.8 days); a longer timer is armed again. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/** A timer step waiting for its time in this execution. */
interface Timer {
  wakeAt: number
  handle: ReturnType<typeof setTimeout> | undefined
}

/** A step waiting for an event (`waitForEvent`). */
interface Waiter {
  node: PlanNode
  name: string
  /** When it gives up (`{ received: false }`), or `null`: it waits for ever, and resolves to the payload itself. */
  deadline: number | null
  handle: ReturnType<typeof setTimeout> | undefined
}

const DEFAULT_EVENT_POLL_MS = 1000

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}

export class Execution extends CallLayer {
  /** Set when the root returned a value that is not committed yet (`deferRootCommit`). */
  get rootCommit(): RootCommit | undefined {
    return this.deferredRoot
  }

  /**
   * Runs `plan` to its output. With `resume`, committed steps are loaded instead of run. The plan
   * itself is not kept: nodes that finished and that nobody reads any more can be collected.
   */
  run(plan: Plan, resume: boolean): Promise<unknown> {
    this.root = plan.root
    const result = this.newResult()
    if (this.#preloaded) {
      this.#begin()
    } else if (resume) {
      // A stop while committed steps are still loading settles the result before they are linked.
      this.loadCommitted(plan).then(
        () => this.#begin(),
        (error: unknown) => this.settleWith(error),
      )
    } else {
      this.link(plan.nodes)
      this.#begin()
    }
    return result
  }

  /**
   * A resume's first half, before the workflow is taken over: loads the committed records the
   * remaining steps need (rejecting when one cannot be read) and plans the rest, so that a resume
   * that cannot go on fails with the stored workflow untouched. `run(plan, true)` then begins at
   * once. Resolves to the name of a step left to run that is not registered here, if any.
   */
  preload(plan: Plan): Promise<string | undefined> {
    this.root = plan.root
    this.#preloaded = true
    return this.loadCommitted(plan)
  }

  #preloaded = false
  /** Timer steps waiting here, by node. Made at the first timer (most runs have none). */
  #timers: Map<PlanNode, Timer> | undefined
  /** Bumped when the set of timers changes: `onAllSleeping` is called once per set. */
  #timerSet = 0
  #reported = -1
  /** `activity` when `allSleeping` last decided: a durable function's call since makes that stale. */
  #reportedActivity = -1
  /** Steps waiting for an event, in the order they started waiting (who takes an event first). */
  #waiters: Waiter[] = []
  #inbox: Inbox | undefined
  #checking = false
  #checkAgain = false
  #poll: ReturnType<typeof setInterval> | undefined
  #unlisten: (() => void) | undefined
  #parkTimer: ReturnType<typeof setTimeout> | undefined

  #begin(): void {
    if (this.aborted) this.stop({ kind: 'canceled' })
    this.pump()
  }

  /** Stops scheduling for `failure`; running steps finish (their signal is not aborted here). */
  halt(failure: ExecutionFailure): void {
    this.stop(failure)
  }

  protected override start(node: PlanNode): void {
    if (this.pipelinedAny) {
      // What its inputs' records still wait for: its own record (or a strict start) waits too.
      const inputs = inputsCheckpoint(node)
      node.durable = inputs
      const waiting = node.options.pipelineCheckpoints === false ? whenDurable(inputs) : undefined
      if (waiting !== undefined) {
        waiting.then((durable) => {
          if (durable) this.start(node)
          else this.finished()
        })
        return
      }
    }
    node.state = NodeState.Running
    // In the continuation of a step that caught a failure there: not run, its outcome stands.
    if (this.abandoned(node)) {
      this.finished()
      return
    }
    const definition = node.definition
    if (!definition) {
      this.stop({
        kind: 'infrastructure',
        error: new StepNotRegisteredError(node.name, this.options.workflowId),
      })
      this.finished()
      return
    }
    let args: unknown[]
    try {
      args = resolveArgs(node, this.options.codec)
    } catch (error) {
      this.crashed(error)
      return
    }
    const deps = node.deps
    for (let i = 0; i < deps.length; i++) {
      const dep = deps[i] as PlanNode
      if (--dep.consumers === 0 && dep !== this.root) dep.output = undefined
    }
    // Used once: drop the links upstream so a long workflow's memory stays flat.
    releaseInputs(node)
    node.startTime = Date.now()
    if (isTimerStep(definition)) {
      node.attempts = 1
      this.#sleepUntil(node, args[0] as number)
      return
    }
    if (isReceiveStep(definition)) {
      node.attempts = 1
      this.#waitForEvent(node, args[0] as string, args[1] as number | null)
      return
    }
    this.#attempt(node, definition.fn as StepBody, args, 1)
  }

  /**
   * A timer step: completes (commits its wake time) at `wakeAt`, at once when that is past. It
   * holds a slot while it waits, and keeps the process alive, as any running step does.
   */
  #sleepUntil(node: PlanNode, wakeAt: number): void {
    if (wakeAt <= Date.now()) {
      this.commit(node, wakeAt)
      return
    }
    const timer: Timer = { wakeAt, handle: undefined }
    this.#timers ??= new Map()
    this.#timers.set(node, timer)
    this.sleeping++
    this.#timerSet++
    this.#arm(node, timer)
  }

  #arm(node: PlanNode, timer: Timer): void {
    const left = timer.wakeAt - Date.now()
    if (left > 0) {
      timer.handle = setTimeout(() => this.#arm(node, timer), Math.min(left, MAX_TIMEOUT_MS))
      return
    }
    this.#timers?.delete(node)
    this.sleeping--
    this.#timerSet++
    this.commit(node, timer.wakeAt)
  }

  /**
   * A step waiting for the next event `name`: it takes one as soon as the inbox has one for it
   * (looked at now, at every `eventPollMs`, and when a sender in this process says so), or gives
   * up at its deadline. Holds a slot while it waits, as a timer does.
   */
  #waitForEvent(node: PlanNode, name: string, deadline: number | null): void {
    const waiter: Waiter = { node, name, deadline, handle: undefined }
    this.#waiters.push(waiter)
    this.sleeping++
    this.#timerSet++
    if (deadline !== null) this.#armDeadline(waiter)
    if (this.#poll === undefined) {
      this.#poll = setInterval(() => this.#check(), this.options.eventPollMs ?? DEFAULT_EVENT_POLL_MS)
      this.#unlisten = listenInbox(this.options.workflowId, () => this.#check())
    }
    this.#check()
  }

  #armDeadline(waiter: Waiter): void {
    const left = (waiter.deadline as number) - Date.now()
    // At the deadline the inbox is read once more: an event sent just before it still wins.
    if (left <= 0) this.#check()
    else waiter.handle = setTimeout(() => this.#armDeadline(waiter), Math.min(left, MAX_TIMEOUT_MS))
  }

  /** Reads the inbox and hands events to the waiting steps, one read at a time. */
  #check(): void {
    if (this.#checking) {
      this.#checkAgain = true
      return
    }
    this.#checking = true
    this.#assign().then(
      () => {
        this.#checking = false
        if (this.#checkAgain && this.#waiters.length > 0) {
          this.#checkAgain = false
          this.#check()
        } else {
          // Nothing arrived: the execution may park now (see `allSleeping`).
          this.pump()
        }
      },
      (error: unknown) => {
        this.#checking = false
        this.stop({ kind: 'infrastructure', error })
      },
    )
  }

  async #assign(): Promise<void> {
    this.#checkAgain = false
    if (this.#waiters.length === 0) return
    this.#inbox ??= new Inbox(this.options.store, this.options.workflowId, this.options.incarnation?.() ?? '')
    await this.#inbox.refresh()
    const now = Date.now()
    for (const waiter of [...this.#waiters]) {
      if (this.failure) return
      const event = this.#inbox.pick(waiter.node.id, waiter.name)
      if (event) {
        this.#unwait(waiter)
        const taking = this.#inbox.take(event, waiter.node.id)
        taking.then(
          (text) => {
            if (text === undefined) {
              // Another step's marker held it: wait on.
              this.#rewait(waiter)
              return
            }
            let value: unknown
            try {
              value = this.options.codec.decode(text)
            } catch (error) {
              this.crashed(error)
              return
            }
            this.commit(waiter.node, waiter.deadline === null ? value : { received: true, value })
          },
          (error: unknown) => this.crashed(error),
        )
      } else if (waiter.deadline !== null && waiter.deadline <= now) {
        this.#unwait(waiter)
        this.commit(waiter.node, { received: false })
      }
    }
  }

  #unwait(waiter: Waiter): void {
    this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
    clearTimeout(waiter.handle)
    this.sleeping--
    this.#timerSet++
    if (this.#waiters.length === 0) this.#stopListening()
  }

  #rewait(waiter: Waiter): void {
    if (this.failure) {
      this.finished()
      return
    }
    this.#waitForEvent(waiter.node, waiter.name, waiter.deadline)
  }

  #stopListening(): void {
    clearInterval(this.#poll)
    this.#poll = undefined
    this.#unlisten?.()
    this.#unlisten = undefined
  }

  protected override allSleeping(): void {
    const parkAfterMs = this.options.parkAfterMs
    // An inbox read in flight may hand a waiting step its event: decide once it is done.
    if (
      (this.#reported === this.#timerSet && this.#reportedActivity === this.activity) ||
      parkAfterMs === undefined ||
      this.#checking
    )
      return
    const generation = this.#timerSet
    const activity = this.activity
    this.#reported = generation
    this.#reportedActivity = activity
    let wakeAt = MAX_WAKE_TIME
    const stepIds: string[] = []
    const events: string[] = []
    for (const [node, timer] of this.#timers ?? []) {
      if (timer.wakeAt < wakeAt) wakeAt = timer.wakeAt
      stepIds.push(node.id)
    }
    for (const waiter of this.#waiters) {
      if (waiter.deadline !== null && waiter.deadline < wakeAt) wakeAt = waiter.deadline
      stepIds.push(waiter.node.id)
      if (!events.includes(waiter.name)) events.push(waiter.name)
    }
    const park = () =>
      this.stop({ kind: 'parked', wakeAt, stepIds, events, inboxSeq: this.#inbox?.lastSeq ?? 0 })
    // Only timers: nothing can end the wait sooner, so a long one parks at once.
    if (events.length === 0) {
      if (wakeAt - Date.now() > parkAfterMs) park()
      return
    }
    // Waiting for an event: held for `parkAfterMs` of waiting (an event may come any moment),
    // unless a timer or deadline ends the wait before that.
    if (wakeAt - Date.now() <= parkAfterMs) return
    if (parkAfterMs === 0) {
      park()
      return
    }
    clearTimeout(this.#parkTimer)
    this.#parkTimer = setTimeout(() => {
      if (
        this.#reported === generation &&
        this.#timerSet === generation &&
        this.activity === activity &&
        !this.failure
      )
        park()
    }, parkAfterMs)
  }

  /**
   * Scheduling stops (a cancel, a failure, a release, parking): timers and steps waiting for an
   * event end without committing.
   */
  protected override stop(failure: ExecutionFailure): void {
    super.stop(failure)
    clearTimeout(this.#parkTimer)
    const timers = this.#timers
    if ((timers === undefined || timers.size === 0) && this.#waiters.length === 0) return
    const ended = timers === undefined ? [] : [...timers.values()]
    timers?.clear()
    const waiting = this.#waiters
    this.#waiters = []
    this.#stopListening()
    this.#timerSet++
    for (const timer of ended) {
      clearTimeout(timer.handle)
      this.sleeping--
      this.finished()
    }
    for (const waiter of waiting) {
      clearTimeout(waiter.handle)
      this.sleeping--
      this.finished()
    }
  }

  /** Runs one attempt of `node`; synchronous to the end when the body returns a plain value. */
  #attempt(node: PlanNode, fn: StepBody, args: unknown[], attempt: number): void {
    if (this.aborted || this.failure?.kind === 'canceled') {
      this.finished()
      return
    }
    // In memory while the lease holds: a runner back from a pause past its lease (whose workflow
    // may have been canceled or taken over meanwhile) re-asserts its record before starting.
    let leaseCheck: Promise<void> | undefined
    try {
      leaseCheck = this.options.beforeStart?.()
    } catch (error) {
      this.crashed(error)
      return
    }
    if (leaseCheck !== undefined) {
      leaseCheck.then(
        () => this.#attempt(node, fn, args, attempt),
        (error: unknown) => this.crashed(error),
      )
      return
    }
    node.attempts = attempt
    let result: unknown
    try {
      const { workflowId, abort } = this.options
      const { timeoutMs, isolate } = node.options
      result = node.definition?.durable
        ? this.durableAttempt(node, args, attempt)
        : isolate !== undefined
          ? this.#attemptIsolated(node, args, attempt)
          : timeoutMs === undefined
            ? callInContext(new AttemptContext(workflowId, node.id, attempt, abort), fn, args)
            : callWithTimeout({ workflowId, stepId: node.id, attempt }, abort.signal, timeoutMs, fn, args)
    } catch (error) {
      this.#failed(node, fn, args, attempt, error)
      return
    }
    if (result instanceof Promise) {
      result.then(
        (value: unknown) => this.#succeeded(node, value),
        (error: unknown) => this.#failed(node, fn, args, attempt, error),
      )
    } else {
      this.#succeeded(node, result)
    }
  }

  #succeeded(node: PlanNode, value: unknown): void {
    // Nodes inside a returned array or object: a continuation whose output is that structure.
    let result = holdsStepNode(value) ? collectNode(value) : value
    if (node.options.catchExceptions && !isStepNode(result)) result = { ok: true, value: result }
    this.commit(node, result)
  }

  #failed(node: PlanNode, fn: StepBody, args: unknown[], attempt: number, error: unknown): void {
    if (this.aborted) {
      this.finished()
      return
    }
    let retry: boolean
    try {
      // wf refusing what the body asked of it (bad options or metadata on a node it built) is a
      // bug in the code, not a passing fault: the same attempt would fail the same way.
      retry =
        !(error instanceof InvalidOptionsError) &&
        attempt <= (node.options.maxRetries ?? DEFAULT_MAX_RETRIES) &&
        (node.options.retryOn?.(error) ?? true)
    } catch (retryOnError) {
      this.crashed(retryOnError)
      return
    }
    const caught = !retry && node.options.catchExceptions === true
    // The failure is written before anything follows from it (the next attempt, the caught
    // output's commit, the FAILED record), so that what `wf show` reads is never behind.
    const recorded = this.recordFailure(node, error, caught)
    if (retry) {
      Promise.all([recorded, sleep(backoffDelay(node, attempt), this.options.abort.signal)]).then(() =>
        this.#attempt(node, fn, args, attempt + 1),
      )
      return
    }
    recorded.then(() => {
      if (caught) {
        this.commit(node, { ok: false, error: error instanceof Error ? error : new Error(String(error)) })
        return
      }
      this.failFor(node, error)
      this.finished()
    })
  }

  /**
   * An attempt in a worker thread or a child process (isolate.ts): the arguments and the result
   * cross as codec text, and an abort (cancel, timeoutMs) ends the isolate before this settles.
   */
  #attemptIsolated(node: PlanNode, args: unknown[], attempt: number): Promise<unknown> {
    const timeoutMs = node.options.timeoutMs
    const { codec, workflowId, abort } = this.options
    const controller = timeoutMs === undefined ? undefined : new AbortController()
    const timer =
      controller &&
      setTimeout(() => controller.abort(new StepTimeoutError(node.id, timeoutMs as number)), timeoutMs)
    return runIsolated({
      stepName: node.name,
      options: node.options,
      args: encodeValue(codec, args, 'arguments', node.id),
      context: { workflowId, stepId: node.id, attempt },
      signal: controller ? AbortSignal.any([abort.signal, controller.signal]) : abort.signal,
      codec,
    })
      .then((text) => codec.decode(text))
      .finally(() => clearTimeout(timer))
  }
}

function backoffDelay(node: PlanNode, attempt: number): number {
  const { initialDelayMs = 100, factor = 2, maxDelayMs = 10_000 } = node.options.backoff ?? {}
  return Math.min(maxDelayMs, initialDelayMs * factor ** (attempt - 1))
}
