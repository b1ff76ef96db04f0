// Sending an event to a workflow (`Runtime.sendEvent`, and through it @wf/client's `sendEvent` and
// `wf send`): checked, encoded, appended to the workflow's inbox in order (store/events.ts), and,
// when the workflow is parked, made due at once so that a worker (or the process awaiting it)
// takes it on. The sender writes the event before it reads whether the workflow is parked, and a
// runner that parks reads the inbox after its parked record: one of the two always sees the other.

import { EventRefusedError, InvalidOptionsError, quote, WorkflowNotFoundError } from '../errors.js'
import { notifyInbox } from '../execution/inbox.js'
import { type Codec, encodeValue } from '../model/codec.js'
import { validateEventName, validateWorkflowId } from '../model/ids.js'
import { incarnationOf, isParked, type Versioned, type WorkflowRecord } from '../model/records.js'
import { isStepNode, type StepNode } from '../step/step.js'
import { appendEvent, lastEventSeq, readInbox, readTaken } from '../store/events.js'
import type { WorkflowStore } from '../store/store.js'

/** Options of `sendEvent`. */
export interface SendEventOptions {
  /**
   * Sends with this key are one event: a second send with it (a retry after a timeout or a crash,
   * or a duplicate webhook) is accepted and changes nothing (`duplicate: true`). 1 to 512 characters.
   */
  idempotencyKey?: string
  /**
   * Starts the workflow from this node if no workflow has the id yet (created if absent, so two
   * senders racing start it once; stored PENDING for a worker to run), then delivers the event.
   */
  start?: StepNode
}

/** What `sendEvent` did. */
export interface SentEvent {
  workflowId: string
  name: string
  /** The event's place in the workflow's inbox: events are taken in this order. */
  seq: number
  /** Sent before with the same `idempotencyKey`: nothing new was accepted. */
  duplicate: boolean
  /** The workflow was created by this send (`start`). */
  started: boolean
}

/**
 * The last inbox sequence number each workflow was sent to from this process: where a send starts
 * looking. Kept per incarnation: the inbox of a workflow deleted since went with it, and a tail
 * remembered from it would start the new inbox far ahead, leaving numbers free below what its
 * runner has read, where a sender that lists the inbox afresh could still append (never taken).
 */
const tails = new Map<string, number>()
const MAX_TAILS = 10_000

/** What `sendEvent` needs from its runtime. */
export interface SendContext {
  store: WorkflowStore
  codec: Codec
  /** Submits `node` as workflow `workflowId` (PENDING) unless it exists; resolves to whether it created it. */
  submit(node: StepNode, workflowId: string): Promise<boolean>
}

/** Checks a send's arguments before anything is read or written. */
export function validateSend(workflowId: string, name: string, options: SendEventOptions): void {
  validateWorkflowId(workflowId)
  validateEventName(name, 'sendEvent(name)')
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('sendEvent options must be an object')
  }
  if (options.start !== undefined && !isStepNode(options.start)) {
    throw new InvalidOptionsError(
      'sendEvent start must be a StepNode: the workflow to start when the id is unknown',
    )
  }
  const key = options.idempotencyKey
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 512)) {
    throw new InvalidOptionsError('sendEvent idempotencyKey must be a string of 1 to 512 characters')
  }
}

export async function sendEvent(
  context: SendContext,
  workflowId: string,
  name: string,
  payload: unknown,
  options: SendEventOptions = {},
): Promise<SentEvent> {
  validateSend(workflowId, name, options)
  const { store, codec } = context
  // Encoded first: a payload that cannot be stored fails with nothing written.
  const text = encodeValue(codec, payload, 'result', `event ${quote(name)}`)
  let found = await store.readWorkflow(workflowId)
  let started = false
  if (!found && options.start !== undefined) {
    started = await context.submit(options.start, workflowId)
    found = await store.readWorkflow(workflowId)
  }
  if (!found) throw new WorkflowNotFoundError(workflowId)
  const { status } = found.record
  if (status === 'SUCCESSFUL' || status === 'CANCELED') throw new EventRefusedError(workflowId, name, status)
  const stored = await store.storeOutput(workflowId, text)
  const incarnation = incarnationOf(found.record)
  const tailKey = `${workflowId}\u0000${incarnation}`
  const tail = tails.get(tailKey) ?? (await lastEventSeq(store, workflowId))
  const event = { name, payload: stored, incarnation }
  const appended = await appendEvent(
    store,
    workflowId,
    options.idempotencyKey === undefined ? event : { ...event, idempotencyKey: options.idempotencyKey },
    tail,
  )
  if (tails.size >= MAX_TAILS) tails.clear()
  tails.set(tailKey, Math.max(appended.seq, tail))
  if (!appended.duplicate) await wakeIfParked(store, workflowId)
  return { workflowId, name, seq: appended.seq, duplicate: appended.duplicate, started }
}

/** After an event is written: a parked workflow is made due now, and this process is told. */
async function wakeIfParked(store: WorkflowStore, workflowId: string): Promise<void> {
  const now: Versioned<WorkflowRecord> | undefined = await store.readWorkflow(workflowId)
  if (now && isParked(now.record)) await store.markDue(workflowId, Date.now())
  notifyInbox(workflowId)
}

/**
 * Whether a parked workflow has an event it waits for that no step took (read after `inbox.seq`,
 * which is moved on): the process awaiting it then takes it on without waiting for a worker.
 */
export async function pendingEvent(
  store: WorkflowStore,
  record: WorkflowRecord,
  inbox: { seq: number },
): Promise<boolean> {
  const names = record.parkedEvents
  if (!isParked(record) || names === undefined || names.length === 0) return false
  const fresh = await readInbox(store, record.workflowId, inbox.seq, new Set())
  if (fresh.length === 0) return false
  const taken = await readTaken(store, record.workflowId)
  const incarnation = incarnationOf(record)
  for (const event of fresh) inbox.seq = Math.max(inbox.seq, event.seq)
  return fresh.some(
    (event) => event.incarnation === incarnation && names.includes(event.name) && !taken.has(event.seq),
  )
}
