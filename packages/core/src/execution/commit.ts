// The middle layer of an Execution (see scheduler.ts): each step's result encoded and committed
// exactly once (a value inline or as a blob, a continuation as its sub-graph), failed attempts
// recorded beside it (failures.ts), and committed records read back, on resume and when another
// runner committed a step first.
// Over 400 lines: values, continuations, caught outcomes, graph calls and resume loading share the
// per-step state of this layer.

import { SerializationError } from '../errors.js'
import { type Encoded, encodeResult, encodeValue, serializationError } from '../model/codec.js'
import type { StepRecord, StoredOutput } from '../model/records.js'
import { continuationPrefix, type Plan, type PlanNode, planFromStored, planGraph } from '../plan/graph.js'
import { isTimerStep } from '../step/sleep.js'
import { isCollectNode, isStepNode, type StepNode } from '../step/step.js'
import { FailureLog } from '../store/failures.js'
import { committedStep, writeStep, writeStepStaged } from '../store/store.js'
import { mapLimit } from '../util/map-limit.js'
import { Checkpoint, whenAccepted } from './checkpoints.js'
import { StepScheduler } from './scheduler.js'

/** How a step's value is committed once its output is stored (see `commit`). */
const CommitHow = { Write: 0, Pipeline: 1, DeferRoot: 2 } as const
type CommitHow = (typeof CommitHow)[keyof typeof CommitHow]

export abstract class StepCommitter extends StepScheduler {
  /** Made at the first failed attempt: a run without failures never needs it. */
  #failures: FailureLog | undefined
  /** On resume: the ids of the steps committed when it began (a durable function replays from them). */
  protected committedIds: Set<string> | undefined
  /**
   * What each durable function's call of one step stores with its record: the hash of what it asked
   * for (`StepRecord.call`) and the step's fingerprint.
   */
  protected callHashes: Map<PlanNode, { call: string; fingerprint: string | undefined }> | undefined

  /**
   * Writes a failed attempt to the step's record of failures. Never rejects: the record explains a
   * failure, and a storage error writing it must not change what happens to the workflow.
   */
  protected recordFailure(node: PlanNode, error: unknown, caught: boolean): Promise<void> {
    this.#failures ??= new FailureLog(this.options.store, this.options.workflowId)
    return this.#failures.record(node.id, node.name, error, node.startTime, caught).catch((writeError) => {
      process.emitWarning(
        `wf could not record the failed attempt of step "${node.id}" of workflow "${this.options.workflowId}": ${writeError instanceof Error ? writeError.message : String(writeError)}`,
        { code: 'WF_FAILURE_NOT_RECORDED' },
      )
    })
  }

  /** The attempt's result cannot be stored: recorded as its failure, then the workflow fails (not retried). */
  #unstorable(node: PlanNode, error: unknown): void {
    this.recordFailure(node, error, false).then(() => {
      this.failFor(node, error)
      this.finished()
    })
  }

  /** Step records being written now: a cancel is acknowledged only once they have landed. */
  #writing = 0
  #onWritten: (() => void) | undefined

  /**
   * Resolves once no step record is being written. After an abort no new write begins, so a
   * cancel acknowledged after this leaves nothing committed later.
   */
  writesSettled(): Promise<void> {
    if (this.#writing === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const previous = this.#onWritten
      this.#onWritten = () => {
        previous?.()
        resolve()
      }
    })
  }

  #wrote(): void {
    if (--this.#writing === 0 && this.#onWritten) {
      const wake = this.#onWritten
      this.#onWritten = undefined
      wake()
    }
  }

  /** Commits the result of `node` (once), then completes it; ends in `finished`. */
  protected commit(node: PlanNode, result: unknown): void {
    if (this.aborted) {
      this.finished()
      return
    }
    try {
      if (isStepNode(result)) {
        this.track(this.#commitContinuation(node, result))
        return
      }
      let text: Encoded
      try {
        // The root's deferred output goes in the workflow record, which stays codec text.
        text =
          node === this.root && this.options.deferRootCommit
            ? encodeValue(this.options.codec, result, 'result', node.id)
            : encodeResult(this.options.codec, result, node.id)
      } catch (error) {
        // Not retried: the same value would fail the same way.
        this.#unstorable(node, error)
        return
      }
      if (node.options.checkpoint === false) {
        // Its value stands on its inputs' records: `durable` keeps theirs (set at its start).
        this.done(node, result)
        return
      }
      // Decided now, applied to the stored output: no closure made for the usual inline value.
      const how: CommitHow =
        node === this.root && this.options.deferRootCommit
          ? CommitHow.DeferRoot
          : this.#pipelines(node)
            ? CommitHow.Pipeline
            : CommitHow.Write
      const output = this.options.store.inlineOutput(text)
      if (output !== undefined) this.#commitOutput(how, node, result, output)
      else {
        // Too large to inline: stored as a blob first.
        this.options.store.storeOutput(this.options.workflowId, text).then(
          (stored) => this.#commitOutput(how, node, result, stored),
          (error: unknown) => this.crashed(error),
        )
      }
    } catch (error) {
      this.crashed(error)
    }
  }

  #commitOutput(how: CommitHow, node: PlanNode, result: unknown, output: StoredOutput): void {
    if (how === CommitHow.DeferRoot) this.#deferRoot(node, result, output)
    else if (how === CommitHow.Pipeline) this.#pipeline(node, result, output)
    else this.#checkAndWrite(node, result, output)
  }

  /**
   * The root returned a value: it is done here, and the caller's final record commits it. A crash
   * before that record is written leaves the root uncommitted, so a resume runs it again.
   */
  #deferRoot(node: PlanNode, result: unknown, output: StoredOutput): void {
    if (this.aborted) {
      this.finished()
      return
    }
    this.deferredRoot = {
      output,
      run: { name: node.name, startTime: node.startTime, endTime: Date.now(), attempts: node.attempts },
    }
    this.done(node, result)
  }

  /**
   * Whether `node`'s dependents start before its record is durable: with `pipelineCheckpoints`,
   * and always for a timer. A timer's value is its wake time, an argument already committed (in
   * the graph, or in the record of the `sleep` it continues), so a crash before its record lands
   * runs its dependents again with that same value, as a crash during them would: pipelining it
   * weakens nothing, and the step after a sleep starts at the wake time instead of one write later.
   */
  #pipelines(node: PlanNode): boolean {
    const own = node.options.pipelineCheckpoints
    if (
      own === false ||
      (own === undefined && this.options.pipelineCheckpoints !== true && !isTimerStep(node.definition))
    ) {
      return false
    }
    return (
      node !== this.root &&
      // A durable function's call is awaited by its body, which must see only durable values.
      node.onDone === undefined &&
      this.checkpointsInFlight < (this.options.maxCheckpointsInFlight ?? 32)
    )
  }

  /**
   * Completes `node` now, so that its dependents start, and writes its record once its inputs'
   * records are accepted; ends in `finished` at once (the write is counted by `checkpointsInFlight`
   * until it is durable).
   */
  #pipeline(node: PlanNode, result: unknown, output: StoredOutput): void {
    if (this.aborted) {
      this.finished()
      return
    }
    this.pipelinedAny = true
    const checkpoint = new Checkpoint()
    const endTime = Date.now()
    const inputs = whenAccepted(node.durable)
    node.durable = checkpoint
    this.checkpointsInFlight++
    this.#writing++
    if (inputs === undefined) this.#writePipelined(node, output, endTime, checkpoint)
    else
      inputs.then((accepted) => {
        if (accepted) this.#writePipelined(node, output, endTime, checkpoint)
        else this.#landed(node, checkpoint, false)
      })
    try {
      this.complete(node, result, true)
    } catch (error) {
      this.stop({ kind: 'infrastructure', error })
    }
    this.finished()
  }

  #writePipelined(node: PlanNode, output: StoredOutput, endTime: number, checkpoint: Checkpoint): void {
    if (this.aborted) {
      this.#landed(node, checkpoint, false)
      return
    }
    const write = () => {
      const record = this.#valueRecord(node, output)
      record.endTime = endTime
      const { accepted, durable } = writeStepStaged(
        this.options.store,
        this.options.workflowId,
        node.id,
        record,
      )
      let won = false
      accepted.then(
        () => {
          won = true
          checkpoint.accept()
        },
        (error: unknown) => this.#lostPipelined(node, output, checkpoint, error),
      )
      durable.then(
        () => this.#landed(node, checkpoint, true),
        (error: unknown) => {
          // Lost at `accepted`: handled there. Accepted but not made durable: a storage failure.
          if (!won) return
          this.stop({ kind: 'infrastructure', error })
          this.#landed(node, checkpoint, false)
        },
      )
    }
    let leaseCheck: Promise<void> | undefined
    try {
      leaseCheck = this.options.beforeCommit?.()
    } catch (error) {
      this.stop({ kind: 'infrastructure', error })
      this.#landed(node, checkpoint, false)
      return
    }
    if (leaseCheck === undefined) write()
    else
      leaseCheck.then(
        () => {
          if (this.aborted) this.#landed(node, checkpoint, false)
          else write()
        },
        (error: unknown) => {
          this.stop({ kind: 'infrastructure', error })
          this.#landed(node, checkpoint, false)
        },
      )
  }

  /**
   * A pipelined record was not written: another runner committed the step first. The same value
   * changes nothing; another one stops this run (`superseded`): what ran on our value is never
   * committed (its records wait for this one), and the run that committed goes on from its value.
   */
  #lostPipelined(node: PlanNode, output: StoredOutput, checkpoint: Checkpoint, error: unknown): void {
    committedStep(this.options.store, this.options.workflowId, node.id, error).then(
      (committed) => {
        const same = committed.kind === 'value' && sameOutput(committed.output as StoredOutput, output)
        if (!same) this.stop({ kind: 'superseded', stepId: node.id })
        this.#landed(node, checkpoint, same)
      },
      (readError: unknown) => {
        this.stop({ kind: 'infrastructure', error: readError })
        this.#landed(node, checkpoint, false)
      },
    )
  }

  #landed(node: PlanNode, checkpoint: Checkpoint, durable: boolean): void {
    this.checkpointsInFlight--
    this.#wrote()
    checkpoint.settle(durable)
    if (durable) {
      try {
        this.options.onStepDone?.(node)
      } catch (error) {
        this.stop({ kind: 'infrastructure', error })
      }
    }
    this.pump()
  }

  /** Waits for the lease check when there is one (`beforeCommit`), then writes; ends in `finished`. */
  #checkAndWrite(node: PlanNode, result: unknown, output: StoredOutput): void {
    if (this.aborted) {
      this.finished()
      return
    }
    if (this.pipelinedAny) {
      // Its inputs' records first: a record never stands on a value that was not committed.
      const inputs = whenAccepted(node.durable)
      if (inputs !== undefined) {
        inputs.then((durable) => {
          if (durable) this.#checkAndWrite(node, result, output)
          else this.finished()
        })
        return
      }
    }
    let leaseCheck: Promise<void> | undefined
    try {
      leaseCheck = this.options.beforeCommit?.()
    } catch (error) {
      this.crashed(error)
      return
    }
    if (leaseCheck === undefined) this.#writeValue(node, result, output)
    else
      leaseCheck.then(
        () => {
          // Canceled while the lease was checked: nothing more is committed.
          if (this.aborted) this.finished()
          else this.#writeValue(node, result, output)
        },
        (error: unknown) => this.crashed(error),
      )
  }

  /**
   * Writes the step record (create-if-absent), then completes the node, with the committed value
   * if another runner won; ends in `finished`. The hot path: one storage write and one reaction,
   * no async function of our own.
   */
  #writeValue(node: PlanNode, result: unknown, output: StoredOutput): void {
    this.#writing++
    writeStep(this.options.store, this.options.workflowId, node.id, this.#valueRecord(node, output)).then(
      () => {
        this.#wrote()
        this.done(node, result)
      },
      (error: unknown) => {
        this.#wrote()
        this.track(this.#adoptCommitted(node, error))
      },
    )
  }

  /** After a lost commit of `node` (`error`): completes it with what another runner committed first. */
  async #adoptCommitted(node: PlanNode, error: unknown): Promise<void> {
    const committed = await committedStep(this.options.store, this.options.workflowId, node.id, error)
    await this.applyRecord(node, committed, true)
  }

  #valueRecord(node: PlanNode, output: StoredOutput): StepRecord {
    const record: StepRecord = {
      v: 1,
      name: node.name,
      startTime: node.startTime,
      endTime: Date.now(),
      attempts: node.attempts,
      kind: 'value',
      output,
    }
    const call = this.callHashes?.get(node)
    if (call !== undefined) addCall(record, call)
    return record
  }

  /**
   * Commits a durable function's call of a graph: a continuation record under the call's key whose
   * graph is `sub`. Resolves to the record committed (another runner's when it won), or `undefined`
   * when this runner may no longer commit.
   */
  protected commitGraphCall(node: PlanNode, sub: Plan, hash: string): Promise<StepRecord | undefined> {
    const now = Date.now()
    return this.#writeContinuation(node, {
      v: 1,
      name: node.name,
      startTime: now,
      endTime: now,
      attempts: 1,
      kind: 'continuation',
      graph: sub.stored,
      call: hash,
    })
  }

  /**
   * Writes a continuation record (create-if-absent) once the lease allows: resolves to the record
   * committed (another runner's when it won), or `undefined` when this runner may no longer commit.
   */
  async #writeContinuation(node: PlanNode, record: StepRecord): Promise<StepRecord | undefined> {
    await this.options.beforeCommit?.()
    if (this.aborted) return undefined
    this.#writing++
    try {
      return await this.options.store.commitStep(this.options.workflowId, node.id, record)
    } finally {
      this.#wrote()
    }
  }

  async #commitContinuation(node: PlanNode, result: StepNode): Promise<void> {
    let sub: Plan
    try {
      sub = planGraph(result, continuationPrefix(node.id), this.options.codec)
    } catch (error) {
      const failure = asResultError(node, result, error)
      await this.recordFailure(node, failure, false)
      this.failFor(node, failure)
      return
    }
    if (node.options.checkpoint !== false) {
      // The sub-graph may hold values made from its inputs: their records first.
      const inputs = whenAccepted(node.durable)
      if (inputs !== undefined && !(await inputs)) return
      const record: StepRecord = {
        v: 1,
        name: node.name,
        startTime: node.startTime,
        endTime: Date.now(),
        attempts: node.attempts,
        kind: 'continuation',
        graph: sub.stored,
      }
      const call = this.callHashes?.get(node)
      if (call !== undefined) addCall(record, call)
      const committed = await this.#writeContinuation(node, record)
      if (committed === undefined) return
      if (committed !== record) {
        await this.applyRecord(node, committed, true)
        return
      }
    }
    this.expand(node, sub, true)
    this.options.onStepDone?.(node)
  }

  protected override catchFailure(catcher: PlanNode, error: unknown): void {
    this.track(
      this.#commitCaught(catcher, {
        ok: false,
        error: error instanceof Error ? error : new Error(String(error)),
      }),
    )
  }

  /**
   * A failure inside `catcher`'s continuation was caught: its outcome is committed once under a key
   * of its own (its step record holds the continuation), then it completes with that outcome.
   */
  async #commitCaught(catcher: PlanNode, outcome: { ok: false; error: Error }): Promise<void> {
    const { store, workflowId, codec } = this.options
    let value: unknown = outcome
    if (catcher.options.checkpoint !== false) {
      const text = encodeValue(codec, outcome, 'result', catcher.id)
      const output = store.inlineOutput(text) ?? (await store.storeOutput(workflowId, text))
      await this.options.beforeCommit?.()
      if (this.aborted) return
      const record: StepRecord = {
        v: 1,
        name: catcher.name,
        startTime: catcher.startTime,
        endTime: Date.now(),
        attempts: catcher.attempts,
        kind: 'value',
        output,
      }
      this.#writing++
      let committed: StepRecord
      try {
        committed = await store.commitCaught(workflowId, catcher.id, record)
      } finally {
        this.#wrote()
      }
      // Another runner caught it first: its outcome is the one.
      if (committed !== record)
        value = codec.decode(await store.loadOutput(workflowId, committed.output as StoredOutput))
    }
    if (this.aborted) return
    this.complete(catcher, value, true)
    this.options.onStepDone?.(catcher)
  }

  /**
   * Resume: walks down from the root, loading the committed records it needs (the outputs that
   * uncommitted steps consume, and the continuations to expand) and planning only what is missing.
   * Resolves to the name of a step left to run whose code is not registered here, if any.
   */
  protected async loadCommitted(plan: Plan): Promise<string | undefined> {
    const { store, workflowId } = this.options
    const committed = new Set(await store.listStepIds(workflowId, this.options.record))
    this.committedIds = committed
    const remaining = await this.loadNodes(plan.root, plan.nodes, committed)
    this.link(remaining)
    return remaining.find((node) => node.definition === undefined)?.name
  }

  /**
   * Walks down from `root` (of a plan of `nodes`), loading the committed records that the steps
   * left to run need, and expanding committed continuations. `rootRecord`: the root's record when
   * the caller has read it already. Resolves to the nodes left to run, upstream first, for the
   * caller to link.
   */
  protected async loadNodes(
    root: PlanNode,
    nodes: PlanNode[],
    committed: Set<string>,
    rootRecord?: StepRecord,
  ): Promise<PlanNode[]> {
    const { store, workflowId } = this.options
    const toRun = new Set<PlanNode>()
    const order: PlanNode[] = []
    let roots: PlanNode[] = [root]
    let plans: { nodes: PlanNode[] }[] = [{ nodes }]
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
      const records = await mapLimit(toLoad, 32, (node) =>
        node === root && rootRecord !== undefined
          ? Promise.resolve(rootRecord)
          : store.readStep(workflowId, node.id),
      )
      for (let i = 0; i < toLoad.length; i++) {
        const node = toLoad[i] as PlanNode
        const record = records[i]
        if (!record) {
          // Deleted since the listing: plan it again from its inputs.
          committed.delete(node.id)
          roots.push(node)
          continue
        }
        const sub = await this.applyRecord(node, record, false)
        if (sub) {
          roots.push(sub.root)
          plans.push(sub)
        }
      }
    }
    // Upstream before downstream, so steps start in the order a fresh run would start them.
    return order.filter((node) => toRun.has(node))
  }

  /**
   * Applies a committed record to its node: a value completes it; a continuation expands it into
   * its sub-graph (returned, so the caller can plan it). With `live`, the sub-graph is linked now.
   */
  protected async applyRecord(node: PlanNode, record: StepRecord, live: boolean): Promise<Plan | undefined> {
    node.attempts = record.attempts
    if (record.kind === 'value') {
      const value = await this.options.store.loadValue(
        this.options.workflowId,
        record.output as StoredOutput,
        this.options.codec,
      )
      this.complete(node, value, live)
      return undefined
    }
    if (node.options.catchExceptions) {
      // A failure in its continuation was caught: the outcome stands, the continuation is not run.
      const caught = await this.options.store.readCaught(this.options.workflowId, node.id)
      if (caught) {
        const text = await this.options.store.loadOutput(
          this.options.workflowId,
          caught.output as StoredOutput,
        )
        this.complete(node, this.options.codec.decode(text), live)
        return undefined
      }
    }
    const graph = record.graph as NonNullable<StepRecord['graph']>
    this.options.onStoredSubGraph?.(graph)
    const sub = planFromStored(graph, `step ${node.id}`)
    this.expand(node, sub, live)
    return sub
  }
}

function sameOutput(a: StoredOutput, b: StoredOutput): boolean {
  if ('inline' in a) return 'inline' in b && a.inline === b.inline
  return 'blob' in b && a.blob === b.blob
}

function addCall(record: StepRecord, call: { call: string; fingerprint: string | undefined }): void {
  record.call = call.call
  if (call.fingerprint !== undefined) record.fingerprint = call.fingerprint
}

/**
 * A failure to store the values next to the nodes a step returned (`collectNode`) is about that
 * step's result, not about the arguments of the built-in node that holds them (its first: `[0]`).
 */
function asResultError(node: PlanNode, result: StepNode, error: unknown): unknown {
  if (!isCollectNode(result) || !(error instanceof SerializationError)) return error
  return serializationError(error, 'result', node.id, '[0]')
}
