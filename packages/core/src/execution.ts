// Drives one workflow's plan: runs each step as soon as its inputs are committed (bounded by
// maxConcurrency), retries, commits each result once, expands continuations, and on resume loads
// only the committed records the remaining steps need.

import type { Codec } from './codec.js'
import { encodeValue } from './codec.js'
import { type StepContext, stepContext } from './context.js'
import { StepNotRegisteredError, StepTimeoutError, WfError } from './errors.js'
import {
  continuationPrefix,
  NodeState,
  type Plan,
  type PlanNode,
  planFromStored,
  planGraph,
  resolveArgs,
} from './graph.js'
import { runIsolated } from './isolate.js'
import { isStepNode } from './step.js'
import type { StepRecord, WorkflowStore } from './store.js'

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

export class Execution {
  readonly #o: ExecutionOptions
  readonly #ready: PlanNode[] = []
  #readyHead = 0
  #running = 0
  #failure: ExecutionFailure | undefined
  #root!: PlanNode
  #settle!: { resolve: (value: unknown) => void; reject: (error: unknown) => void }
  #settled = false

  constructor(options: ExecutionOptions) {
    this.#o = options
  }

  /** Runs `plan` to its output. With `resume`, committed steps are loaded instead of run. */
  async run(plan: Plan, resume: boolean): Promise<unknown> {
    this.#root = plan.root
    const stop = () => this.#stop({ kind: 'canceled' })
    this.#o.signal.addEventListener('abort', stop, { once: true })
    try {
      const result = new Promise<unknown>((resolve, reject) => {
        this.#settle = { resolve, reject }
      })
      // A stop while committed steps are still loading settles this before it is awaited below.
      result.catch(() => {})
      if (resume) await this.#loadCommitted(plan)
      else this.#link(plan.nodes)
      if (this.#o.signal.aborted) this.#stop({ kind: 'canceled' })
      this.#pump()
      return await result
    } finally {
      this.#o.signal.removeEventListener('abort', stop)
    }
  }

  /** Counts each node's unfinished inputs and queues the nodes that can start now. */
  #link(nodes: readonly PlanNode[]): void {
    for (const node of nodes) {
      if (node.state !== NodeState.Planned) continue
      let waiting = 0
      for (const dep of node.deps) {
        dep.consumers++
        if (dep.state !== NodeState.Done) {
          waiting++
          dep.dependents.push(node)
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
      if (live) {
        for (const dependent of node.dependents) {
          if (--dependent.waiting === 0 && dependent.state === NodeState.Planned) this.#enqueue(dependent)
        }
        node.dependents = []
      }
      const parent: PlanNode | undefined = node.continuationOf
      // Nobody reads this output any more: drop it so long workflows keep flat memory.
      if (node.consumers === 0 && node !== this.#root && (live || parent)) node.output = undefined
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

  #pump(): void {
    if (this.#settled) return
    if (this.#root.state === NodeState.Done && !this.#failure) {
      this.#settled = true
      this.#settle.resolve(this.#root.output)
      return
    }
    while (!this.#failure && this.#running < this.#o.maxConcurrency && this.#readyHead < this.#ready.length) {
      const node = this.#ready[this.#readyHead++] as PlanNode
      this.#running++
      void this.#execute(node)
    }
    if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
      this.#ready.splice(0, this.#readyHead)
      this.#readyHead = 0
    }
    if (this.#running > 0) return
    if (this.#failure) {
      this.#settled = true
      this.#settle.reject(new ExecutionStopped(this.#failure))
    } else if (this.#readyHead >= this.#ready.length) {
      this.#settled = true
      this.#settle.reject(
        new WfError('WF_INTERNAL', `workflow "${this.#o.workflowId}" has no step left to run but no output`),
      )
    }
  }

  async #execute(node: PlanNode): Promise<void> {
    try {
      node.state = NodeState.Running
      await this.#runNode(node)
    } catch (error) {
      this.#stop({ kind: 'infrastructure', error })
    } finally {
      this.#running--
      this.#pump()
    }
  }

  async #runNode(node: PlanNode): Promise<void> {
    const { codec, workflowId, signal } = this.#o
    const definition = node.definition
    if (!definition) {
      this.#stop({ kind: 'infrastructure', error: new StepNotRegisteredError(node.name, workflowId) })
      return
    }
    const args = resolveArgs(node, codec)
    for (const dep of node.deps) {
      if (--dep.consumers === 0 && dep !== this.#root) dep.output = undefined
    }
    node.startTime = Date.now()
    const maxRetries = node.options.maxRetries ?? DEFAULT_MAX_RETRIES
    let result: unknown
    for (let attempt = 1; ; attempt++) {
      if (this.#failure?.kind === 'canceled' || signal.aborted) return
      node.attempts = attempt
      try {
        result = await this.#attempt(node, definition.fn as (...a: unknown[]) => unknown, args, attempt)
        if (node.options.catchExceptions && !isStepNode(result)) result = { ok: true, value: result }
        break
      } catch (error) {
        if (signal.aborted) return
        const retry = attempt <= maxRetries && (node.options.retryOn?.(error) ?? true)
        if (retry) {
          await sleep(backoffDelay(node, attempt), signal)
          continue
        }
        if (node.options.catchExceptions) {
          result = { ok: false, error: error instanceof Error ? error : new Error(String(error)) }
          break
        }
        this.#stop({ kind: 'step', stepId: node.id, error })
        return
      }
    }
    if (signal.aborted) return
    await this.#commit(node, result)
  }

  #attempt(
    node: PlanNode,
    fn: (...a: unknown[]) => unknown,
    args: unknown[],
    attempt: number,
  ): Promise<unknown> {
    const timeoutMs = node.options.timeoutMs
    if (node.options.isolate !== undefined) {
      // In a worker thread or a child process (isolate.ts): the arguments and the result cross as
      // codec text, and an abort (cancel, timeoutMs) ends the isolate before this settles.
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
    if (timeoutMs === undefined) {
      const context: StepContext = {
        workflowId: this.#o.workflowId,
        stepId: node.id,
        attempt,
        signal: this.#o.signal,
      }
      return stepContext.run(context, async () => fn(...args))
    }
    const controller = new AbortController()
    const signal = AbortSignal.any([this.#o.signal, controller.signal])
    const context: StepContext = { workflowId: this.#o.workflowId, stepId: node.id, attempt, signal }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const error = new StepTimeoutError(node.id, timeoutMs)
        controller.abort(error)
        reject(error)
      }, timeoutMs)
      stepContext
        .run(context, async () => fn(...args))
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

  async #commit(node: PlanNode, result: unknown): Promise<void> {
    const { store, codec, workflowId } = this.#o
    const checkpoint = node.options.checkpoint !== false
    const base = {
      v: 1 as const,
      name: node.name,
      startTime: node.startTime,
      endTime: 0,
      attempts: node.attempts,
    }
    if (isStepNode(result)) {
      let sub: Plan
      try {
        sub = planGraph(result, continuationPrefix(node.id), codec)
      } catch (error) {
        this.#stop({ kind: 'step', stepId: node.id, error })
        return
      }
      if (checkpoint) {
        const leaseCheck = this.#o.beforeCommit?.()
        if (leaseCheck) await leaseCheck
        const record: StepRecord = { ...base, kind: 'continuation', graph: sub.stored, endTime: Date.now() }
        const committed = await store.commitStep(workflowId, node.id, record)
        if (committed !== record) {
          await this.#applyRecord(node, committed, true)
          return
        }
      }
      this.#expand(node, sub, true)
      this.#o.onStepDone?.(node)
      return
    }
    let text: string
    try {
      text = encodeValue(codec, result, 'result', node.id)
    } catch (error) {
      // Not retried: the same value would fail the same way.
      this.#stop({ kind: 'step', stepId: node.id, error })
      return
    }
    if (checkpoint) {
      const output = store.inlineOutput(text) ?? (await store.storeOutput(workflowId, text))
      if (this.#o.signal.aborted) return
      const leaseCheck = this.#o.beforeCommit?.()
      if (leaseCheck) await leaseCheck
      const record: StepRecord = { ...base, kind: 'value', output, endTime: Date.now() }
      const committed = await store.commitStep(workflowId, node.id, record)
      if (committed !== record) {
        await this.#applyRecord(node, committed, true)
        return
      }
    }
    this.#complete(node, result, true)
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
