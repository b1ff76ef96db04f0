// A workflow's inbox on storage: events appended at the next free sequence number (create-if-absent,
// so senders to one workflow serialize on it and events keep the order they were accepted in),
// idempotent sends recorded once under a hash of their key, and the markers saying which waiting
// step took which event. Senders write here through `appendEvent`; the workflow's runner reads
// with `readInbox` and marks with `markTaken`.

import { createHash } from 'node:crypto'
import { ConditionFailedError, CorruptRecordError, quote, StorageUnavailableError } from '../errors.js'
import {
  type EventKeyRecord,
  type EventRecord,
  parseJson,
  type StoredOutput,
  storeKeys,
  type TakenRecord,
  utf8,
} from '../model/records.js'
import { nextPageAfter, type PutCondition } from '../storage/storage.js'
import { mapLimit } from '../util/map-limit.js'
import type { WorkflowStore } from './store.js'

/** Records read at once when an inbox or its markers are read whole. */
const READS_IN_FLIGHT = 16

/** How many sequence numbers a send tries past the tail it knows before giving up (senders racing). */
const MAX_APPEND_ROUNDS = 1000

/** An event of the inbox, as the runner reads it (the payload is loaded when a step takes it). */
export interface InboxEvent {
  seq: number
  name: string
  incarnation: string
  sentAt: number
  /** The payload, or `undefined` when `key` names the key record that holds it. */
  payload: StoredOutput | undefined
  /** The hash of an idempotent send's key. */
  key: string | undefined
}

/** What `appendEvent` did. */
export interface AppendedEvent {
  seq: number
  /** An idempotent send whose key was sent before: nothing new was accepted. */
  duplicate: boolean
}

/** The hash an idempotent send is stored under: of the event name and the key. */
export function eventKeyHash(name: string, idempotencyKey: string): string {
  return createHash('sha256').update(`${name}\u0000${idempotencyKey}`).digest('hex').slice(0, 40)
}

function seqOf(prefix: string, key: string): number {
  return Number(key.slice(prefix.length))
}

/** The highest sequence number used in a workflow's inbox, or 0 when it is empty (lists it all). */
export async function lastEventSeq(store: WorkflowStore, workflowId: string): Promise<number> {
  const prefix = storeKeys.eventsPrefix(workflowId)
  const keys = await store.listAllKeys(prefix)
  const last = keys[keys.length - 1]
  return last === undefined ? 0 : seqOf(prefix, last)
}

/**
 * Appends an event at the first free sequence number after `afterSeq` (the tail the sender knows:
 * a wrong guess costs one lost create per event appended since). An idempotent send (`key`) first
 * creates its key record; a second send with the same key finds it and appends nothing, unless
 * the first send never got its event appended (it crashed between its two writes), which this send
 * then completes: should both append, the reader takes the first and drops the second (`readInbox`).
 */
export async function appendEvent(
  store: WorkflowStore,
  workflowId: string,
  event: { name: string; payload: StoredOutput; incarnation: string; idempotencyKey?: string },
  afterSeq: number,
): Promise<AppendedEvent> {
  const sentAt = Date.now()
  let record: EventRecord = {
    v: 1,
    name: event.name,
    payload: event.payload,
    sentAt,
    incarnation: event.incarnation,
  }
  let keyRecord: EventKeyRecord | undefined
  let duplicate = false
  if (event.idempotencyKey !== undefined) {
    const hash = eventKeyHash(event.name, event.idempotencyKey)
    keyRecord = {
      v: 1,
      name: event.name,
      idempotencyKey: event.idempotencyKey,
      payload: event.payload,
      sentAt,
      incarnation: event.incarnation,
    }
    const keyKey = storeKeys.eventKey(workflowId, hash)
    let condition: PutCondition = { ifAbsent: true }
    for (;;) {
      try {
        await store.storage.put(keyKey, utf8(JSON.stringify(keyRecord)), condition)
        break
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error
      }
      const found = await store.storage.get(keyKey)
      if (!found) {
        condition = { ifAbsent: true }
        continue
      }
      const existing = parseKeyRecord(keyKey, found.data)
      if (existing.incarnation !== event.incarnation) {
        // Written for an earlier workflow under this id (deleted since) by a sender that raced
        // the delete: not a send to this one, which takes the key over.
        condition = { ifVersion: found.version }
        continue
      }
      if (existing.seq !== undefined) return { seq: existing.seq, duplicate: true }
      // Sent before, and its event may not be appended (a crash between the two writes): append
      // it now. The reader drops the second of two events with one key.
      duplicate = true
      keyRecord = existing
      break
    }
    record = { v: 1, name: event.name, key: hash, sentAt, incarnation: event.incarnation }
  }
  const data = utf8(JSON.stringify(record))
  let seq = afterSeq + 1
  for (let round = 1; round <= MAX_APPEND_ROUNDS; round++) {
    const tried = Date.now()
    try {
      await store.storage.put(storeKeys.event(workflowId, seq), data, { ifAbsent: true })
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error
      // Taken by another sender. Senders that lost together retry together and lose again (four
      // senders to one workflow cost 2.5 lost creates an event on S3, where requests are the
      // cost): each first waits a random while, up to a few of the create's own durations.
      await backOff((Date.now() - tried + 1) * 2 ** Math.min(round, 4))
      // The first time, the tail this sender knew is stale (others appended since, often
      // several): past the tail as listed now, from the number tried on, rather than one lost
      // create per event they appended. After that, the next number (a listing every eighth).
      seq = round % 8 === 1 ? (await tailAfter(store, workflowId, seq)) + 1 : seq + 1
      continue
    }
    if (keyRecord && record.key !== undefined && !duplicate) {
      // Best effort: the key record learns its sequence number, so that a resend answers at once.
      await store.storage
        .put(storeKeys.eventKey(workflowId, record.key), utf8(JSON.stringify({ ...keyRecord, seq })))
        .catch(() => {})
    }
    return { seq, duplicate }
  }
  throw new StorageUnavailableError(
    `could not append event ${quote(event.name)} to workflow ${quote(workflowId)}: ${MAX_APPEND_ROUNDS} sequence numbers in a row were taken by other senders`,
  )
}

/** Waits a random time below `maxMs` (a sender that lost a sequence number to another). */
function backOff(maxMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * maxMs))
}

/** The last sequence number in the inbox from `seq` on (`seq` when nothing follows it). */
async function tailAfter(store: WorkflowStore, workflowId: string, seq: number): Promise<number> {
  const prefix = storeKeys.eventsPrefix(workflowId)
  let after: string | undefined = storeKeys.event(workflowId, seq)
  let last = seq
  while (after !== undefined) {
    const page = await store.storage.list(prefix, { after, limit: 1000 })
    const key = page.keys[page.keys.length - 1]
    if (key !== undefined) last = seqOf(prefix, key)
    after = nextPageAfter(prefix, after, page)
  }
  return last
}

async function readKeyRecord(
  store: WorkflowStore,
  workflowId: string,
  hash: string,
): Promise<EventKeyRecord | undefined> {
  const key = storeKeys.eventKey(workflowId, hash)
  const found = await store.storage.get(key)
  return found && parseKeyRecord(key, found.data)
}

function parseKeyRecord(key: string, data: Uint8Array): EventKeyRecord {
  const record = parseJson<EventKeyRecord>(key, data)
  if (record?.v !== 1 || typeof record.name !== 'string' || typeof record.payload !== 'object') {
    throw new CorruptRecordError(key, 'not an event key record written by this version of wf')
  }
  return record
}

/**
 * The events of a workflow's inbox after `afterSeq`, in order, with an idempotent send that was
 * appended twice (see `appendEvent`) kept only the first time (`seenKeys`, updated: incarnation
 * and key hash).
 */
export async function readInbox(
  store: WorkflowStore,
  workflowId: string,
  afterSeq: number,
  seenKeys: Set<string>,
  /** Sequence numbers read before (listed again past a gap): not read again. */
  skip?: (seq: number) => boolean,
  /** Called with the number of each event dropped as the second of one idempotent send. */
  dropped?: (seq: number) => void,
): Promise<InboxEvent[]> {
  const prefix = storeKeys.eventsPrefix(workflowId)
  const keys: string[] = []
  let after = afterSeq === 0 ? undefined : storeKeys.event(workflowId, afterSeq)
  for (;;) {
    const page = await store.storage.list(
      prefix,
      after === undefined ? { limit: 1000 } : { after, limit: 1000 },
    )
    keys.push(...page.keys)
    after = nextPageAfter(prefix, after, page)
    if (after === undefined) break
  }
  const events: InboxEvent[] = []
  // Read side by side (a resume reads the whole inbox), then taken in order.
  const wanted = skip === undefined ? keys : keys.filter((key) => !skip(seqOf(prefix, key)))
  const values = await mapLimit(wanted, READS_IN_FLIGHT, (key) => store.storage.get(key))
  for (const [i, key] of wanted.entries()) {
    const found = values[i]
    if (!found) continue
    const record = parseJson<EventRecord>(key, found.data)
    if (record?.v !== 1 || typeof record.name !== 'string') {
      throw new CorruptRecordError(key, 'not an event record written by this version of wf')
    }
    if (record.key !== undefined) {
      // Per incarnation: a key sent to a workflow deleted since does not hide this one's send.
      const seen = `${record.incarnation}\u0000${record.key}`
      if (seenKeys.has(seen)) {
        dropped?.(seqOf(prefix, key))
        continue
      }
      seenKeys.add(seen)
    }
    events.push({
      seq: seqOf(prefix, key),
      name: record.name,
      incarnation: record.incarnation,
      sentAt: record.sentAt,
      payload: record.payload,
      key: record.key,
    })
  }
  return events
}

/** The payload of an event (inline in it, or in its key record), as codec text. */
export async function loadEventPayload(
  store: WorkflowStore,
  workflowId: string,
  event: InboxEvent,
): Promise<string> {
  let payload = event.payload
  if (payload === undefined && event.key !== undefined)
    payload = (await readKeyRecord(store, workflowId, event.key))?.payload
  if (payload === undefined) {
    throw new CorruptRecordError(
      storeKeys.event(workflowId, event.seq),
      'the event has neither a payload nor a key record holding one',
    )
  }
  return store.loadOutput(workflowId, payload)
}

/** The steps that took events, by sequence number. */
export async function readTaken(store: WorkflowStore, workflowId: string): Promise<Map<number, string>> {
  const prefix = storeKeys.takenPrefix(workflowId)
  const taken = new Map<number, string>()
  const keys = await store.listAllKeys(prefix)
  const values = await mapLimit(keys, READS_IN_FLIGHT, (key) => store.storage.get(key))
  for (const [i, key] of keys.entries()) {
    const found = values[i]
    if (!found) continue
    const record = parseJson<TakenRecord>(key, found.data)
    if (record?.v !== 1 || typeof record.stepId !== 'string') {
      throw new CorruptRecordError(key, 'not a taken-event marker written by this version of wf')
    }
    taken.set(seqOf(prefix, key), record.stepId)
  }
  return taken
}

/**
 * Marks event `seq` taken by `stepId` (create-if-absent), before that step commits it. Resolves to
 * the step that holds it: `stepId`, or the one an earlier run of this workflow marked.
 */
export async function markTaken(
  store: WorkflowStore,
  workflowId: string,
  seq: number,
  stepId: string,
): Promise<string> {
  const record: TakenRecord = { v: 1, stepId, takenAt: Date.now() }
  try {
    await store.storage.put(storeKeys.taken(workflowId, seq), utf8(JSON.stringify(record)), {
      ifAbsent: true,
    })
    return stepId
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error
    const found = await store.storage.get(storeKeys.taken(workflowId, seq))
    if (!found) throw error
    return parseJson<TakenRecord>(storeKeys.taken(workflowId, seq), found.data).stepId
  }
}

/** An event of a workflow's inbox as `wf show` lists it. */
export interface EventSummary {
  seq: number
  name: string
  sentAt: number
  /** The step that took it; absent while it waits for one. */
  takenBy?: string
  /** Sent to an earlier workflow under the same id (deleted since): never taken by this one. */
  foreign?: boolean
}

/** Every event of a workflow's inbox, in order, with the step that took each (for inspection). */
export async function listEvents(
  store: WorkflowStore,
  workflowId: string,
  incarnation: string,
): Promise<EventSummary[]> {
  const taken = await readTaken(store, workflowId)
  const events = await readInbox(store, workflowId, 0, new Set())
  return events.map((event) => {
    const summary: EventSummary = { seq: event.seq, name: event.name, sentAt: event.sentAt }
    const by = taken.get(event.seq)
    if (by !== undefined) summary.takenBy = by
    if (event.incarnation !== incarnation) summary.foreign = true
    return summary
  })
}
