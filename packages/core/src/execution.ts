// Drives one workflow's plan: runs each step as soon as its inputs are committed (bounded by
// maxConcurrency), retries, commits each result once, expands continuations, and on resume loads
// only the committed records the remaining steps need.

import type { Codec } from './codec.js'
import { encodeValue } from './codec.js'
import { callInContext, callWithTimeout, type StepBody } from './context.js'
import { StepNotRegisteredError, StepTimeoutError, WfError } from './errors.js'
import {
  continuationPrefix,
  NodeState,
  type Plan,
  type PlanNode,
  planFromStored,
  planGraph,
  releaseInputs,
  resolveArgs,
} from './graph.js'
import { runIsolated } from './isolate.js'
import { isStepNode, type StepNode } from './step.js'
import type { RootStepRun, StepRecord, StoredOutput, WorkflowStore } from './store.js'

/** Why an execution stopped without an output. */
export type ExecutionFailure =
  | { kind: 'step'; stepId: string; error: unknown }
  | { kind: 'canceled' }
  | { kind: 'released' }
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
  store: WorkflowStore
  codec: Codec
  maxConcurrency: number
  /** Aborted when the workflow is canceled. */
  signal: AbortSignal
  /** Called after each step commits (progress, heartbeats). */
  onStepDone?: (node: PlanNode) => void
  /** Awaited before each commit; rejects when this runner may no longer commit (its lease is gone). */
  beforeCommit?: () => Promise<void> | undefined
  /** Called with each stored continuation sub-graph loaded from storage; may throw to refuse it (code changed). */
  onStoredSubGraph?: (graph: NonNullable<StepRecord['graph']>) => void
  /**
   * The root step's value is committed by the caller's final workflow record, not by a step record
   * of its own (one write less per workflow): when the root returns a value, the execution resolves
   * with it uncommitted and leaves its stored form in `rootCommit`.
   */
  deferRootCommit?: boolean
}

/** A root step's value that the final workflow record must commit (`ExecutionOptions.deferRootCommit`). */
export interface RootCommit {
  output: StoredOutput
  run: RootStepRun
}

const DEFAULT_MAX_RETRIES = 3

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

// The hot path is written without async functions: a step whose body returns a plain value runs
// and is encoded in the same tick it is started, and its only awaits are the storage write's. Every
// started node ends in exactly one `#finished` call, which frees its slot and schedules more.
export class Execution {
  readonly #o: ExecutionOptions
  #ready: PlanNode[] = []
  #readyHead = 0
  #running = 0
  #pumping = false
  #failure: ExecutionFailure | undefined
  #root!: PlanNode
  #resolve!: (value: unknown) => void
  #reject!: (error: unknown) => void
  #settled = false
  /** `signal.aborted`, kept here: the hot path reads it several times per step. */
  #aborted = false
  #rootCommit: RootCommit | undefined

  constructor(options: ExecutionOptions) {
    this.#o = options
  }

  /** Set when the root returned a value that is not committed yet (`deferRootCommit`). */
  get rootCommit(): RootCommit | undefined {
    return this.#rootCommit
  }

  /**
   * Runs `plan` to its output. With `resume`, committed steps are loaded instead of run. The plan
   * itself is not kept: nodes that finished and that nobody reads any more can be collected.
   */
  run(plan: Plan, resume: boolean): Promise<unknown> {
    this.#root = plan.root
    const signal = this.#o.signal
    const stop = () => {
      this.#aborted = true
      this.#stop({ kind: 'canceled' })
    }
    this.#aborted = signal.aborted
    signal.addEventListener('abort', stop, { once: true })
    const result = new Promise<unknown>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    if (resume) {
      // A stop while committed steps are still loading settles the result before they are linked.
      this.#loadCommitted(plan).then(
        () => this.#begin(),
        (error: unknown) => this.#settleWith(error),
      )
    } else {
      this.#link(plan.nodes)
      this.#begin()
    }
    const done = result.finally(() => signal.removeEventListener('abort', stop))
    // It may settle before the caller awaits it (a step that is not registered fails at once).
    done.catch(() => {})
    return done
  }

  #begin(): void {
    if (this.#aborted) this.#stop({ kind: 'canceled' })
    this.#pump()
  }

  #settleWith(error: unknown): void {
    if (this.#settled) return
    this.#settled = true
    this.#reject(error)
  }

  /** Counts each node's unfinished inputs and queues the nodes that can start now. */
  #link(nodes: readonly PlanNode[]): void {
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

  /**
   * Resume: walks down from the root, loading the committed records it needs (the outputs that
   * uncommitted steps consume, and the continuations to expand) and planning only what is missing.
   */
  async #loadCommitted(plan: Plan): Promise<void> {
    const { store, workflowId } = this.#o
    const committed = new Set(await store.listStepIds(workflowId))
    const toRun = new Set<PlanNode>()
    const order: PlanNode[] = []
    let roots: PlanNode[] = [plan.root]
    let plans: Plan[] = [plan]
    while (roots.length > 0) {
      for (const p of plans) order.push(...p.nodes)
      const toLoad: PlanNode[] = []
      const seen = new Set<PlanNode>()
      const queue = [...roots]
      while (queue.length > 0) {
        const node = queue.pop() as PlanNode
        if (seen.has(node)) continue
        seen.add(node)
        if (committed.has(node.id)) toLoad.push(node)
        else {
          toRun.add(node)
          for (const dep of node.deps) queue.push(dep)
        }
      }
      roots = []
      plans = []
      const records = await mapLimit(toLoad, 32, (node) => store.readStep(workflowId, node.id))
      for (let i = 0; i < toLoad.length; i++) {
        const node = toLoad[i] as PlanNode
        const record = records[i]
        if (!record) {
          // Deleted since the listing: plan it again from its inputs.
          committed.delete(node.id)
          roots.push(node)
          continue
        }
        const sub = await this.#applyRecord(node, record, false)
        if (sub) {
          roots.push(sub.root)
          plans.push(sub)
        }
      }
    }
    // Upstream before downstream, so steps start in the order a fresh run would start them.
    this.#link(order.filter((node) => toRun.has(node)))
  }

  /**
   * Applies a committed record to its node: a value completes it; a continuation expands it into
   * its sub-graph (returned, so the caller can plan it). With `live`, the sub-graph is linked now.
   */
  async #applyRecord(node: PlanNode, record: StepRecord, live: boolean): Promise<Plan | undefined> {
    node.attempts = record.attempts
    if (record.kind === 'value') {
      const text = await this.#o.store.loadOutput(this.#o.workflowId, record.output as { inline: string })
      this.#complete(node, this.#o.codec.decode(text), live)
      return undefined
    }
    const graph = record.graph as NonNullable<StepRecord['graph']>
    this.#o.onStoredSubGraph?.(graph)
    const sub = planFromStored(graph, `step ${node.id}`)
    this.#expand(node, sub, live)
    return sub
  }

  #expand(node: PlanNode, sub: Plan, live: boolean): void {
    node.state = NodeState.Expanded
    sub.root.continuationOf = node
    if (live) this.#link(sub.nodes)
  }

  /** Marks `node` done with `output` and wakes what waits on it (its dependents, or the step it continues). */
  #complete(start: PlanNode, startOutput: unknown, live: boolean): void {
    let node: PlanNode | undefined = start
    let output = startOutput
    while (node) {
      node.state = NodeState.Done
      node.output = output
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
      if (node.consumers === 0 && node !== this.#root && (live || parent)) node.output = undefined
      if (parent) node.continuationOf = undefined
      if (parent?.options.catchExceptions) output = { ok: true, value: output }
      node = parent
    }
  }

  /** Stops scheduling for `failure`; running steps finish (their signal is not aborted here). */
  halt(failure: ExecutionFailure): void {
    this.#stop(failure)
  }

  #stop(failure: ExecutionFailure): void {
    // The first reason wins; a cancel always wins over a failure that follows it.
    if (!this.#failure) this.#failure = failure
    this.#pump()
  }

  /**
   * Starts ready nodes up to `maxConcurrency`, and settles the result when the root is done or
   * nothing can run any more. Not re-entrant: a step that finishes while its start is still on the
   * stack (a body returning a value, with `checkpoint: false`) is picked up by the loop already
   * running, so a long chain of such steps does not grow the stack.
   */
  #pump(): void {
    if (this.#settled || this.#pumping) return
    this.#pumping = true
    const max = this.#o.maxConcurrency
    try {
      while (!this.#failure && this.#running < max && this.#readyHead < this.#ready.length) {
        const node = this.#ready[this.#readyHead] as PlanNode
        this.#ready[this.#readyHead++] = undefined as unknown as PlanNode
        this.#running++
        this.#start(node)
      }
    } finally {
      this.#pumping = false
    }
    if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
      this.#ready = this.#ready.slice(this.#readyHead)
      this.#readyHead = 0
    }
    // A release lets running steps finish and commit: a root that did can still be committed.
    const failure = this.#failure
    if (
      this.#root.state === NodeState.Done &&
      (!failure || (failure.kind === 'released' && this.#rootCommit !== undefined))
    ) {
      this.#settled = true
      this.#resolve(this.#root.output)
      return
    }
    if (this.#running > 0) return
    if (this.#failure) {
      this.#settleWith(new ExecutionStopped(this.#failure))
    } else if (this.#readyHead >= this.#ready.length) {
      this.#settleWith(
        new WfError('WF_INTERNAL', `workflow "${this.#o.workflowId}" has no step left to run but no output`),
      )
    }
  }

  /** The end of a started node, whatever happened to it: frees its slot and schedules more. */
  #finished(): void {
    this.#running--
    this.#pump()
  }

  /** Something outside the step's own code failed (storage, lease, a bug): stop the workflow. */
  #crashed(error: unknown): void {
    this.#stop({ kind: 'infrastructure', error })
    this.#finished()
  }

  #start(node: PlanNode): void {
    node.state = NodeState.Running
    const definition = node.definition
    if (!definition) {
      this.#stop({ kind: 'infrastructure', error: new StepNotRegisteredError(node.name, this.#o.workflowId) })
      this.#finished()
      return
    }
    let args: unknown[]
    try {
      args = resolveArgs(node, this.#o.codec)
    } catch (error) {
      this.#crashed(error)
      return
    }
    const deps = node.deps
    for (let i = 0; i < deps.length; i++) {
      const dep = deps[i] as PlanNode
      if (--dep.consumers === 0 && dep !== this.#root) dep.output = undefined
    }
    // Used once: drop the links upstream so a long workflow's memory stays flat.
    releaseInputs(node)
    node.startTime = Date.now()
    this.#attempt(node, definition.fn as StepBody, args, 1)
  }

  /** Runs one attempt of `node`; synchronous to the end when the body returns a plain value. */
  #attempt(node: PlanNode, fn: StepBody, args: unknown[], attempt: number): void {
    if (this.#aborted || this.#failure?.kind === 'canceled') {
      this.#finished()
      return
    }
    node.attempts = attempt
    let result: unknown
    try {
      const { workflowId, signal } = this.#o
      const { timeoutMs, isolate } = node.options
      result =
        isolate !== undefined
          ? this.#attemptIsolated(node, args, attempt)
          : timeoutMs === undefined
            ? callInContext({ workflowId, stepId: node.id, attempt, signal }, fn, args)
            : callWithTimeout({ workflowId, stepId: node.id, attempt }, signal, timeoutMs, fn, args)
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
    let result = value
    if (node.options.catchExceptions && !isStepNode(result)) result = { ok: true, value: result }
    this.#commit(node, result)
  }

  #failed(node: PlanNode, fn: StepBody, args: unknown[], attempt: number, error: unknown): void {
    if (this.#aborted) {
      this.#finished()
      return
    }
    let retry: boolean
    try {
      retry =
        attempt <= (node.options.maxRetries ?? DEFAULT_MAX_RETRIES) && (node.options.retryOn?.(error) ?? true)
    } catch (retryOnError) {
      this.#crashed(retryOnError)
      return
    }
    if (retry) {
      sleep(backoffDelay(node, attempt), this.#o.signal).then(() =>
        this.#attempt(node, fn, args, attempt + 1),
      )
      return
    }
    if (node.options.catchExceptions) {
      this.#commit(node, { ok: false, error: error instanceof Error ? error : new Error(String(error)) })
      return
    }
    this.#stop({ kind: 'step', stepId: node.id, error })
    this.#finished()
  }

  /**
   * An attempt in a worker thread or a child process (isolate.ts): the arguments and the result
   * cross as codec text, and an abort (cancel, timeoutMs) ends the isolate before this settles.
   */
  #attemptIsolated(node: PlanNode, args: unknown[], attempt: number): Promise<unknown> {
    const timeoutMs = node.options.timeoutMs
    const { codec, workflowId } = this.#o
    const controller = timeoutMs === undefined ? undefined : new AbortController()
    const timer =
      controller &&
      setTimeout(() => controller.abort(new StepTimeoutError(node.id, timeoutMs as number)), timeoutMs)
    return runIsolated({
      stepName: node.name,
      options: node.options,
      args: encodeValue(codec, args, 'arguments', node.id),
      context: { workflowId, stepId: node.id, attempt },
      signal: controller ? AbortSignal.any([this.#o.signal, controller.signal]) : this.#o.signal,
      codec,
    })
      .then((text) => codec.decode(text))
      .finally(() => clearTimeout(timer))
  }

  /** Commits the result of `node` (once), then completes it; ends in `#finished`. */
  #commit(node: PlanNode, result: unknown): void {
    if (this.#aborted) {
      this.#finished()
      return
    }
    try {
      if (isStepNode(result)) {
        this.#track(this.#commitContinuation(node, result))
        return
      }
      let text: string
      try {
        text = encodeValue(this.#o.codec, result, 'result', node.id)
      } catch (error) {
        // Not retried: the same value would fail the same way.
        this.#stop({ kind: 'step', stepId: node.id, error })
        this.#finished()
        return
      }
      if (node.options.checkpoint === false) {
        this.#done(node, result)
        return
      }
      const then =
        node === this.#root && this.#o.deferRootCommit
          ? (output: StoredOutput) => this.#deferRoot(node, result, output)
          : (output: StoredOutput) => this.#checkAndWrite(node, result, output)
      const output = this.#o.store.inlineOutput(text)
      if (output !== undefined) then(output)
      else {
        // Too large to inline: stored as a blob first.
        this.#o.store
          .storeOutput(this.#o.workflowId, text)
          .then(then, (error: unknown) => this.#crashed(error))
      }
    } catch (error) {
      this.#crashed(error)
    }
  }

  /**
   * The root returned a value: it is done here, and the caller's final record commits it. A crash
   * before that record is written leaves the root uncommitted, so a resume runs it again.
   */
  #deferRoot(node: PlanNode, result: unknown, output: StoredOutput): void {
    if (this.#aborted) {
      this.#finished()
      return
    }
    this.#rootCommit = {
      output,
      run: { name: node.name, startTime: node.startTime, endTime: Date.now(), attempts: node.attempts },
    }
    this.#done(node, result)
  }

  /** Waits for the lease check when there is one (`beforeCommit`), then writes; ends in `#finished`. */
  #checkAndWrite(node: PlanNode, result: unknown, output: StoredOutput): void {
    if (this.#aborted) {
      this.#finished()
      return
    }
    let leaseCheck: Promise<void> | undefined
    try {
      leaseCheck = this.#o.beforeCommit?.()
    } catch (error) {
      this.#crashed(error)
      return
    }
    if (leaseCheck === undefined) this.#writeValue(node, result, output)
    else
      leaseCheck.then(
        () => this.#writeValue(node, result, output),
        (error: unknown) => this.#crashed(error),
      )
  }

  /**
   * Writes the step record (create-if-absent), then completes the node, with the committed value
   * if another runner won; ends in `#finished`. The hot path: one storage write and one reaction,
   * no async function of our own.
   */
  #writeValue(node: PlanNode, result: unknown, output: StoredOutput): void {
    const record = this.#valueRecord(node, output)
    this.#o.store.commitStep(this.#o.workflowId, node.id, record).then(
      (committed) => this.#committed(node, result, record, committed),
      (error: unknown) => this.#crashed(error),
    )
  }

  #valueRecord(node: PlanNode, output: StoredOutput): StepRecord {
    return {
      v: 1,
      name: node.name,
      startTime: node.startTime,
      endTime: Date.now(),
      attempts: node.attempts,
      kind: 'value',
      output,
    }
  }

  /** After the commit of `record`: completes `node` with `result`, or with what another runner committed first. */
  #committed(node: PlanNode, result: unknown, record: StepRecord, committed: StepRecord): void {
    if (committed !== record) {
      this.#track(this.#applyRecord(node, committed, true))
      return
    }
    this.#done(node, result)
  }

  /** Ends the node when `work` settles. */
  #track(work: Promise<unknown>): void {
    work.then(
      () => this.#finished(),
      (error: unknown) => this.#crashed(error),
    )
  }

  /** Completes `node` with `result`; ends in `#finished`. */
  #done(node: PlanNode, result: unknown): void {
    try {
      this.#complete(node, result, true)
      this.#o.onStepDone?.(node)
    } catch (error) {
      this.#stop({ kind: 'infrastructure', error })
    }
    this.#finished()
  }

  async #commitContinuation(node: PlanNode, result: StepNode): Promise<void> {
    let sub: Plan
    try {
      sub = planGraph(result, continuationPrefix(node.id), this.#o.codec)
    } catch (error) {
      this.#stop({ kind: 'step', stepId: node.id, error })
      return
    }
    if (node.options.checkpoint !== false) {
      await this.#o.beforeCommit?.()
      const record: StepRecord = {
        v: 1,
        name: node.name,
        startTime: node.startTime,
        endTime: Date.now(),
        attempts: node.attempts,
        kind: 'continuation',
        graph: sub.stored,
      }
      const committed = await this.#o.store.commitStep(this.#o.workflowId, node.id, record)
      if (committed !== record) {
        await this.#applyRecord(node, committed, true)
        return
      }
    }
    this.#expand(node, sub, true)
    this.#o.onStepDone?.(node)
  }
}

function backoffDelay(node: PlanNode, attempt: number): number {
  const { initialDelayMs = 100, factor = 2, maxDelayMs = 10_000 } = node.options.backoff ?? {}
  return Math.min(maxDelayMs, initialDelayMs * factor ** (attempt - 1))
}

/** Maps with at most `limit` calls in flight, keeping order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
