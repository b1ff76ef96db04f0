// Which node of a plan runs when: the base layer of an Execution (then commit.ts, execution.ts).
// Layers of one class, not objects calling each other: they share the per-step state, and a step's
// path from start to commit stays plain method calls on one object, with nothing allocated for it.

import { InternalError } from '../errors.js'
import type { Codec } from '../model/codec.js'
import type { RootStepRun, StepRecord, StoredOutput, WorkflowRecord } from '../model/records.js'
import { NodeState, type Plan, type PlanNode } from '../plan/graph.js'
import type { WorkflowStore } from '../store/store.js'
import type { LazyAbortController } from '../util/lazy-abort.js'

/** Why an execution stopped without an output. */
export type ExecutionFailure =
  | { kind: 'step'; stepId: string; error: unknown }
  | { kind: 'canceled' }
  | { kind: 'released' }
  /**
   * Another runner committed a pipelined step first, with another value: what ran here on ours is
   * discarded (never committed), and the workflow goes on from the committed value elsewhere.
   */
  | { kind: 'superseded'; stepId: string }
  /**
   * Every step that could run waits on a timer or for an event: the runner lets the workflow go
   * until `wakeAt` (`MAX_WAKE_TIME` when only an event can wake it). `inboxSeq`: the last event read.
   */
  | { kind: 'parked'; wakeAt: number; stepIds: string[]; events: string[]; inboxSeq: number }
  | { kind: 'infrastructure'; error: unknown }

export class ExecutionStopped extends Error {
  readonly failure: ExecutionFailure
  constructor(failure: ExecutionFailure) {
    super('execution stopped')
    this.failure = failure
  }
}

export interface ExecutionOptions {
  workflowId: string
  /** On resume: the workflow's record as read before it (listing its committed steps needs it: not read again). */
  record?: WorkflowRecord
  store: WorkflowStore
  codec: Codec
  maxConcurrency: number
  /** Aborted when the workflow is canceled; its signal is made only if a step asks for it. */
  abort: LazyAbortController
  /** Called after each step commits (progress, heartbeats). */
  onStepDone?: (node: PlanNode) => void
  /**
   * Checked before each attempt starts: `undefined` (no I/O) while this runner may start steps,
   * else a promise to wait for (a lease to re-assert after a pause), rejecting when it may not.
   */
  beforeStart?: () => Promise<void> | undefined
  /** Awaited before each commit; rejects when this runner may no longer commit (its lease is gone). */
  beforeCommit?: () => Promise<void> | undefined
  /**
   * When every running step waits (on a timer, or for an event) and nothing else can start, the
   * execution stops with `kind: 'parked'` so that its runner lets the workflow go: at once when
   * the earliest wait ends more than this many ms from now (timers only), or after this many ms of
   * waiting (for an event, unless a deadline comes first). `undefined`: never parks.
   */
  parkAfterMs?: number
  /** How often a step waiting for an event lists the inbox (a send in this process tells it at once). */
  eventPollMs?: number
  /** The workflow's incarnation: the events sent to it carry it (see `WorkflowRecord.incarnation`). */
  incarnation?: () => string
  /** Called with each stored continuation sub-graph loaded from storage; may throw to refuse it (code changed). */
  onStoredSubGraph?: (graph: NonNullable<StepRecord['graph']>) => void
  /**
   * The root step's value is committed by the caller's final workflow record, not by a step record
   * of its own (one write less per workflow): when the root returns a value, the execution resolves
   * with it uncommitted and leaves its stored form in `rootCommit`.
   */
  deferRootCommit?: boolean
  /**
   * Pipelined checkpoints: a step's dependents start while its record is being written (see
   * execution/checkpoints.ts). A step with `pipelineCheckpoints: false` stays strict either way,
   * and one with `true` is pipelined even when this is off.
   */
  pipelineCheckpoints?: boolean
  /** With pipelined checkpoints: at most this many records of the workflow not yet durable; above it, a step waits for its own. */
  maxCheckpointsInFlight?: number
}

/** A root step's value that the final workflow record must commit (`ExecutionOptions.deferRootCommit`). */
export interface RootCommit {
  output: StoredOutput
  run: RootStepRun
}

/**
 * Counts each node's unfinished inputs, starts ready nodes up to `maxConcurrency`, wakes dependents
 * as outputs arrive, and settles the run when the root is done or nothing can run any more.
 */
// The hot path is written without async functions: a step whose body returns a plain value runs
// and is encoded in the same tick it is started, and its only awaits are the storage write's. Every
// started node ends in exactly one `finished` call, which frees its slot and schedules more.
export abstract class StepScheduler {
  protected readonly options: ExecutionOptions
  /** Set once by `run`. */
  protected root!: PlanNode
  /** `signal.aborted`, kept here: the hot path reads it several times per step. */
  protected aborted = false
  /** Why scheduling stopped; written only by `stop` (the first reason wins). */
  protected failure: ExecutionFailure | undefined
  /** Set when the root returned a value that is not committed yet (`deferRootCommit`). */
  protected deferredRoot: RootCommit | undefined
  /** How many of the running steps are timers waiting for their time (kept by the execution). */
  protected sleeping = 0
  /**
   * How many of the running steps are durable functions whose body awaits its calls: they hold no
   * slot of `maxConcurrency` (their calls take them), and never count as work to park for.
   */
  protected suspended = 0
  /**
   * Work under way that no running step stands for (a durable function's call being stored or
   * replayed, a body about to make its next call): the execution does not park meanwhile.
   */
  protected busy = 0
  /** Bumped when a durable function makes or gets back a call: a park decided before it is stale. */
  protected activity = 0
  /**
   * Pipelined step records being written, whose dependents may already run. The workflow ends,
   * parks or settles only once there are none (every checkpoint it reports is durable).
   */
  protected checkpointsInFlight = 0
  /** Set once a step was pipelined: from then on, nodes carry their inputs' checkpoints (`PlanNode.durable`). */
  protected pipelinedAny = false
  #ready: PlanNode[] = []
  #readyHead = 0
  #running = 0
  #pumping = false
  #resolve!: (value: unknown) => void
  #reject!: (error: unknown) => void
  #settled = false

  constructor(options: ExecutionOptions) {
    this.options = options
  }

  /** Runs one attempt (or more) of a ready node; every start ends in exactly one `finished`. */
  protected abstract start(node: PlanNode): void

  /** Every running step waits and nothing else can start (see `ExecutionOptions.parkAfterMs`). */
  protected abstract allSleeping(): void

  /**
   * The run's result, settled by `pump` or `settleWith`. Made once, before anything is scheduled;
   * from then until it settles, an abort stops scheduling at once.
   */
  protected newResult(): Promise<unknown> {
    const abort = this.options.abort
    this.aborted = abort.aborted
    abort.onAbort = () => {
      this.aborted = true
      this.stop({ kind: 'canceled' })
    }
    const result = new Promise<unknown>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // It may settle before the caller awaits it (a step that is not registered fails at once).
    result.catch(() => {})
    return result
  }

  protected settleWith(error: unknown): void {
    if (this.#settled) return
    this.#settled = true
    this.options.abort.onAbort = undefined
    this.#reject(error)
  }

  /** Counts each node's unfinished inputs and queues the nodes that can start now. */
  protected link(nodes: readonly PlanNode[]): void {
    // Indexed loops here and below: these run once or more per step.
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i] as PlanNode
      if (node.state !== NodeState.Planned) continue
      let waiting = 0
      const deps = node.deps
      for (let d = 0; d < deps.length; d++) {
        const dep = deps[d] as PlanNode
        dep.consumers++
        if (dep.state !== NodeState.Done) {
          waiting++
          if (dep.dependents === undefined) dep.dependents = [node]
          else dep.dependents.push(node)
        }
      }
      node.waiting = waiting
      if (waiting === 0) this.#enqueue(node)
    }
  }

  #enqueue(node: PlanNode): void {
    node.state = NodeState.Ready
    this.#ready.push(node)
  }

  protected expand(node: PlanNode, sub: Plan, live: boolean): void {
    node.state = NodeState.Expanded
    sub.root.continuationOf = node
    const nodes = sub.nodes
    for (let i = 0; i < nodes.length; i++) (nodes[i] as PlanNode).scope = node
    if (live) this.link(nodes)
  }

  /**
   * `catchExceptions` steps whose continuation failed and were completed with the caught outcome:
   * nothing more of their continuations starts, and what finishes there is kept but not used.
   */
  #caught: Set<PlanNode> | undefined

  /** The nearest step up `node`'s continuations that catches their failures, if any. */
  protected catcherOf(node: PlanNode): PlanNode | undefined {
    for (let scope = node.scope; scope !== undefined; scope = scope.scope) {
      if (scope.options.catchExceptions) return scope
    }
    return undefined
  }

  /** Whether `node` belongs to the continuation of a step that caught a failure in it. */
  protected abandoned(node: PlanNode): boolean {
    const caught = this.#caught
    if (caught === undefined) return false
    for (let scope = node.scope; scope !== undefined; scope = scope.scope) {
      if (caught.has(scope)) return true
    }
    return false
  }

  /**
   * `node` failed for good (after its retries). Inside the continuation of a step that catches
   * exceptions, at any depth, that step's outcome becomes `{ ok: false, error }` (`catchFailure`)
   * and the workflow goes on; otherwise the workflow fails. Does not end `node` (its caller does).
   */
  protected failFor(node: PlanNode, error: unknown): void {
    if (this.abandoned(node)) return
    const catcher = this.catcherOf(node)
    if (catcher === undefined) {
      this.stop({ kind: 'step', stepId: node.id, error })
      return
    }
    this.#caught ??= new Set()
    this.#caught.add(catcher)
    this.#running++ // the commit of the caught outcome, ended by `track`
    this.catchFailure(catcher, error)
  }

  /** Commits `{ ok: false, error }` as `catcher`'s outcome and completes it; ends in `finished`. */
  protected abstract catchFailure(catcher: PlanNode, error: unknown): void

  /** Marks `node` done with `output` and wakes what waits on it (its dependents, or the step it continues). */
  protected complete(start: PlanNode, startOutput: unknown, live: boolean): void {
    let node: PlanNode | undefined = start
    let output = startOutput
    // A pipelined record still being written: the steps this value completes wait for it too.
    const durable = start.durable
    while (node) {
      // A step that caught a failure of its continuation is done already: the rest is unused.
      if (node !== start && node.state === NodeState.Done) break
      node.state = NodeState.Done
      node.output = output
      if (durable !== undefined) node.durable = durable
      const onDone = node.onDone
      if (onDone !== undefined) {
        node.onDone = undefined
        // A durable function's body goes on only from durable values: a replay must meet the same.
        if (durable?.pending) {
          const value = output
          this.busy++ // not parked meanwhile
          durable.wait().then((ok) => {
            this.busy--
            if (ok) onDone(value)
            else this.pump()
          })
        } else onDone(output)
      }
      const dependents = node.dependents
      if (live && dependents !== undefined) {
        for (let i = 0; i < dependents.length; i++) {
          const dependent = dependents[i] as PlanNode
          if (--dependent.waiting === 0 && dependent.state === NodeState.Planned) this.#enqueue(dependent)
        }
        node.dependents = undefined
      }
      const parent: PlanNode | undefined = node.continuationOf
      // Nobody reads this output any more: drop it so long workflows keep flat memory.
      if (node.consumers === 0 && node !== this.root && (live || parent)) node.output = undefined
      if (parent) node.continuationOf = undefined
      if (parent?.options.catchExceptions) output = { ok: true, value: output }
      node = parent
    }
  }

  /** Stops scheduling for `failure`; running steps finish (their signal is not aborted here). */
  protected stop(failure: ExecutionFailure): void {
    // The first reason wins; a cancel always wins over a failure that follows it.
    if (!this.failure) this.failure = failure
    this.pump()
  }

  /**
   * Starts ready nodes up to `maxConcurrency`, and settles the result when the root is done or
   * nothing can run any more. Not re-entrant: a step that finishes while its start is still on the
   * stack (a body returning a value, with `checkpoint: false`) is picked up by the loop already
   * running, so a long chain of such steps does not grow the stack.
   */
  protected pump(): void {
    if (this.#settled || this.#pumping) return
    this.#pumping = true
    const max = this.options.maxConcurrency
    try {
      while (!this.failure && this.#running - this.suspended < max && this.#readyHead < this.#ready.length) {
        const node = this.#ready[this.#readyHead] as PlanNode
        this.#ready[this.#readyHead++] = undefined as unknown as PlanNode
        this.#running++
        this.start(node)
      }
    } finally {
      this.#pumping = false
    }
    if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
      this.#ready = this.#ready.slice(this.#readyHead)
      this.#readyHead = 0
    }
    // A release lets running steps finish and commit: a root that did can still be committed.
    const failure = this.failure
    if (
      this.root.state === NodeState.Done &&
      this.checkpointsInFlight === 0 &&
      (!failure || (failure.kind === 'released' && this.deferredRoot !== undefined))
    ) {
      this.#settled = true
      this.options.abort.onAbort = undefined
      this.#resolve(this.root.output)
      return
    }
    if (this.#running > 0 || this.checkpointsInFlight > 0) {
      // Last: the runner may halt the execution from here, which ends the timers and settles it.
      if (
        !failure &&
        this.checkpointsInFlight === 0 &&
        this.sleeping > 0 &&
        this.#running === this.sleeping + this.suspended &&
        this.busy === 0 &&
        this.#readyHead >= this.#ready.length
      )
        this.allSleeping()
      return
    }
    if (this.failure) {
      this.settleWith(new ExecutionStopped(this.failure))
    } else if (this.#readyHead >= this.#ready.length) {
      this.settleWith(
        new InternalError(`workflow "${this.options.workflowId}" has no step left to run but no output`),
      )
    }
  }

  /** The end of a started node, whatever happened to it: frees its slot and schedules more. */
  protected finished(): void {
    this.#running--
    this.pump()
  }

  /** Something outside the step's own code failed (storage, lease, a bug): stop the workflow. */
  protected crashed(error: unknown): void {
    this.stop({ kind: 'infrastructure', error })
    this.finished()
  }

  /** Completes `node` with `result`; ends in `finished`. */
  protected done(node: PlanNode, result: unknown): void {
    try {
      this.complete(node, result, true)
      this.options.onStepDone?.(node)
    } catch (error) {
      this.stop({ kind: 'infrastructure', error })
    }
    this.finished()
  }

  /** Ends the node when `work` settles. */
  protected track(work: Promise<unknown>): void {
    work.then(
      () => this.finished(),
      (error: unknown) => this.crashed(error),
    )
  }
}
