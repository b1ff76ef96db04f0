// Pipelined checkpoints (`pipelineCheckpoints`): a step's dependents start as soon as it returned,
// while its record is being written. Each such step carries a `Checkpoint` until the write is
// durable; whatever stands on its value waits for it, at one of two levels:
// - **accepted**: the record's create-if-absent was decided in our favour (or another runner
//   committed the same value). A dependent's own record may be written from then on: a storage
//   with `putStaged` makes a write accepted before another starts durable no later than it, and
//   on any other storage accepted is durable.
// - **durable**: what a strict step's start, a durable function's body and the workflow's end
//   wait for.
// A checkpoint that will never be durable here is lost: canceled, the write failed, or another
// runner committed another value first (then nothing built on ours is committed, and the
// workflow goes on from the committed value).

import type { NodeCheckpoint, PlanNode } from '../plan/graph.js'

const PENDING = 0
const ACCEPTED = 1
const DURABLE = 2
const LOST = 3
type State = typeof PENDING | typeof ACCEPTED | typeof DURABLE | typeof LOST

export class Checkpoint implements NodeCheckpoint {
  #state: State = PENDING
  #onAccepted: ((accepted: boolean) => void)[] | undefined
  #onDurable: ((durable: boolean) => void)[] | undefined

  /** Not durable yet (and not lost). */
  get pending(): boolean {
    return this.#state < DURABLE
  }

  /** Not accepted yet (and not lost). */
  get undecided(): boolean {
    return this.#state === PENDING
  }

  get lost(): boolean {
    return this.#state === LOST
  }

  accept(): void {
    if (this.#state !== PENDING) return
    this.#state = ACCEPTED
    wake(this.#onAccepted, true)
    this.#onAccepted = undefined
  }

  /** Durable (`true`, accepted as well) or lost (`false`). */
  settle(durable: boolean): void {
    if (this.#state === DURABLE || this.#state === LOST) return
    const wasAccepted = this.#state === ACCEPTED
    this.#state = durable ? DURABLE : LOST
    if (!wasAccepted) wake(this.#onAccepted, durable)
    wake(this.#onDurable, durable)
    this.#onAccepted = undefined
    this.#onDurable = undefined
  }

  /** Resolves to whether the record became durable. */
  wait(): Promise<boolean> {
    if (this.#state >= DURABLE) return Promise.resolve(this.#state === DURABLE)
    return new Promise((resolve) => {
      if (this.#onDurable === undefined) this.#onDurable = [resolve]
      else this.#onDurable.push(resolve)
    })
  }

  /** Resolves to whether the record was accepted (it may still be lost later, if its sync fails). */
  waitAccepted(): Promise<boolean> {
    if (this.#state !== PENDING) return Promise.resolve(this.#state !== LOST)
    return new Promise((resolve) => {
      if (this.#onAccepted === undefined) this.#onAccepted = [resolve]
      else this.#onAccepted.push(resolve)
    })
  }

  /** A checkpoint that is accepted when all of `checkpoints` are, and durable when all are. */
  static all(checkpoints: readonly NodeCheckpoint[]): Checkpoint {
    const all = new Checkpoint()
    const every = (results: boolean[]) => results.every(Boolean)
    Promise.all(checkpoints.map((c) => c.waitAccepted())).then((accepted) => {
      if (every(accepted)) all.accept()
      else all.settle(false)
    })
    Promise.all(checkpoints.map((c) => c.wait())).then((durable) => all.settle(every(durable)))
    return all
  }
}

function wake(waiters: ((ok: boolean) => void)[] | undefined, ok: boolean): void {
  if (waiters) for (const resolve of waiters) resolve(ok)
}

const LOST_CHECKPOINT = new Checkpoint()
LOST_CHECKPOINT.settle(false)

/**
 * What `node`'s inputs' records still wait for, read from its inputs before it starts (they are
 * let go then): `undefined` when all are durable (the common case, nothing allocated), else one
 * checkpoint for all of them. The node keeps it in `durable` until it has a record of its own; a
 * node that stores nothing keeps it for good.
 */
export function inputsCheckpoint(node: PlanNode): NodeCheckpoint | undefined {
  const deps = node.deps
  let waiting: NodeCheckpoint[] | undefined
  for (let i = 0; i < deps.length; i++) {
    const checkpoint = (deps[i] as PlanNode).durable
    if (checkpoint === undefined || !checkpoint.pending) {
      if (checkpoint?.lost) return LOST_CHECKPOINT
      continue
    }
    if (waiting === undefined) waiting = [checkpoint]
    else if (!waiting.includes(checkpoint)) waiting.push(checkpoint)
  }
  if (waiting === undefined) return undefined
  if (waiting.length === 1) return waiting[0]
  return Checkpoint.all(waiting)
}

const NEVER: Promise<boolean> = Promise.resolve(false)

/** `undefined` when `checkpoint` is durable (or absent), else whether it becomes durable. */
export function whenDurable(checkpoint: NodeCheckpoint | undefined): Promise<boolean> | undefined {
  if (checkpoint === undefined) return undefined
  if (checkpoint.pending) return checkpoint.wait()
  return checkpoint.lost ? NEVER : undefined
}

/** `undefined` when `checkpoint` is accepted (or absent), else whether it will be. */
export function whenAccepted(checkpoint: NodeCheckpoint | undefined): Promise<boolean> | undefined {
  if (checkpoint === undefined) return undefined
  if (checkpoint.undecided) return checkpoint.waitAccepted()
  return checkpoint.lost ? NEVER : undefined
}
