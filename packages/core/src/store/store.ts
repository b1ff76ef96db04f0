// The store: reads and writes workflow and step records (and, through runner-records.ts, runner
// records) on a `Storage`, at the keys records.ts lays out: create-if-absent commits, compare-and-swap
// status changes with their index markers, inline or separate graphs and outputs.
// Over 400 lines: one class with one method per record operation; split by record kind when it grows.

import { randomBytes } from 'node:crypto'
import {
  ConditionFailedError,
  CorruptRecordError,
  InvalidOptionsError,
  quote,
  StorageUnavailableError,
  WorkflowNotFoundError,
} from '../errors.js'
import type { Codec, Encoded } from '../model/codec.js'
import {
  endedKey,
  isParked,
  jsonOfGraph,
  parseJson,
  type RunnerRecord,
  recordJson,
  STORED_STATUSES,
  type StartBatchRecord,
  type StepFailures,
  type StepRecord,
  type StoredOutput,
  type StoredStatus,
  storeKeys,
  utf8,
  type Versioned,
  type WorkflowRecord,
} from '../model/records.js'
import type { StoredGraph } from '../model/stored-graph.js'
import { compareKeys, nextPageAfter, type Storage } from '../storage/storage.js'
import { decodeBlob, encodeBlob, type StoredEncoded } from './blob-format.js'
import { createdKeyOf } from './created-keys.js'
import { RunnerRecords } from './runner-records.js'

const IF_ABSENT = Object.freeze({ ifAbsent: true } as const)
const ignore = (): void => {}
const ignoreConditionFailed = (error: unknown): void => {
  if (!(error instanceof ConditionFailedError)) throw error
}

/** How many compare-and-swap rounds a start batch update may take (see `removeFromStartBatch`). */
const MAX_BATCH_ROUNDS = 256

/**
 * Graphs up to this many characters of JSON go inline in the workflow record, saving a write per
 * submission. Larger ones get a key of their own: the record is rewritten at every status change
 * and lease renewal, and is read by listings, so it should stay small.
 */
const INLINE_GRAPH_CHARS = 16 * 1024

/**
 * The record without an owner: no runner holds the workflow any more (it ended, was canceled, or
 * was given back). Drops the owner's lease, whichever kind it was.
 */
export function withoutOwner(record: WorkflowRecord): WorkflowRecord {
  const { owner: _owner, lease: _lease, leaseExpiresAt: _expiry, ...rest } = record
  return rest
}

/**
 * A runner-leased record is stored without `leaseExpiresAt`: one filled in from the runner record
 * by a reader must never be written back as if it were the record's own.
 */
function stored(record: WorkflowRecord): WorkflowRecord {
  if (record.lease === 'runner') delete record.leaseExpiresAt
  return record
}

const isActive = (status: StoredStatus): boolean => status === 'PENDING' || status === 'RUNNING'

/**
 * The status under which the index lists a record, or `undefined` while its start batch lists it
 * (`startBatch`). Listings and workers read the record behind a PENDING or RUNNING marker anyway
 * (RESUMABLE is derived from it), so a workflow going from PENDING to RUNNING keeps its marker:
 * one write less for every workflow a worker takes.
 */
export function indexStatus(record: WorkflowRecord): StoredStatus | undefined {
  const { indexedAs, status } = record
  if (!isActive(status)) return status
  // A parked workflow is listed by its due marker alone (`dueKey`): workers take every workflow
  // with a PENDING marker at once, and this one must wait until its time.
  if (record.startBatch !== undefined || isParked(record)) return undefined
  return indexedAs !== undefined && isActive(indexedAs) ? indexedAs : status
}

/** The due marker of a parked record (`due/<wake time>/<id>`), else `undefined`. */
export function dueKey(record: WorkflowRecord): string | undefined {
  return isParked(record) ? storeKeys.due(record.parkedUntil as number, record.workflowId) : undefined
}

/** A workflow as the ended index lists it (`ended/<day>/<id>`). */
export interface EndedEntry {
  key: string
  /** Its end day, `yyyy-mm-dd` (UTC). */
  day: string
  workflowId: string
}

/** A parked workflow as the due index lists it. */
export interface DueEntry {
  workflowId: string
  /** The wake time its marker says (ms since the epoch). */
  wakeAt: number
  key: string
}

/**
 * The record of the root step committed by the final workflow record (see `WorkflowRecord.rootStep`),
 * or `undefined` when `stepId` is not that step.
 */
function rootStepRecord(workflow: WorkflowRecord, stepId: string): StepRecord | undefined {
  const run = workflow.rootStep
  if (run === undefined || workflow.status !== 'SUCCESSFUL' || workflow.rootStepId !== stepId)
    return undefined
  if (workflow.output === undefined) {
    throw new CorruptRecordError(
      storeKeys.workflow(workflow.workflowId),
      'it commits its root step but has no output',
    )
  }
  return {
    v: 1,
    name: run.name,
    kind: 'value',
    output: workflow.output,
    startTime: run.startTime,
    endTime: run.endTime,
    attempts: run.attempts,
  }
}

/** Reads and writes workflow records on a `Storage`. Shared by the runtime and the client. */
export class WorkflowStore {
  readonly storage: Storage
  /** Outputs larger than this (in bytes of codec text) go to a content-addressed blob. */
  readonly blobThreshold: number
  /** The runner records, with their cache: a listing of many workflows of one runner reads its record once. */
  readonly #runners: RunnerRecords

  constructor(storage: Storage, blobThreshold = 256 * 1024) {
    this.storage = storage
    this.blobThreshold = blobThreshold
    this.#runners = new RunnerRecords(storage)
  }

  /**
   * The workflow record, or `undefined`. A record held under its runner's lease (`lease: 'runner'`)
   * comes with `leaseExpiresAt` filled in from the runner record (see `fillRunnerLease`), so that
   * `Runtime.deriveStatus` can tell RUNNING from RESUMABLE without I/O.
   */
  readWorkflow(workflowId: string): Promise<Versioned<WorkflowRecord> | undefined> {
    // Being deleted (`deleting`): gone for every reader, though some of its keys remain a while.
    // One async function, not one awaiting the other: each submission reads, and every promise
    // (an await's too) pays the AsyncLocalStorage hooks.
    return this.#readWorkflow(workflowId, false)
  }

  /**
   * The workflow record as stored, one being deleted (`deleting`) included: for deletion itself
   * and for checks. Everything else reads `readWorkflow`.
   */
  readStoredWorkflow(workflowId: string): Promise<Versioned<WorkflowRecord> | undefined> {
    return this.#readWorkflow(workflowId, true)
  }

  async #readWorkflow(workflowId: string, deleting: boolean): Promise<Versioned<WorkflowRecord> | undefined> {
    const key = storeKeys.workflow(workflowId)
    const found = await this.storage.get(key)
    if (!found) return undefined
    const record = parseJson<WorkflowRecord>(key, found.data)
    if (record?.v !== 1 || record.workflowId !== workflowId || !STORED_STATUSES.includes(record.status)) {
      throw new CorruptRecordError(key, 'not a workflow record written by this version of wf')
    }
    if (record.lease === 'runner') await this.fillRunnerLease(record)
    if (!deleting && record.deleting !== undefined) return undefined
    return { record, version: found.version }
  }

  /**
   * Sets `leaseExpiresAt` of a runner-leased record to its runner's (0 when the runner record is
   * gone), from a cache of runner records unless `fresh` (see `RunnerRecords.fillLease`).
   */
  fillRunnerLease(record: WorkflowRecord, options: { fresh?: boolean } = {}): Promise<WorkflowRecord> {
    return this.#runners.fillLease(record, options)
  }

  /** A runner's lease record, read from storage (not cached). */
  readRunner(runnerId: string): Promise<RunnerRecord | undefined> {
    return this.#runners.read(runnerId)
  }

  /** Writes a runner's lease record (unconditional: only that runner writes it). */
  writeRunner(record: RunnerRecord): Promise<void> {
    return this.#runners.write(record)
  }

  /** Deletes a runner's lease record (a runner closing with no workflow left). */
  deleteRunner(runnerId: string): Promise<void> {
    return this.#runners.delete(runnerId)
  }
  /** Deletes the records of runners gone for sure (see `RunnerRecords.sweep`); resolves to how many. */
  sweepRunners(keep: string, now: number, staleMs: number): Promise<number> {
    return this.#runners.sweep(keep, now, staleMs)
  }

  async requireWorkflow(workflowId: string): Promise<Versioned<WorkflowRecord>> {
    const found = await this.readWorkflow(workflowId)
    if (!found) throw new WorkflowNotFoundError(workflowId)
    return found
  }

  /** Writes a submitted graph under a fresh unique key and returns that key's nonce. */
  async writeGraph(workflowId: string, graph: StoredGraph, json = JSON.stringify(graph)): Promise<string> {
    const nonce = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
    await this.storage.put(storeKeys.graph(workflowId, nonce), utf8(json))
    return nonce
  }

  /** The graph itself when small enough to go inline in its workflow record (no I/O), else `undefined`. */
  inlineGraph(graph: StoredGraph): StoredGraph | undefined {
    return jsonOfGraph(graph).length <= INLINE_GRAPH_CHARS ? graph : undefined
  }

  /**
   * What a new workflow record holds as its `graph`: the graph itself when small (no write), else
   * the nonce of a key written for it now.
   */
  async graphRef(workflowId: string, graph: StoredGraph): Promise<WorkflowRecord['graph']> {
    const json = jsonOfGraph(graph)
    return json.length <= INLINE_GRAPH_CHARS ? graph : this.writeGraph(workflowId, graph, json)
  }

  /** The submitted graph of a workflow: inline in its record, or under the key the record names. */
  async loadGraph(record: WorkflowRecord): Promise<StoredGraph> {
    const { graph } = record
    if (typeof graph === 'string') return this.readGraph(record.workflowId, graph)
    if (typeof graph !== 'object' || graph === null || !Array.isArray(graph.nodes)) {
      throw new CorruptRecordError(
        storeKeys.workflow(record.workflowId),
        'its graph is neither inline nor a key',
      )
    }
    return graph
  }

  async readGraph(workflowId: string, nonce: string): Promise<StoredGraph> {
    const key = storeKeys.graph(workflowId, nonce)
    const found = await this.storage.get(key)
    if (!found) throw new CorruptRecordError(key, 'the workflow record names a graph that is not stored')
    return parseJson<StoredGraph>(key, found.data)
  }

  /**
   * Creates the workflow record (create-if-absent: of two submissions of one id, one wins) and its
   * index marker, unless a start batch written before lists it. The marker goes first: a crash in
   * between leaves a marker without a record, which listings drop, never a record that listings miss.
   */
  async createWorkflow(record: WorkflowRecord): Promise<Versioned<WorkflowRecord>> {
    const marker = indexStatus(record)
    // The creation-time entry goes with the first write (the marker, else the record), never after
    // it: no round trip more per start. Best effort: readers skip an entry without its record, and
    // `checkCreatedIndex` adds one a failure or a crash left out (see created-index.ts).
    // One reaction that drops any failure, not `#create`'s and then a catch: once per workflow, and
    // each promise pays the AsyncLocalStorage hooks.
    const created = this.storage
      .put(createdKeyOf(record), new Uint8Array(), IF_ABSENT)
      .then(undefined, ignore)
    if (marker !== undefined) await this.#mark(marker, record.workflowId)
    const { version } = await this.storage.put(
      storeKeys.workflow(record.workflowId),
      utf8(recordJson(stored(record))),
      { ifAbsent: true },
    )
    await created
    // A record created ended (a fork's copy, an import): its ended index entry, as for an end.
    const ended = endedKey(record)
    if (ended !== undefined) await this.#create(ended)
    return { record, version }
  }

  /**
   * Replaces the workflow record by compare-and-swap (`ConditionFailedError` when someone else
   * wrote it since `previous` was read). The index moves with it: new marker, record, then the old
   * marker is removed; a crash in between leaves two markers, which `repairIndex` settles. From
   * PENDING to RUNNING the marker stays (`indexStatus`).
   */
  async updateWorkflow(
    previous: Versioned<WorkflowRecord>,
    next: WorkflowRecord,
  ): Promise<Versioned<WorkflowRecord>> {
    const from = indexStatus(previous.record)
    delete next.indexedAs
    const listed = indexStatus(next)
    // A workflow going from PENDING to RUNNING keeps its PENDING marker (see `indexStatus`).
    const to =
      listed !== undefined && from !== undefined && isActive(from) && isActive(listed) ? from : listed
    if (to !== listed) next.indexedAs = to
    const moved = from !== to
    if (moved && to !== undefined) await this.#mark(to, next.workflowId)
    // A parked workflow's due marker, like a status marker: the new one before the record, the
    // old one after it. A crash in between leaves a stale due marker, which workers drop.
    const fromDue = dueKey(previous.record)
    const toDue = dueKey(next)
    if (toDue !== undefined && toDue !== fromDue) await this.#create(toDue)
    next.updatedAt = Date.now()
    let version: string
    try {
      ;({ version } = await this.storage.put(
        storeKeys.workflow(next.workflowId),
        utf8(recordJson(stored(next))),
        { ifVersion: previous.version },
      ))
    } catch (error) {
      // The marker written above may now be wrong: settle the index from whatever record won,
      // unless that record is indexed under it too (two runners claiming one workflow: the
      // loser's marker is the winner's, and a repair would cost eight requests).
      if (moved && error instanceof ConditionFailedError) {
        const won =
          to !== undefined && toDue === undefined
            ? await this.readWorkflow(next.workflowId).catch(() => undefined)
            : undefined
        if (!won || indexStatus(won.record) !== to || dueKey(won.record) !== undefined)
          await this.repairIndex(next.workflowId).catch(() => {})
      }
      throw error
    }
    // After the record, side by side (none orders another; on S3 each is a round trip): the old
    // markers go, and the ended index entry (retention lists it by day) comes. A crash in between
    // leaves a stale marker, which `repairIndex` and workers settle, or an ended record without
    // its entry, which `wf doctor --fix` and `wf gc --full` add; an entry left from an earlier end
    // (a FAILED workflow resumed) is stale, and the retention pass that meets it drops it.
    const after: Promise<unknown>[] = []
    if (moved && from !== undefined) after.push(this.storage.delete(storeKeys.index(from, next.workflowId)))
    if (fromDue !== undefined && fromDue !== toDue) after.push(this.storage.delete(fromDue))
    const ended = endedKey(next)
    if (ended !== undefined && ended !== endedKey(previous.record))
      after.push(this.storage.put(ended, new Uint8Array(), IF_ABSENT).then(undefined, ignoreConditionFailed))
    if (after.length === 1) await after[0]
    else if (after.length > 1) await Promise.all(after)
    return { record: next, version }
  }

  /**
   * Makes the index agree with the record: one marker, under its `indexStatus` (none if there is no
   * record, or while its start batch lists it). Returns the record's status.
   */
  async repairIndex(workflowId: string): Promise<StoredStatus | undefined> {
    const found = await this.readWorkflow(workflowId)
    const marker = found && indexStatus(found.record)
    for (const status of STORED_STATUSES) {
      if (status !== marker) await this.storage.delete(storeKeys.index(status, workflowId))
    }
    if (marker) await this.#mark(marker, workflowId)
    const due = found && dueKey(found.record)
    if (due !== undefined) await this.#create(due)
    return found?.record.status
  }

  /**
   * The due index from its start: parked workflows by wake time, earliest first, those due at
   * `now` or before, at most `limit` (one listing: a worker's poll reads one page of it, however
   * many workflows are parked). A marker may be stale (its workflow woke, was deleted, or parked
   * again): the record decides.
   */
  async listDue(now: number, limit = 1000): Promise<DueEntry[]> {
    const prefix = storeKeys.duePrefix
    const page = await this.storage.list(prefix, { limit })
    const due: DueEntry[] = []
    for (const key of page.keys) {
      const slash = key.indexOf('/', prefix.length)
      const wakeAt = Number(key.slice(prefix.length, slash))
      if (slash === -1 || !Number.isFinite(wakeAt)) continue
      if (wakeAt > now) break
      due.push({ workflowId: key.slice(slash + 1), wakeAt, key })
    }
    return due
  }

  /** Every due marker (all parked workflows, earliest first): for listings, not for polls. */
  async allDue(): Promise<DueEntry[]> {
    const prefix = storeKeys.duePrefix
    const entries: DueEntry[] = []
    for (const key of await this.listAllKeys(prefix)) {
      const slash = key.indexOf('/', prefix.length)
      const wakeAt = Number(key.slice(prefix.length, slash))
      if (slash !== -1 && Number.isFinite(wakeAt))
        entries.push({ workflowId: key.slice(slash + 1), wakeAt, key })
    }
    return entries
  }

  /**
   * Makes a parked workflow due at `at` (a send to it: its waiting steps have something to take).
   * The marker may outlive the wake: the worker that takes the workflow on deletes it.
   */
  markDue(workflowId: string, at: number): Promise<void> {
    return this.#create(storeKeys.due(at, workflowId))
  }

  /** Deletes a due marker that its record no longer backs (see `listDue`). */
  async deleteDue(entry: DueEntry): Promise<void> {
    await this.storage.delete(entry.key)
  }

  /** Writes an index marker for a workflow, if it has none under `status` (see `#mark`). */
  addMarker(status: StoredStatus, workflowId: string): Promise<void> {
    return this.#mark(status, workflowId)
  }

  /**
   * Writes an index marker. Markers are empty, so one that exists already is as good as a new one:
   * creating it if absent is enough, and a create is the cheaper write on every backend (the
   * folder storage links the file in without taking the key's lock or reading its version).
   */
  #mark(status: StoredStatus, workflowId: string): Promise<void> {
    return this.#create(storeKeys.index(status, workflowId))
  }

  /** Creates an empty marker at `key` unless one is there. */
  #create(key: string): Promise<void> {
    // Not async: twice per workflow, and an async function costs two more promises.
    return this.storage.put(key, new Uint8Array(), IF_ABSENT).then(ignore, ignoreConditionFailed)
  }

  /** The inline form of an output small enough to need no blob for sure (no I/O: the hot path's check). */
  inlineOutput(text: Encoded): StoredOutput | undefined {
    // A UTF-16 code unit is at most 3 bytes of UTF-8. Text with byte parts always goes to a blob.
    return typeof text === 'string' && text.length < this.blobThreshold / 3 ? { inline: text } : undefined
  }

  /** Stores an output for a record: inline, or as a blob when large or when it has byte parts. */
  async storeOutput(workflowId: string, text: Encoded): Promise<StoredOutput> {
    const inline = this.inlineOutput(text)
    if (inline) return inline
    let bytes: Uint8Array
    if (typeof text === 'string') {
      bytes = utf8(text)
      if (bytes.length <= this.blobThreshold) return { inline: text }
    } else bytes = encodeBlob(text)
    // A random name, not a hash of the bytes: hashing 10 MB cost 10 ms, and nothing needs the
    // content's address (two runners of one step write two blobs; the record that wins names one,
    // and the other goes with the workflow's keys). Unconditional: backends may use multipart
    // uploads (which carry no conditions) for large blobs.
    const name = randomBytes(16).toString('hex')
    const key = storeKeys.blob(workflowId, name)
    const storage = this.storage
    if (storage.putStaged === undefined) await storage.put(key, bytes)
    else {
      // Accepted is enough: the record that names the blob is written after it, so it is durable
      // no later than the blob (`putStaged`'s promise). The folder journal syncs a large value's
      // file before accepting it, and its entry shares one fdatasync with the record's.
      const staged = storage.putStaged(key, bytes)
      staged.durable.catch(ignore) // the record's write is the one awaited
      await staged.accepted
    }
    return typeof text === 'string' ? { blob: name } : { blob: name, format: 2 }
  }

  /** The codec text of an output without byte parts (a workflow's output, an event's payload). */
  async loadOutput(workflowId: string, output: StoredOutput): Promise<string> {
    const loaded = await this.loadEncoded(workflowId, output)
    if (typeof loaded === 'string') return loaded
    throw new CorruptRecordError(
      storeKeys.blob(workflowId, (output as { blob: string }).blob),
      'it holds byte parts where only codec text is written',
    )
  }

  /** The codec text of an output, with its byte parts when it has some (see `Codec.encodeParts`). */
  async loadEncoded(workflowId: string, output: StoredOutput): Promise<StoredEncoded> {
    if ('inline' in output) return output.inline
    const key = storeKeys.blob(workflowId, output.blob)
    const found = await this.storage.get(key)
    if (!found) throw new CorruptRecordError(key, 'a step record refers to a blob that is not stored')
    return decodeBlob(key, found.data)
  }

  /** The value of a step's output, decoded with `codec` (byte parts included). */
  async loadValue(workflowId: string, output: StoredOutput, codec: Codec): Promise<unknown> {
    const loaded = await this.loadEncoded(workflowId, output)
    if (typeof loaded === 'string') return codec.decode(loaded)
    if (codec.decodeParts === undefined) {
      throw new CorruptRecordError(
        storeKeys.blob(workflowId, (output as { blob: string }).blob),
        "it holds byte parts written by wf's default codec, and this runtime's codec has no decodeParts to read them: open the workflow with the default codec (or one built by createCodec)",
      )
    }
    return codec.decodeParts(loaded.text, loaded.parts)
  }

  /**
   * Commits a step record once (create-if-absent). When another runner committed first, its record
   * is returned instead: the duplicate loses the race and adopts the committed value.
   */
  commitStep(workflowId: string, stepId: string, record: StepRecord): Promise<StepRecord> {
    return writeStep(this, workflowId, stepId, record).then(
      () => record,
      (error: unknown) => committedStep(this, workflowId, stepId, error),
    )
  }

  /**
   * Commits, once (create-if-absent), the caught outcome of a `catchExceptions` step whose
   * continuation failed: its `steps/<id>` record holds the continuation, so the outcome has a key
   * of its own. When another runner committed first, its record is returned.
   */
  commitCaught(workflowId: string, stepId: string, record: StepRecord): Promise<StepRecord> {
    return this.storage
      .put(storeKeys.caught(workflowId, stepId), utf8(JSON.stringify(record)), IF_ABSENT)
      .then(
        () => record,
        async (error: unknown) => {
          const existing =
            error instanceof ConditionFailedError ? await this.readCaught(workflowId, stepId) : undefined
          if (!existing) throw error
          return existing
        },
      )
  }

  /** The caught outcome of a `catchExceptions` step whose continuation failed, if one was committed. */
  async readCaught(workflowId: string, stepId: string): Promise<StepRecord | undefined> {
    const key = storeKeys.caught(workflowId, stepId)
    const found = await this.storage.get(key)
    if (!found) return undefined
    const record = parseJson<StepRecord>(key, found.data)
    if (record?.v !== 1 || record.kind !== 'value' || record.output === undefined) {
      throw new CorruptRecordError(key, 'not a caught outcome written by this version of wf')
    }
    return record
  }

  /**
   * The committed record of a step, or `undefined`. The root step of a workflow whose final record
   * committed it has no key of its own: its record is built from the workflow record (`workflow`,
   * read here when not given and the step has no key).
   */
  async readStep(
    workflowId: string,
    stepId: string,
    workflow?: WorkflowRecord,
  ): Promise<StepRecord | undefined> {
    // The workflow record is authoritative for the root: check it first when it is at hand.
    const fromWorkflow = workflow && rootStepRecord(workflow, stepId)
    if (fromWorkflow) return fromWorkflow
    const key = storeKeys.step(workflowId, stepId)
    const found = await this.storage.get(key)
    if (!found) {
      if (workflow) return undefined
      const read = await this.readWorkflow(workflowId)
      return read && rootStepRecord(read.record, stepId)
    }
    const record = parseJson<StepRecord>(key, found.data)
    if ((record?.v !== 1 && record?.v !== 2) || (record.kind !== 'value' && record.kind !== 'continuation')) {
      throw new CorruptRecordError(key, 'not a step record written by this version of wf')
    }
    return record
  }

  /** The failed attempts recorded for a step, or `undefined` when none failed. */
  async readFailures(workflowId: string, stepId: string): Promise<StepFailures | undefined> {
    const key = storeKeys.failures(workflowId, stepId)
    const found = await this.storage.get(key)
    if (!found) return undefined
    const record = parseJson<StepFailures>(key, found.data)
    if (record?.v !== 1 || !Array.isArray(record.errors) || typeof record.attempts !== 'number') {
      throw new CorruptRecordError(key, 'not a record of failed attempts written by this version of wf')
    }
    return record
  }

  /**
   * Writes the failed attempts of a step (unconditionally: only the runner that holds the workflow
   * runs the step, one attempt after the other).
   */
  async writeFailures(workflowId: string, stepId: string, record: StepFailures): Promise<void> {
    await this.storage.put(storeKeys.failures(workflowId, stepId), utf8(JSON.stringify(record)))
  }

  /** Ids of the steps of a workflow with failed attempts recorded, in key order (one listing). */
  /** Ids of the `catchExceptions` steps whose continuation failed and whose outcome was caught. */
  async listCaughtStepIds(workflowId: string): Promise<string[]> {
    const prefix = storeKeys.caughtPrefix(workflowId)
    return (await this.listAllKeys(prefix)).map((key) => key.slice(prefix.length))
  }

  async listFailedStepIds(workflowId: string): Promise<string[]> {
    const prefix = storeKeys.failuresPrefix(workflowId)
    return (await this.listAllKeys(prefix)).map((key) => key.slice(prefix.length))
  }

  /** Every key under `prefix`, following pagination. */
  async listAllKeys(prefix: string): Promise<string[]> {
    const keys: string[] = []
    let after: string | undefined
    for (;;) {
      const page = await this.storage.list(
        prefix,
        after === undefined ? { limit: 1000 } : { after, limit: 1000 },
      )
      keys.push(...page.keys)
      after = nextPageAfter(prefix, after, page)
      if (after === undefined) return keys
    }
  }

  /**
   * Ids of the committed steps of a workflow, in key order: those with a record of their own, and
   * the root step when the final workflow record committed it (`workflow`, read when not given).
   */
  async listStepIds(workflowId: string, workflow?: WorkflowRecord): Promise<string[]> {
    const prefix = storeKeys.stepsPrefix(workflowId)
    const ids = (await this.listAllKeys(prefix)).map((key) => key.slice(prefix.length))
    const record = workflow ?? (await this.readWorkflow(workflowId))?.record
    const root = record && rootStepRecord(record, record.rootStepId) ? record.rootStepId : undefined
    if (root !== undefined && !ids.includes(root)) {
      const at = ids.findIndex((id) => compareKeys(id, root) > 0)
      ids.splice(at === -1 ? ids.length : at, 0, root)
    }
    return ids
  }

  /**
   * Deletes a workflow, as read in `given` (its record as stored: `readStoredWorkflow`, read here
   * when not given; nothing is removed when there is none: see `purgeWorkflow`). First the
   * record is marked `deleting` by compare-and-swap: from then on every reader finds the workflow
   * gone (`readWorkflow`), and a resume or claim that raced either wrote first (this rejects with
   * `ConditionFailedError` and removes nothing: the caller reads it again) or loses its own
   * compare-and-swap. Then the rest goes: its index markers, due marker and start batch entry
   * (listings drop it at once), steps, failures, graph, blobs, events (a new workflow under this
   * id must never find old step records), then the record, then its ended index entry last (the entry is how the next pass
   * finds a marked record that a crash left: it finishes the deletion). A record marked already is
   * finished without a second mark. Resolves to how many keys went (those listed under the
   * workflow, and the index entries its record names).
   */
  async deleteWorkflow(workflowId: string, given?: Versioned<WorkflowRecord>): Promise<number> {
    const found = given ?? (await this.readStoredWorkflow(workflowId))
    if (found === undefined) return 0
    if (found.record.workflowId !== workflowId)
      throw new InvalidOptionsError(`deleteWorkflow: the record given is not the one of ${quote(workflowId)}`)
    let record = found.record
    if (record.deleting === undefined) {
      record = { ...record, deleting: { at: Date.now() } }
      // Not `updateWorkflow`: the index stays as it is until the keys behind it are gone.
      await this.storage.put(storeKeys.workflow(workflowId), utf8(recordJson(stored({ ...record }))), {
        ifVersion: found.version,
      })
    }
    return this.#removeMarked(workflowId, record)
  }

  /** The keys of a workflow whose record is marked `deleting`, in `deleteWorkflow`'s order. */
  async #removeMarked(workflowId: string, record: WorkflowRecord): Promise<number> {
    const recordKey = storeKeys.workflow(workflowId)
    // Its markers first: listings of settled statuses read the index, not the record, so they
    // stop listing it at once. The one it is listed under, and the others a status change may
    // have left. (The ended entry stays until the record is gone: it is how a pass finds it.)
    const statuses = new Set<StoredStatus>([record.status])
    const listed = indexStatus(record)
    if (listed !== undefined) statuses.add(listed)
    if (record.indexedAs !== undefined) statuses.add(record.indexedAs)
    const markers = [...statuses].map((status) => storeKeys.index(status, workflowId))
    // Its creation-time entry (not counted in the result: a workflow created by an earlier version
    // has none). Listings by creation time read the record anyway and skip it.
    markers.push(createdKeyOf(record))
    const due = dueKey(record)
    if (due !== undefined) markers.push(due)
    await this.#deleteKeys(markers)
    if (typeof record.startBatch === 'string') await this.removeFromStartBatch(record.startBatch, workflowId)
    const keys = (await this.listAllKeys(storeKeys.workflowPrefix(workflowId))).filter((k) => k !== recordKey)
    await this.#deleteKeys(keys)
    await this.storage.delete(recordKey)
    const ended = endedKey(record)
    if (ended !== undefined) await this.storage.delete(ended)
    return keys.length + 1 + (listed === undefined ? 0 : 1) + (due === undefined ? 0 : 1) + (ended ? 1 : 0)
  }

  async #deleteKeys(keys: string[]): Promise<void> {
    if (keys.length === 0) return
    if (this.storage.deleteMany) await this.storage.deleteMany(keys)
    else for (const key of keys) await this.storage.delete(key)
  }

  /**
   * The ended index (`ended/<day>/<id>`), day by day from the earliest, up to and including
   * `lastDay`: one page of at most `limit` entries after the entry `after`. `next` is set when
   * more may follow.
   */
  async listEnded(
    lastDay: string,
    options: { after?: string; limit?: number } = {},
  ): Promise<{ entries: EndedEntry[]; next?: string }> {
    const prefix = storeKeys.endedPrefix
    const { after, limit = 256 } = options
    const page = await this.storage.list(prefix, after === undefined ? { limit } : { after, limit })
    const entries: EndedEntry[] = []
    for (const key of page.keys) {
      const slash = key.indexOf('/', prefix.length)
      if (slash === -1) continue
      const day = key.slice(prefix.length, slash)
      // Keys sort by day: past the last day wanted, none after it is wanted either.
      if (day > lastDay) return { entries }
      entries.push({ key, day, workflowId: key.slice(slash + 1) })
    }
    const next = nextPageAfter(prefix, after, page)
    return next === undefined ? { entries } : { entries, next }
  }

  /** Writes the ended index entry of a record that should have one (a repair). Resolves to its key. */
  async addEndedEntry(record: WorkflowRecord): Promise<string | undefined> {
    const key = endedKey(record)
    if (key !== undefined) await this.#create(key)
    return key
  }

  /** Writes the creation-time index entry of a record (a repair: see created-index.ts). Resolves to its key. */
  async addCreatedEntry(record: WorkflowRecord): Promise<string> {
    const key = createdKeyOf(record)
    await this.#create(key)
    return key
  }

  /** Deletes an ended index entry that its record no longer backs (see `listEnded`). */
  async deleteEndedEntry(entry: EndedEntry): Promise<void> {
    await this.storage.delete(entry.key)
  }

  /**
   * Every key that belongs to a workflow, whatever its record says or whether it can be read: its
   * keys under `workflows/<id>/` (the record included), its index markers, and the start batches
   * that list it (a batch that cannot be read is skipped: `wf doctor` reports it). Empty when
   * nothing of it is stored.
   */
  async workflowKeys(workflowId: string): Promise<string[]> {
    const keys = await this.listAllKeys(storeKeys.workflowPrefix(workflowId))
    const markers = await Promise.all(
      STORED_STATUSES.map(async (status) => {
        const key = storeKeys.index(status, workflowId)
        return (await this.storage.get(key)) ? key : undefined
      }),
    )
    for (const key of markers) if (key !== undefined) keys.push(key)
    for (const name of await this.#batchesListing(workflowId)) keys.push(storeKeys.startBatch(name))
    return keys
  }

  /** The start batches that list a workflow (those that can be read). */
  async #batchesListing(workflowId: string): Promise<string[]> {
    const names: string[] = []
    for (const name of await this.listStartBatches()) {
      const batch = await this.readStartBatch(name).catch(() => undefined)
      if (batch?.record.workflowIds.includes(workflowId)) names.push(name)
    }
    return names
  }

  /**
   * Removes every key of a workflow without trusting its record: for a record that cannot be read,
   * or one gone while its other keys stayed (deleted by hand), which `deleteWorkflow` cannot clear.
   * In `deleteWorkflow`'s order: other keys, the record, the markers, then its id from every start
   * batch that lists it (found by reading them all: the record that names its batch is unreadable).
   * Returns the keys it found (`workflowKeys`); nothing is removed when there are none.
   */
  async purgeWorkflow(workflowId: string): Promise<string[]> {
    const found = await this.workflowKeys(workflowId)
    const recordKey = storeKeys.workflow(workflowId)
    const batchPrefix = storeKeys.startBatchesPrefix
    const own = found.filter((k) => k.startsWith(storeKeys.workflowPrefix(workflowId)) && k !== recordKey)
    if (this.storage.deleteMany) await this.storage.deleteMany(own)
    else for (const key of own) await this.storage.delete(key)
    if (found.includes(recordKey)) await this.storage.delete(recordKey)
    for (const key of found) if (key.startsWith('index/')) await this.storage.delete(key)
    for (const key of found) {
      if (key.startsWith(batchPrefix))
        await this.removeFromStartBatch(key.slice(batchPrefix.length), workflowId)
    }
    return found
  }

  /**
   * Removes the given keys of a workflow that has no record (an orphan, as `wf doctor --fix` found
   * it), never its record key: a submission of the same id may create one meanwhile. The keys are
   * the ones listed before (a new submission's graph has a new nonce, so it is not among them);
   * afterwards the record is read again, and if one appeared, its index is repaired, since a
   * marker removed here may have been the one its submission relied on.
   */
  async removeOrphanKeys(workflowId: string, keys: readonly string[]): Promise<void> {
    const recordKey = storeKeys.workflow(workflowId)
    const own = keys.filter((k) => k.startsWith(storeKeys.workflowPrefix(workflowId)) && k !== recordKey)
    if (this.storage.deleteMany) await this.storage.deleteMany(own)
    else for (const key of own) await this.storage.delete(key)
    for (const status of STORED_STATUSES) {
      const key = storeKeys.index(status, workflowId)
      if (keys.includes(key)) await this.storage.delete(key)
    }
    const batchPrefix = storeKeys.startBatchesPrefix
    for (const key of keys) {
      if (key.startsWith(batchPrefix))
        await this.removeFromStartBatch(key.slice(batchPrefix.length), workflowId)
    }
    if (await this.storage.get(recordKey)) await this.repairIndex(workflowId)
  }

  /**
   * Every workflow id that has keys under `workflows/`, with those keys (one listing of them all:
   * for whole-store checks such as `wf doctor`, not for hot paths).
   */
  async storedWorkflows(): Promise<Map<string, string[]>> {
    const prefix = storeKeys.workflowsPrefix
    const byId = new Map<string, string[]>()
    for (const key of await this.listAllKeys(prefix)) {
      const workflowId = key.slice(prefix.length, key.indexOf('/', prefix.length))
      const keys = byId.get(workflowId)
      if (keys) keys.push(key)
      else byId.set(workflowId, [key])
    }
    return byId
  }

  /** Every workflow id with index markers, with the statuses it is marked under (one listing per status). */
  async indexMarkers(): Promise<Map<string, StoredStatus[]>> {
    const byId = new Map<string, StoredStatus[]>()
    for (const status of STORED_STATUSES) {
      const prefix = storeKeys.indexPrefix(status)
      for (const key of await this.listAllKeys(prefix)) {
        const workflowId = key.slice(prefix.length)
        byId.set(workflowId, [...(byId.get(workflowId) ?? []), status])
      }
    }
    return byId
  }

  /** The marker the index should hold for a record (`undefined` while its start batch lists it): see `indexStatus`. */
  expectedMarker(record: WorkflowRecord): StoredStatus | undefined {
    return indexStatus(record)
  }

  /**
   * The latest time written inside a workflow's keys, ms since the epoch, or `undefined` when none
   * says. Storage keeps no modification times, so age is read from the records themselves: a step
   * record's `endTime`, and a graph key's nonce (it starts with its creation time in base 36).
   * Blobs and markers carry no time. Reads each step record: for checks, not hot paths.
   */
  async lastWrittenAt(workflowId: string, keys: readonly string[]): Promise<number | undefined> {
    let latest: number | undefined
    const later = (ms: number | undefined) => {
      if (ms !== undefined && Number.isFinite(ms) && (latest === undefined || ms > latest)) latest = ms
    }
    const steps = storeKeys.stepsPrefix(workflowId)
    const graphs = storeKeys.graph(workflowId, '')
    for (const key of keys) {
      if (key.startsWith(graphs)) later(Number.parseInt(key.slice(graphs.length).split('-')[0] ?? '', 36))
      else if (key.startsWith(steps)) {
        const found = await this.storage.get(key)
        try {
          later(found && parseJson<StepRecord>(key, found.data)?.endTime)
        } catch {
          // An unreadable step record tells no time.
        }
      }
    }
    return latest
  }

  /** Writes a start batch: before any record it lists is created. */
  async writeStartBatch(name: string, batch: StartBatchRecord): Promise<void> {
    await this.storage.put(storeKeys.startBatch(name), utf8(JSON.stringify(batch)))
  }

  /** A start batch, or `undefined` when it is gone. */
  async readStartBatch(name: string): Promise<Versioned<StartBatchRecord> | undefined> {
    const key = storeKeys.startBatch(name)
    const found = await this.storage.get(key)
    if (!found) return undefined
    const record = parseJson<StartBatchRecord>(key, found.data)
    if (
      record?.v !== 1 ||
      !Array.isArray(record.workflowIds) ||
      !record.workflowIds.every((id) => typeof id === 'string') ||
      typeof record.runnerId !== 'string'
    ) {
      // Its workflows would be missed by listings and workers: say so rather than skip it.
      throw new CorruptRecordError(
        key,
        'not a start batch written by this version of wf (workflows listed only by it are missing from listings and workers: find their records under workflows/, resume those still RUNNING with `wf resume <id>`, then delete it)',
      )
    }
    return { record, version: found.version }
  }

  /** The names of the start batches in storage. */
  async listStartBatches(): Promise<string[]> {
    const prefix = storeKeys.startBatchesPrefix
    return (await this.listAllKeys(prefix)).map((key) => key.slice(prefix.length))
  }

  async deleteStartBatch(name: string): Promise<void> {
    await this.storage.delete(storeKeys.startBatch(name))
  }

  /**
   * Takes a workflow's id out of its start batch (by compare-and-swap: removals may meet), deleting
   * the batch with its last id: a workflow deleted, taken over (it has a marker of its own), or
   * whose submission lost to another. Otherwise a batch left by a runner that died could not be
   * cleared: a listed id without a record may be a record about to be created.
   */
  async removeFromStartBatch(name: string, workflowId: string): Promise<void> {
    // Each lost compare-and-swap is another writer's removal landing: a batch of n ids settles
    // within n rounds, so a bound well above any batch only stops a storage that never settles.
    for (let attempt = 0; attempt < MAX_BATCH_ROUNDS; attempt++) {
      const found = await this.readStartBatch(name)
      if (!found?.record.workflowIds.includes(workflowId)) return
      const workflowIds = found.record.workflowIds.filter((id) => id !== workflowId)
      if (workflowIds.length === 0) return this.deleteStartBatch(name)
      try {
        await this.storage.put(
          storeKeys.startBatch(name),
          utf8(JSON.stringify({ ...found.record, workflowIds })),
          { ifVersion: found.version },
        )
        return
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error
      }
    }
    throw new StorageUnavailableError(
      `could not take workflow ${quote(workflowId)} out of start batch ${quote(name)}: its record changed at each of ${MAX_BATCH_ROUNDS} compare-and-swap attempts`,
    )
  }
}

/**
 * The write of `WorkflowStore.commitStep`, for the engine's hot path (once per step, so no async
 * function and no reaction of its own: each promise also pays the AsyncLocalStorage hooks).
 * Resolves once `record` is committed; rejects with `ConditionFailedError` when another runner
 * committed the step first, whose record `committedStep` then reads.
 */
export function writeStep(
  store: WorkflowStore,
  workflowId: string,
  stepId: string,
  record: StepRecord,
): Promise<unknown> {
  try {
    // A record whose output has byte parts says v 2: readers from before refuse it by its version.
    const output = record.output as { format?: number } | undefined
    if (output?.format === 2) record.v = 2
    return store.storage.put(storeKeys.step(workflowId, stepId), utf8(JSON.stringify(record)), IF_ABSENT)
  } catch (error) {
    return Promise.reject(error)
  }
}

/**
 * `writeStep` for a pipelined checkpoint: `accepted` when the create-if-absent is decided,
 * `durable` when it is durable (the same moment on a storage without `putStaged`).
 */
export function writeStepStaged(
  store: WorkflowStore,
  workflowId: string,
  stepId: string,
  record: StepRecord,
): { accepted: Promise<unknown>; durable: Promise<unknown> } {
  const storage = store.storage
  try {
    const key = storeKeys.step(workflowId, stepId)
    const data = utf8(JSON.stringify(record))
    if (storage.putStaged === undefined) {
      const put = storage.put(key, data, IF_ABSENT)
      return { accepted: put, durable: put }
    }
    return storage.putStaged(key, data, IF_ABSENT)
  } catch (error) {
    const failed = Promise.reject(error)
    return { accepted: failed, durable: failed }
  }
}

/** After a lost create-if-absent of a step record (`error`): the record that won. */
export async function committedStep(
  store: WorkflowStore,
  workflowId: string,
  stepId: string,
  error: unknown,
): Promise<StepRecord> {
  if (!(error instanceof ConditionFailedError)) throw error
  const existing = await store.readStep(workflowId, stepId)
  if (!existing) throw error
  return existing
}
