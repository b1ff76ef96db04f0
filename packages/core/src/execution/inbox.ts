// The inbox as one execution sees it: the events sent to its workflow (this incarnation's), which
// of them earlier runs' steps took, and which waiting step takes which event now. The execution
// holds the workflow under its lease, so it alone hands events out; a step takes the event an
// earlier run marked for it (a resume after a crash takes the same event), else the first of its
// name that nobody took. Senders in this process say when they sent (`notifyInbox`).

import { type InboxEvent, loadEventPayload, markTaken, readInbox, readTaken } from '../store/events.js'
import type { WorkflowStore } from '../store/store.js'

const listeners = new Map<string, Set<() => void>>()

/** Tells the executions (and parked runs) of `workflowId` in this process that an event was sent. */
export function notifyInbox(workflowId: string): void {
  const set = listeners.get(workflowId)
  if (set) for (const listener of [...set]) listener()
}

/** Calls `listener` at each `notifyInbox(workflowId)` until the returned function is called. */
export function listenInbox(workflowId: string, listener: () => void): () => void {
  let set = listeners.get(workflowId)
  if (!set) {
    set = new Set()
    listeners.set(workflowId, set)
  }
  set.add(listener)
  return () => {
    set.delete(listener)
    if (set.size === 0 && listeners.get(workflowId) === set) listeners.delete(workflowId)
  }
}

export class Inbox {
  readonly #store: WorkflowStore
  readonly #workflowId: string
  readonly #incarnation: string
  /** Which step took which event (read once, then kept here: only this runner marks). */
  #taken: Map<number, string> | undefined
  /** Events not taken yet, in order. */
  #events: InboxEvent[] = []
  /** The highest sequence number up to which every number was read. */
  #lastSeq = 0
  /** Numbers read past `#lastSeq` (after a gap). */
  readonly #ahead = new Set<number>()
  readonly #seenKeys = new Set<string>()

  constructor(store: WorkflowStore, workflowId: string, incarnation: string) {
    this.#store = store
    this.#workflowId = workflowId
    this.#incarnation = incarnation
  }

  /** The sequence number up to which the inbox was read without a gap. */
  get lastSeq(): number {
    return this.#lastSeq
  }

  /** Reads the events sent since the last read (and, the first time, the taken markers). */
  async refresh(): Promise<void> {
    this.#taken ??= await readTaken(this.#store, this.#workflowId)
    const fresh = await readInbox(
      this.#store,
      this.#workflowId,
      this.#lastSeq,
      this.#seenKeys,
      (seq) => this.#ahead.has(seq),
      (seq) => this.#ahead.add(seq),
    )
    for (const event of fresh) {
      this.#ahead.add(event.seq)
      // An event sent to an earlier workflow under this id (deleted since) is not this one's.
      if (event.incarnation === this.#incarnation) this.#events.push(event)
    }
    // Listing resumes after the last number read with none missing before it: an event written
    // into a gap (a sender that started past it: a late one to a deleted workflow) is still found.
    while (this.#ahead.delete(this.#lastSeq + 1)) this.#lastSeq++
  }

  /**
   * The event step `stepId` takes, reserved for it: the one an earlier run marked for it, else
   * the first event `name` that no step took; `undefined` when there is none yet.
   */
  pick(stepId: string, name: string): InboxEvent | undefined {
    const taken = this.#taken ?? new Map<number, string>()
    let at = this.#events.findIndex((event) => taken.get(event.seq) === stepId)
    if (at === -1) at = this.#events.findIndex((event) => event.name === name && !taken.has(event.seq))
    if (at === -1) return undefined
    const [event] = this.#events.splice(at, 1) as [InboxEvent]
    taken.set(event.seq, stepId)
    return event
  }

  /**
   * Marks `event` taken by `stepId` and resolves to its payload (codec text), or to `undefined`
   * when another step's marker was there first (written by a runner that lost the workflow since):
   * that step keeps it.
   */
  async take(event: InboxEvent, stepId: string): Promise<string | undefined> {
    const holder = await markTaken(this.#store, this.#workflowId, event.seq, stepId)
    if (holder !== stepId) {
      this.#taken?.set(event.seq, holder)
      return undefined
    }
    return loadEventPayload(this.#store, this.#workflowId, event)
  }
}
