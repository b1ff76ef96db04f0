// Durable functions (`workflow()`) in an Execution: the layer between commit.ts and execution.ts
// that runs a body and the calls it makes (`ctx.run`). A call is a node under the function's step
// id, keyed by the order of the calls (`<id>~<n>`) or by the key it is given (`<id>~k:<key>`): a
// step whose arguments hold no node runs as one node with the key as its id; anything else (a graph,
// an array or object of nodes) is committed at the key as a continuation into that graph. A
// resumed body runs again from the top: each call whose key is committed gets its record back
// (read ahead, in key order) and is checked against what the body asks for now.
// Over 400 lines: keying, replaying and checking calls share one run's state; Replay and DurableRun
// could move to a file of their own if it grows.

import { hash as oneShotHash } from 'node:crypto'
import { InvalidOptionsError, quote, WorkflowNondeterminismError } from '../errors.js'
import { validateStepName } from '../model/ids.js'
import type { StepRecord } from '../model/records.js'
import {
  continuationPrefix,
  type Plan,
  type PlanNode,
  planGraph,
  planLeaf,
  syntheticNode,
} from '../plan/graph.js'
import { AttemptContext, callInContext, type StepBody } from '../step/context.js'
import {
  type CallOptions,
  callStep,
  nowStep,
  patchStep,
  randomStep,
  uuidStep,
  type WorkflowContext,
} from '../step/durable.js'
import { isReceiveStep, waitForEvent } from '../step/events.js'
import { fingerprintStep } from '../step/fingerprint.js'
import { isTimerStep, sleep, sleepUntil } from '../step/sleep.js'
import {
  collectNode,
  holdsStepNode,
  isBuiltinStepName,
  isStepNode,
  type StepDefinition,
  StepNode,
  type StepOptions,
  type StepResult,
} from '../step/step.js'
import { StepCommitter } from './commit.js'
import type { ExecutionFailure } from './scheduler.js'

/**
 * What the body of a stopped execution gets from a call: a promise that never settles, so the body
 * is let go (a new one each time: a shared one would keep every reaction to it for ever).
 */
const never = (): Promise<never> => new Promise<never>(() => {})

/** Committed records read ahead of a replaying body: at most this many not yet taken. */
const READ_AHEAD = 64

/** One call of a body (`ctx.run`). */
/** A call's `resolve`/`reject` until its promise exists. */
const unset = (): void => {}

interface Call {
  key: string
  /** The node whose id is the key: the step itself, or the call of a graph (`wf:call`). */
  node: PlanNode
  /** A call of a graph: the graph, planned under the key. */
  graph: Plan | undefined
  hash: string
  /** What was asked, for errors: `step "reserve" (call 3f2a…)`. */
  what: string
  /** Its outcome comes as `{ ok, value | error }` (a step run with `catchExceptions`, or a graph call). */
  wrapped: boolean
  /** The step itself has `catchExceptions`: the body gets the `StepResult`. */
  userCatches: boolean
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

/** The committed calls of one function's earlier runs, read ahead in key order as its body replays. */
class Replay {
  /** Committed keys the body has not asked for yet. */
  readonly unconsumed: Set<string>
  readonly committed: Set<string>
  readonly #read: (stepId: string) => Promise<StepRecord | undefined>
  readonly #order: string[]
  #next = 0
  readonly #ahead = new Map<string, Promise<StepRecord | undefined>>()

  constructor(
    committed: Set<string>,
    keys: string[],
    read: (stepId: string) => Promise<StepRecord | undefined>,
  ) {
    this.committed = committed
    this.unconsumed = new Set(keys)
    this.#order = keys
    this.#read = read
    this.#fill()
  }

  /** The record at `key` (read ahead, or now), no longer unconsumed. */
  take(key: string): Promise<StepRecord | undefined> {
    this.unconsumed.delete(key)
    let record = this.#ahead.get(key)
    if (record === undefined) record = this.#read(key)
    else this.#ahead.delete(key)
    this.#fill()
    return record
  }

  #fill(): void {
    while (this.#ahead.size < READ_AHEAD && this.#next < this.#order.length) {
      const key = this.#order[this.#next++] as string
      if (!this.unconsumed.has(key)) continue
      const record = this.#read(key)
      // Read ahead and maybe never taken (the run stops first): its failure is the taker's to see.
      record.catch(() => {})
      this.#ahead.set(key, record)
    }
  }
}

/** One attempt of a durable function's body. */
class DurableRun {
  state: 'running' | 'returned' | 'stopped' = 'running'
  /** The next call's number. */
  n = 0
  readonly keys = new Set<string>()
  readonly patches = new Map<string, Promise<boolean>>()
  /** A call found the run not deterministic: nothing more starts while that is recorded. */
  broken = false
  readonly node: PlanNode
  readonly prefix: string
  readonly replay: Replay | undefined
  readonly context: WorkflowContext

  constructor(
    node: PlanNode,
    workflowId: string,
    replay: Replay | undefined,
    call: (
      run: DurableRun,
      target: unknown,
      options: CallOptions | undefined,
      rawKey?: string,
    ) => Promise<unknown>,
  ) {
    this.node = node
    this.prefix = continuationPrefix(node.id)
    this.replay = replay
    const run = (target: unknown, options?: CallOptions) => call(this, target, options)
    const build = (make: () => StepNode, options: CallOptions | undefined) => {
      try {
        return run(make(), options)
      } catch (error) {
        return Promise.reject(error)
      }
    }
    this.context = {
      workflowId,
      stepId: node.id,
      run,
      sleep: (duration, options) => build(() => sleep(duration), options),
      sleepUntil: (time, options) => build(() => sleepUntil(time), options),
      waitForEvent: (name: string, options?: { key?: string; timeout?: number | string }) => {
        const { key, ...rest } = options ?? {}
        return build(() => waitForEvent(name, rest), key === undefined ? undefined : { key })
      },
      now: () => run(new StepNode(nowStep, [], nowStep.options)),
      random: () => run(new StepNode(randomStep, [], randomStep.options)),
      uuid: () => run(new StepNode(uuidStep, [], uuidStep.options)),
      patched: (changeId: string) => this.#patched(changeId, call),
    } as WorkflowContext
  }

  /** See `WorkflowContext.patched`: a marker at `~p:<changeId>` says the new path was taken. */
  #patched(
    changeId: string,
    call: (
      run: DurableRun,
      target: unknown,
      options: CallOptions | undefined,
      rawKey?: string,
    ) => Promise<unknown>,
  ): Promise<boolean> {
    try {
      validateStepName(changeId)
    } catch (error) {
      return Promise.reject(error)
    }
    const key = `${this.prefix}p:${changeId}`
    let taken = this.patches.get(key)
    if (taken !== undefined) return taken
    if (this.replay?.unconsumed.has(key)) {
      this.replay.take(key).catch(() => {})
      taken = Promise.resolve(true)
    } else if (this.replay !== undefined && this.replay.unconsumed.size > 0) {
      // An earlier run went past this point without the marker: it took the old path.
      taken = Promise.resolve(false)
    } else {
      taken = call(
        this,
        new StepNode(patchStep, [changeId], patchStep.options),
        undefined,
        key,
      ) as Promise<boolean>
    }
    this.patches.set(key, taken)
    return taken
  }
}

export abstract class CallLayer extends StepCommitter {
  /** Bodies running now: a stop lets them go. Made at the first durable function (most runs have none). */
  #runs: Set<DurableRun> | undefined
  /** The committed call keys of each function, by its prefix (built once from `committedIds`). */
  #committedCalls: Map<string, string[]> | undefined
  #committedFrom: Set<string> | undefined
  /** A `busy` tick is pending: a body gets a moment to make its next call before the run may park. */
  #settling = false

  /**
   * One attempt of durable function `node`: its body runs with a `WorkflowContext`, holding no slot
   * while it waits for its calls. Settles with the body's outcome; never, when the execution stops
   * first (the node then ends at once).
   */
  protected durableAttempt(node: PlanNode, args: unknown[], attempt: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const { store, workflowId, abort } = this.options
      const begin = (committed: Set<string> | undefined) => {
        const keys = committed && this.#callsOf(committed, continuationPrefix(node.id))
        const replay =
          committed && keys && keys.length > 0
            ? new Replay(committed, keys, (id) => store.readStep(workflowId, id))
            : undefined
        const run = new DurableRun(node, workflowId, replay, (r, target, options, rawKey) =>
          this.#call(r, target, options, rawKey),
        )
        this.#runs ??= new Set()
        this.#runs.add(run)
        this.suspended++
        let result: unknown
        try {
          const fn = (node.definition as StepDefinition).fn as StepBody
          result = callInContext(new AttemptContext(workflowId, node.id, attempt, abort), fn, [
            run.context,
            ...args,
          ])
        } catch (error) {
          if (this.#bodyEnded(run)) reject(error)
          return
        }
        Promise.resolve(result).then(
          (value) => {
            if (!this.#bodyEnded(run)) return
            const left = run.replay && first(run.replay.unconsumed)
            if (left === undefined || this.failure) resolve(value)
            else this.#neverReached(run, left, true)
          },
          (error: unknown) => {
            if (this.#bodyEnded(run)) reject(error)
          },
        )
      }
      // A retry runs the body again from the top: what the attempts before it committed is replayed.
      if (attempt === 1) begin(this.committedIds)
      else
        store.listStepIds(workflowId).then(
          (ids) => begin(new Set(ids)),
          (error: unknown) => reject(error),
        )
    })
  }

  /** The body returned or threw: `false` when the execution had let it go already. */
  #bodyEnded(run: DurableRun): boolean {
    // A broken run stays running until the stop that follows ends it.
    if (run.state !== 'running' || run.broken) return false
    run.state = 'returned'
    this.#runs?.delete(run)
    this.suspended--
    return true
  }

  protected override stop(failure: ExecutionFailure): void {
    super.stop(failure)
    if (this.#runs === undefined || this.#runs.size === 0) return
    const runs = [...this.#runs]
    this.#runs.clear()
    for (const run of runs) {
      run.state = 'stopped'
      this.suspended--
      this.finished()
    }
  }

  /** The keys of the calls committed under `prefix` (a function's), numbered ones first, in order. */
  #callsOf(committed: Set<string>, prefix: string): string[] | undefined {
    if (this.#committedFrom !== committed) {
      const byPrefix = new Map<string, string[]>()
      for (const id of committed) {
        const cut = id.lastIndexOf('~')
        if (cut <= 0) continue
        const at = id.slice(0, cut + 1)
        const keys = byPrefix.get(at)
        if (keys === undefined) byPrefix.set(at, [id])
        else keys.push(id)
      }
      this.#committedCalls = byPrefix
      this.#committedFrom = committed
    }
    const keys = this.#committedCalls?.get(prefix)
    if (keys === undefined) return undefined
    // Each key's number once (explicit and patch keys last, by name), then one sort.
    const numbered = keys.map((key) => {
      const tail = key.slice(prefix.length)
      return { key, n: /^\d+$/.test(tail) ? Number(tail) : Number.POSITIVE_INFINITY }
    })
    numbered.sort((a, b) => a.n - b.n || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    return numbered.map((entry) => entry.key)
  }

  /** `ctx.run(target, options)` of `run` (or a marker's call at `rawKey`). */
  #call(
    run: DurableRun,
    target: unknown,
    options: CallOptions | undefined,
    rawKey?: string,
  ): Promise<unknown> {
    if (run.state === 'stopped' || run.broken) return never()
    let key: string
    let call: Call
    try {
      if (run.state === 'returned') {
        throw new InvalidOptionsError(
          `ctx.run was called after the body of ${quote(run.node.id)} had returned: await every call`,
        )
      }
      if (rawKey !== undefined) key = rawKey
      else if (options?.key !== undefined) {
        validateStepName(options.key)
        key = `${run.prefix}k:${options.key}`
      } else {
        if (options !== undefined && (typeof options !== 'object' || options === null))
          throw new InvalidOptionsError('ctx.run(node, options): options must be an object')
        key = `${run.prefix}${run.n++}`
      }
      if (run.keys.has(key)) {
        throw new InvalidOptionsError(
          `ctx.run: the key ${quote(key)} was used twice in one run of ${quote(run.node.id)}: give each call its own key`,
        )
      }
      run.keys.add(key)
      call = this.#plan(key, target)
    } catch (error) {
      return Promise.reject(error)
    }
    return new Promise((resolve, reject) => {
      call.resolve = resolve
      call.reject = reject
      this.activity++
      const replay = run.replay
      if (replay?.unconsumed.has(key)) this.#replayCall(run, call, replay)
      // A step with `checkpoint: false` is never committed: it runs again, wherever it is.
      else if (replay !== undefined && replay.unconsumed.size > 0 && call.node.options.checkpoint !== false)
        this.#startLater(run, call, replay)
      else this.#start(run, call)
    })
  }

  /** Plans what `target` asks for under `key` (its `resolve` and `reject` are set by the caller). */
  #plan(key: string, target: unknown): Call {
    let node: StepNode
    if (isStepNode(target)) node = target
    else if (holdsStepNode(target)) node = collectNode(target)
    else
      throw new InvalidOptionsError(
        `ctx.run(x) takes a step node, or an array or plain object of them; got ${target === null ? 'null' : typeof target}`,
      )
    const codec = this.options.codec
    const definition = node.definition
    if (!holdsNode(node.args)) {
      const userCatches = node.stepOptions.catchExceptions === true
      // A step's failure comes back as its outcome, committed at the key (timers and events cannot fail).
      const wrapped = !isTimerStep(definition) && !isReceiveStep(definition)
      const options = wrapped && !userCatches ? catching(node.stepOptions) : node.stepOptions
      const planned = planLeaf(node, key, options, codec)
      const hash = digest(`${node.name}\0${planned.encodedArgs}`)
      return {
        key,
        node: planned.node,
        graph: undefined,
        hash,
        what: `step ${quote(node.name)} (call ${hash})`,
        wrapped,
        userCatches,
        resolve: unset,
        reject: unset,
      }
    }
    const graph = planGraph(node, continuationPrefix(key), codec)
    const hash = digest(JSON.stringify(graph.stored.nodes.map((n) => [n.id, n.name, n.args, n.refs])))
    return {
      key,
      node: syntheticNode(key, callStep, { catchExceptions: true }),
      graph,
      hash,
      what: `a graph ending in step ${quote(node.name)} (call ${hash})`,
      wrapped: true,
      userCatches: false,
      resolve: unset,
      reject: unset,
    }
  }

  /** Runs a call that is not committed. */
  #start(run: DurableRun, call: Call): void {
    if (this.failure || run.state === 'stopped' || run.broken) return
    const node = call.node
    node.scope = run.node
    node.onDone = (output) => this.#deliver(call, output)
    const graph = call.graph
    if (graph === undefined) {
      this.callHashes ??= new Map()
      const definition = node.definition as StepDefinition
      this.callHashes.set(node, {
        call: call.hash,
        fingerprint: isBuiltinStepName(definition.name) ? undefined : fingerprintStep(definition),
      })
      this.link([node])
      this.pump()
      return
    }
    this.busy++
    this.commitGraphCall(node, graph, call.hash).then(
      (record) => {
        this.busy--
        if (record === undefined || this.failure || run.state === 'stopped') this.pump()
        else if (record.call !== call.hash) this.#differs(run, call, record)
        else {
          this.expand(node, graph, true)
          this.pump()
        }
      },
      (error: unknown) => {
        this.busy--
        this.stop({ kind: 'infrastructure', error })
      },
    )
  }

  /** A call while committed calls are still unasked for: it may start only if the body asks for them in the same turn. */
  #startLater(run: DurableRun, call: Call, replay: Replay): void {
    this.busy++
    setImmediate(() => {
      this.busy--
      if (this.failure || run.state === 'stopped' || run.broken) return this.pump()
      const left = first(replay.unconsumed)
      if (left === undefined) this.#start(run, call)
      else this.#neverReached(run, left, false)
    })
  }

  /** A call whose key is committed: its record comes back without running, once it matches. */
  #replayCall(run: DurableRun, call: Call, replay: Replay): void {
    this.busy++
    replay.take(call.key).then(
      (record) => {
        this.busy--
        if (this.failure || run.state === 'stopped' || run.broken) return this.pump()
        // Deleted since the listing: run it.
        if (record === undefined) return this.#start(run, call)
        if (record.name !== call.node.name || (record.call !== undefined && record.call !== call.hash))
          return this.#differs(run, call, record)
        // The step's code when it ran, under the workflow's code-change policy (as a continuation's steps are).
        if (record.fingerprint !== undefined) {
          try {
            this.options.onStoredSubGraph?.({
              v: 1,
              root: call.key,
              nodes: [],
              fingerprints: { [record.name]: record.fingerprint },
            })
          } catch (error) {
            return this.stop({ kind: 'infrastructure', error })
          }
        }
        const node = call.node
        node.scope = run.node
        node.onDone = (output) => this.#deliver(call, output)
        this.busy++
        const loaded =
          record.kind === 'value'
            ? this.applyRecord(node, record, false).then(() => [])
            : this.loadNodes(node, [node], replay.committed, record)
        loaded.then(
          (remaining) => {
            this.busy--
            if (!this.failure && remaining.length > 0) this.link(remaining)
            this.pump()
          },
          (error: unknown) => {
            this.busy--
            this.stop({ kind: 'infrastructure', error })
          },
        )
      },
      (error: unknown) => {
        this.busy--
        this.stop({ kind: 'infrastructure', error })
      },
    )
  }

  /** A call's node completed with `output`: the body gets it. */
  #deliver(call: Call, output: unknown): void {
    this.callHashes?.delete(call.node)
    this.activity++
    if (!this.#settling) {
      // The body's next call comes a few microtasks later: no park before it has had its turn.
      this.#settling = true
      this.busy++
      setImmediate(() => {
        this.#settling = false
        this.busy--
        this.pump()
      })
    }
    if (!call.wrapped || call.userCatches) {
      call.resolve(output)
      return
    }
    const outcome = output as StepResult<unknown>
    if (outcome.ok) call.resolve(outcome.value)
    else call.reject(outcome.error)
  }

  /** The record at a call's key is not what the body asked for. */
  #differs(run: DurableRun, call: Call, record: StepRecord): void {
    this.#nondeterministic(run, call.key, describe(record), call.what, false)
  }

  /** A committed call the body did not ask for before making a new one (or before returning). */
  #neverReached(run: DurableRun, key: string, bodyReturned: boolean): void {
    const replay = run.replay as Replay
    this.busy++
    replay.take(key).then(
      (record) => {
        this.busy--
        this.#nondeterministic(run, key, record ? describe(record) : 'a call', undefined, bodyReturned)
      },
      () => {
        this.busy--
        this.#nondeterministic(run, key, 'a call', undefined, bodyReturned)
      },
    )
  }

  /**
   * Fails the workflow with `WorkflowNondeterminismError`: recorded as the function's failure, then
   * the execution stops as for a step that failed for good (FAILED, not retried). When the body had
   * returned, its node ends here.
   */
  #nondeterministic(
    run: DurableRun,
    key: string,
    recorded: string | undefined,
    requested: string | undefined,
    bodyReturned: boolean,
  ): void {
    if (run.broken) return
    run.broken = true
    const error = new WorkflowNondeterminismError(this.options.workflowId, key, recorded, requested)
    this.busy++
    this.recordFailure(run.node, error, false).then(() => {
      this.busy--
      this.stop({ kind: 'step', stepId: run.node.id, error })
      if (bodyReturned) this.finished()
    })
  }
}

/** Whether step arguments hold a node (the call is then of a graph). */
function holdsNode(args: readonly unknown[]): boolean {
  for (const arg of args) if (isStepNode(arg) || holdsStepNode(arg)) return true
  return false
}

function digest(text: string): string {
  return oneShotHash('sha256', text, 'hex').slice(0, 16)
}

/** A step's options with `catchExceptions` (made once per options object: a step function's calls share it). */
const withCatch = new WeakMap<Readonly<StepOptions>, StepOptions>()
function catching(options: Readonly<StepOptions>): StepOptions {
  let made = withCatch.get(options)
  if (made === undefined) {
    made = { ...options, catchExceptions: true }
    withCatch.set(options, made)
  }
  return made
}

/** A committed call as errors name it. */
function describe(record: StepRecord): string {
  const call = record.call === undefined ? '' : ` (call ${record.call})`
  if (record.name !== callStep.name) return `step ${quote(record.name)}${call}`
  const root = record.graph?.nodes.find((node) => node.id === record.graph?.root)
  return `a graph ending in step ${quote(root?.name ?? '?')}${call}`
}

function first(keys: Set<string>): string | undefined {
  for (const key of keys) return key
  return undefined
}
