// What wf stores: the records (workflow, step, runner), their statuses, the keys they live at, and
// their JSON. Every record is JSON; step outputs inside are codec strings. The layout:
//
//   workflows/<id>/workflow          the authoritative workflow record (status changes by compare-and-swap);
//                                    a small submitted graph is inline in it (`graph` is an object); a cancel
//                                    of a workflow driven elsewhere is a request in it (`cancelRequested`)
//   workflows/<id>/graph/<nonce>     a large submitted graph (`graph` is the nonce; unique key: a losing
//                                    submission cannot overwrite it). Earlier versions of wf stored every graph so.
//   workflows/<id>/steps/<stepId>    one record per committed step, written once (create-if-absent); the
//                                    root step, when it returns a value, has none: the SUCCESSFUL workflow
//                                    record commits it (`rootStep`, `output`). Earlier versions wrote it too.
//   workflows/<id>/caught/<stepId>   the outcome of a catchExceptions step whose continuation failed
//                                    ({ ok: false, error }), committed once beside its continuation record
//   workflows/<id>/blobs/<name>      large outputs, written once (a sha256 before, a random name now)
//   workflows/<id>/events/<seq>      an event sent to the workflow, at the next free sequence number
//                                    (12 digits, create-if-absent: senders serialize on it), so events
//                                    are taken in the order they were accepted; an idempotent send's
//                                    event holds only its key, whose record has the payload
//   workflows/<id>/event-keys/<hash> an idempotent send (hash of name and key), created once: a second
//                                    send with the key finds it and changes nothing
//   workflows/<id>/taken/<seq>       which waiting step took event <seq>, written by the workflow's
//                                    runner before that step commits the event as its output
//   workflows/<id>/failures/<stepId> a step's failed attempts (the last five errors, the attempt count, the
//                                    time span), written by the runner each time an attempt fails (never when
//                                    none does: a run without failures writes nothing here), kept after the
//                                    step commits, deleted with the workflow
//   index/<STATUS>/<id>              status index markers (repairable from the workflow record); a
//                                    workflow keeps its PENDING marker while RUNNING (`indexStatus`)
//   due/<wake ms, 13 digits>/<id>    the marker of a parked workflow (PENDING, waiting for a timer,
//                                    held by no runner), in place of its status marker: keys sort by
//                                    wake time, so a worker lists only what is due. Written before the
//                                    parked record, deleted after the record that wakes it.
//   starts/<runnerId>.<n>            a start batch: the ids of workflows a runner started together, written
//                                    before their records, in place of a RUNNING marker each (a record says
//                                    `startBatch`). The runner deletes it when the last of them ends; a
//                                    worker, once each ended or left it; a workflow deleted or taken over
//                                    leaves it. Earlier versions wrote a RUNNING marker each.
//   ended/<yyyy-mm-dd>/<id>          the end day (UTC) of an ended workflow, written after the record that
//                                    ends it (create-if-absent): a retention pass lists the days before its
//                                    cutoff and never reads every record. An entry whose record no longer
//                                    ended that day (resumed, deleted) is stale: the pass drops it.
//                                    Workflows that ended before earlier versions wrote it have none
//                                    (`wf gc --full`, `wf doctor --fix` add them).
//   retention                        the last retention pass of the workers (`RetentionRecord`):
//                                    claimed by compare-and-swap, so that one worker runs it per interval
//   schedules/<scheduleId>           a schedule's record: its spec, paused, the last tick handled, the
//                                    run it fired, skipped ticks; changed by compare-and-swap only
//   runners/<runnerId>               a runner's lease, shared by every workflow it drives: written (not
//                                    conditionally: only that runner writes it) before any workflow record
//                                    names the runner as owner, renewed by its heartbeat (once half of it,
//                                    or all but two heartbeats, is used up), deleted when the runner closes
//                                    idle. A record left by a dead runner is small and harmless. Workflow
//                                    records owned under it say `lease: 'runner'` and are not rewritten to
//                                    renew; records of earlier versions carry their own `leaseExpiresAt`.
// Over 400 lines: every stored shape with its TSDoc, so the storage layout reads in one file.

import { CorruptRecordError } from '../errors.js'
import type { Json } from './json.js'
import type { StoredScheduleSpec } from './schedule-spec.js'
import type { StoredGraph } from './stored-graph.js'

/** The runtime a workflow was submitted with (returned by `getMetadata(id).runtime`). */
export interface RuntimeInfo {
  node: string
  platform: string
  arch: string
  /** The application: nearest package.json of the entry module, or of the working directory. */
  app?: { name?: string; version?: string }
  /** The lockfile found at or above the application (pnpm-lock.yaml, package-lock.json or yarn.lock). */
  lockfile?: { file: string; sha256: string }
  /** Versions of the @wf/* packages in use. */
  wfPackages: { [name: string]: string }
  /**
   * The fingerprint of each step's code and options at submission, by step name. Stored with the
   * graph; `getMetadata` returns it here. In a record, only when the graph is not inline in it.
   */
  steps?: { [name: string]: string }
}

/** Statuses kept in the workflow record. `RESUMABLE` is derived from a `RUNNING` record whose runner is gone. */
export type StoredStatus = 'PENDING' | 'RUNNING' | 'FAILED' | 'CANCELED' | 'SUCCESSFUL'
/** A workflow's status, as in Ray Workflows. */
export type WorkflowStatus = StoredStatus | 'RESUMABLE'

export const STORED_STATUSES: readonly StoredStatus[] = [
  'PENDING',
  'RUNNING',
  'FAILED',
  'CANCELED',
  'SUCCESSFUL',
]
export const WORKFLOW_STATUSES: readonly WorkflowStatus[] = [...STORED_STATUSES, 'RESUMABLE']

/** The runner that drives (or last drove) a workflow. */
export interface RunnerInfo {
  host: string
  pid: number
  runnerId: string
}

/** Whether a record is a parked workflow (see `WorkflowRecord.parkedUntil`). */
export function isParked(record: WorkflowRecord): boolean {
  return record.status === 'PENDING' && typeof record.parkedUntil === 'number'
}

/** The record without what parking added: a workflow taken over, canceled or ended is not parked. */
export function unparked(record: WorkflowRecord): WorkflowRecord {
  const { parkedUntil: _until, parkedSteps: _steps, parkedEvents: _events, ...rest } = record
  return rest
}

/** The incarnation events sent to this record's workflow belong to (see `WorkflowRecord.incarnation`). */
export function incarnationOf(record: WorkflowRecord): string {
  return record.incarnation ?? `created-${record.createdAt}`
}

/** An event sent to a workflow (`workflows/<id>/events/<seq>`). */
export interface EventRecord {
  v: 1
  name: string
  /** The payload (codec text, inline or a blob); absent when `key` holds it. */
  payload?: StoredOutput
  /** An idempotent send: the hash its key record is stored under (which holds the payload). */
  key?: string
  sentAt: number
  incarnation: string
}

/** An idempotent send (`workflows/<id>/event-keys/<hash>`): the event, once, whoever sends it again. */
export interface EventKeyRecord {
  v: 1
  name: string
  idempotencyKey: string
  payload: StoredOutput
  sentAt: number
  incarnation: string
  /** The sequence number of the event that carries it, once known. */
  seq?: number
}

/** A tick a schedule did not run, and why (`ScheduleRecord.skipped`). */
export interface SkippedTick {
  /** The tick (ms since the epoch); with `count`, the first of a run of skipped ticks. */
  tick: number
  /** The last tick of the run, when `count` > 1. */
  until?: number
  count?: number
  /** `overlap`: the previous run was still going; `missed`: too late to catch up; `paused`. */
  reason: 'overlap' | 'missed' | 'paused'
  at: number
}

/** A schedule's record (`schedules/<id>`): written by the workers that fire it and by management calls. */
export interface ScheduleRecord {
  v: 1
  scheduleId: string
  spec: StoredScheduleSpec
  specHash: string
  overlap: string
  catchUp: string
  createdAt: number
  updatedAt: number
  paused: boolean
  /** The last tick handled (fired or skipped), ms since the epoch: ticks after it are due. */
  lastTick: number
  /** The id of the last run fired. */
  lastRun?: string
  /**
   * Runs fired whose workflows may not be created yet (the firing worker died in between, or
   * their jittered time has not come): whoever reads the record at or after `dueAt` creates them.
   */
  creating?: Array<{ runId: string; tick: number; dueAt?: number }>
  /** Overlap `'buffer-one'`: a tick that runs once the previous run ends. */
  buffered?: number
  /** The next tick after `lastTick`, for listings. */
  nextTick?: number
  /** The last skipped ticks, oldest first (at most `MAX_SKIPPED`). */
  skipped: SkippedTick[]
  /** Who declared the spec stored here, and when (a newer declaration replaces it). */
  declaredBy?: { runner: RunnerInfo; at: number }
}

/**
 * The schedules a worker declares (`declarations/<runnerId>`): written when it starts firing and
 * renewed every `DECLARATION_RENEW_LEASES` lease periods (one write however many schedules),
 * deleted when it stops. A schedule no live declaration lists is no longer declared: nothing fires it.
 */
export interface DeclarationRecord {
  v: 1
  runner: RunnerInfo
  /** When the worker started (a newer start's spec wins: a deploy). */
  startedAt: number
  updatedAt: number
  /** Until when it counts (renewed before then). */
  expiresAt: number
  /** The spec hash of each schedule it declares, by id. */
  schedules: { [scheduleId: string]: string }
}

/** How many skipped ticks a schedule record keeps. */
export const MAX_SKIPPED = 20

/** Which step took an event (`workflows/<id>/taken/<seq>`). */
export interface TakenRecord {
  v: 1
  stepId: string
  takenAt: number
}

/** An error as recorded in a FAILED workflow. */
export interface RecordedError {
  name: string
  message: string
  stack?: string
  stepId: string
}

/**
 * A stored output: inline codec text, or a reference to a blob (`format: 2`: a blob with byte
 * parts, see store/blob-format.ts; only in step records of `v: 2`).
 */
export type StoredOutput = { inline: string } | { blob: string; format?: 2 }

/** The authoritative record of one workflow. */
export interface WorkflowRecord {
  v: 1
  workflowId: string
  status: StoredStatus
  createdAt: number
  updatedAt: number
  startedAt?: number
  endedAt?: number
  metadata: { [key: string]: Json }
  /**
   * The submitted graph: inline when small, else the nonce of its key (`workflows/<id>/graph/<nonce>`).
   * Read it with `WorkflowStore.loadGraph(record)`.
   */
  graph: string | StoredGraph
  rootStepId: string
  runs: number
  owner?: RunnerInfo
  /**
   * `'runner'`: the owner holds the workflow under its runner lease (`runners/<owner.runnerId>`),
   * which its heartbeat renews; this record is not rewritten to renew. Absent in records of
   * earlier versions of wf, whose `leaseExpiresAt` is their own.
   */
  lease?: 'runner'
  /**
   * When the owner's lease runs out (the owner's clock, ms since the epoch) unless its heartbeat
   * renews it. For `lease: 'runner'` it is never stored: `WorkflowStore.readWorkflow` fills it in
   * from the runner record (0 when there is none), for `deriveStatus`.
   */
  leaseExpiresAt?: number
  error?: RecordedError
  /**
   * A cancel asked the live owner to stop (`cancel()` in another runtime, set by compare-and-swap
   * while the record is RUNNING): the owner reads its records at every heartbeat, stops starting
   * and committing steps, and acknowledges by writing CANCELED. A runner taking the workflow over
   * with this set cancels it before starting anything.
   */
  cancelRequested?: { at: number; by: RunnerInfo }
  output?: StoredOutput
  /**
   * In a SUCCESSFUL record that is also the commit of the root step (which returned a value, now
   * `output`): that step's run. Its `steps/<rootStepId>` record is then not written.
   * `readStep` and `listStepIds` show the root step as committed either way.
   */
  rootStep?: RootStepRun
  /** What the workflow was submitted with (Node, app, lockfile, @wf/* versions). */
  runtime?: RuntimeInfo
  /**
   * The status whose index marker the workflow has, when not `status`: a PENDING workflow keeps
   * its PENDING marker while RUNNING (see `indexStatus`).
   */
  indexedAs?: StoredStatus
  /**
   * The start batch (`starts/<name>`) that lists this workflow: while it is PENDING or RUNNING, it
   * has no marker of its own (see `indexStatus`). A takeover drops it. Kept in the final record.
   */
  startBatch?: string
  /**
   * `'FAILED'`: this RUNNING record is a resume of a FAILED workflow that has committed no step yet;
   * it keeps the failure's `error` until its first commit. Should its runner die before then, the
   * workflow reads FAILED again (never RESUMABLE), so no worker re-runs it unasked.
   */
  resumedFrom?: 'FAILED'
  /**
   * A parked workflow (`status: 'PENDING'`, no owner): every step it can run waits on a timer, the
   * earliest ending at this time (ms since the epoch). Its index marker is `due/<time>/<id>`, not a
   * status marker; a worker, or the process awaiting it, takes it over once it is due.
   */
  parkedUntil?: number
  /** The ids of the timer steps a parked workflow waits on. */
  parkedSteps?: string[]
  /** The names of the events a parked workflow waits for (its steps waiting in `waitForEvent`). */
  parkedEvents?: string[]
  /**
   * Which life of the workflow id this is: random, new at each submission. Events carry the
   * incarnation they were sent to, so an event a late sender writes after `delete(id)` is never
   * taken by a new workflow under the same id. Records of earlier versions have none (`incarnationOf`).
   */
  incarnation?: string
  /**
   * Set by compare-and-swap when a deletion starts (`WorkflowStore.deleteWorkflow`), before any
   * other key of the workflow is removed: from then on readers treat the workflow as gone, and a
   * resume or claim that raced loses its own compare-and-swap. A crash leaves the marked record,
   * which the next deletion pass (`wf gc`, `wf doctor --fix`) finishes.
   */
  deleting?: { at: number }
  /** A fork (@wf/client's `fork`): the workflow and the step it was forked from. */
  forkedFrom?: { workflowId: string; stepId: string }
  /** Submitted with `RunOptions.pipelineCheckpoints`: every run of it, on any runner, keeps that choice. */
  pipelineCheckpoints?: boolean
  /** Free-form fields later versions add (runtime fingerprints, leases…); kept on rewrite. */
  [extra: string]: unknown
}

/** The record of one committed step. */
export interface StepRecord {
  /** 2 when `output` is a blob with byte parts (`format: 2`), which earlier versions of wf refuse. */
  v: 1 | 2
  name: string
  /** `value`: `output` holds the result; `continuation`: the step returned a sub-graph, stored in `graph`. */
  kind: 'value' | 'continuation'
  output?: StoredOutput
  graph?: StoredGraph
  startTime: number
  endTime: number
  attempts: number
  /**
   * On the record of a durable function's call (`ctx.run`): a hash of what was called (the step and
   * its encoded arguments, or the whole graph), compared when the function runs again to resume.
   */
  call?: string
  /** On the record of a durable function's call of one step: the step's fingerprint (its code and options). */
  fingerprint?: string
}

/** One failed attempt of a step, as recorded in its `StepFailures`. */
export interface AttemptFailure {
  /** The attempt's number, counted over every run of the workflow (a resume goes on counting). */
  attempt: number
  /** When it failed (ms since the epoch). */
  time: number
  name: string
  message: string
  /** The first lines of the stack. */
  stack?: string
}

/** The failed attempts of one step (`workflows/<id>/failures/<stepId>`), beside its committed record. */
export interface StepFailures {
  v: 1
  /** The step's name. */
  name: string
  /** Failed attempts so far, over every run of the workflow. */
  attempts: number
  /** When the first failed attempt started. */
  startTime: number
  /** When the last one failed: `endTime - startTime` is how long the step has been failing. */
  endTime: number
  /** The last errors (at most `MAX_RECORDED_FAILURES`), oldest first. */
  errors: AttemptFailure[]
  /** Set when the last error was caught by `catchExceptions` and committed as the step's output. */
  caught?: boolean
}

/** How many errors a `StepFailures` keeps. */
export const MAX_RECORDED_FAILURES = 5

/** The run of a root step whose commit is the final workflow record (`WorkflowRecord.rootStep`). */
export interface RootStepRun {
  name: string
  startTime: number
  endTime: number
  attempts: number
}

/**
 * A runner's lease (`runners/<runnerId>`): every workflow record that names the runner as owner
 * with `lease: 'runner'` is held until `leaseExpiresAt`.
 */
export interface RunnerRecord {
  v: 1
  runner: RunnerInfo
  /** Until when (the runner's clock, ms since the epoch) the runner holds its workflows. */
  leaseExpiresAt: number
  updatedAt: number
}

/** The workers' last retention pass (`retention`), claimed by compare-and-swap. */
export interface RetentionRecord {
  v: 1
  /** When the pass started (the claiming worker's clock, ms since the epoch). */
  startedAt: number
  by: RunnerInfo
}

/** The statuses a workflow no longer changes from by itself (a resume may still take a FAILED one). */
export const ENDED_STATUSES: readonly StoredStatus[] = ['FAILED', 'CANCELED', 'SUCCESSFUL']

/** The UTC day (`yyyy-mm-dd`) of a time, as the ended index names it. */
export function endedDay(at: number): string {
  // Once per workflow that ends: the day of the last call is kept (formatting a date costs more
  // than the rest of the index entry), so a process ending workflows all day formats it once.
  const day = Math.floor(at / DAY_MS)
  if (day !== lastDay.day) {
    lastDay.text = new Date(at).toISOString().slice(0, 10)
    lastDay.day = day
  }
  return lastDay.text
}

const DAY_MS = 86_400_000
const lastDay = { day: Number.NaN, text: '' }

/** The ended index entry a record should have (`ended/<day>/<id>`), else `undefined`. */
export function endedKey(record: WorkflowRecord): string | undefined {
  const { endedAt } = record
  if (!ENDED_STATUSES.includes(record.status) || typeof endedAt !== 'number' || !Number.isFinite(endedAt))
    return undefined
  return storeKeys.ended(endedDay(endedAt), record.workflowId)
}

/** A record with the version of the storage value it was read from or written as. */
/**
 * A start batch (`starts/<name>`): workflows a runner started together, listed before their records
 * were written. Only removals change it (`WorkflowStore.removeFromStartBatch`): of a deleted
 * workflow, of one taken over, of one whose submission lost to another.
 */
export interface StartBatchRecord {
  v: 1
  runnerId: string
  createdAt: number
  workflowIds: string[]
}

export interface Versioned<T> {
  record: T
  version: string
}

/** The key of each record (the layout above). */
export const storeKeys = {
  workflowPrefix: (workflowId: string): string => `workflows/${workflowId}/`,
  workflow: (workflowId: string): string => `workflows/${workflowId}/workflow`,
  graph: (workflowId: string, nonce: string): string => `workflows/${workflowId}/graph/${nonce}`,
  stepsPrefix: (workflowId: string): string => `workflows/${workflowId}/steps/`,
  step: (workflowId: string, stepId: string): string => `workflows/${workflowId}/steps/${stepId}`,
  blob: (workflowId: string, sha: string): string => `workflows/${workflowId}/blobs/${sha}`,
  failuresPrefix: (workflowId: string): string => `workflows/${workflowId}/failures/`,
  failures: (workflowId: string, stepId: string): string => `workflows/${workflowId}/failures/${stepId}`,
  eventsPrefix: (workflowId: string): string => `workflows/${workflowId}/events/`,
  event: (workflowId: string, seq: number): string =>
    `workflows/${workflowId}/events/${String(seq).padStart(12, '0')}`,
  eventKey: (workflowId: string, hash: string): string => `workflows/${workflowId}/event-keys/${hash}`,
  takenPrefix: (workflowId: string): string => `workflows/${workflowId}/taken/`,
  taken: (workflowId: string, seq: number): string =>
    `workflows/${workflowId}/taken/${String(seq).padStart(12, '0')}`,
  caughtPrefix: (workflowId: string): string => `workflows/${workflowId}/caught/`,
  caught: (workflowId: string, stepId: string): string => `workflows/${workflowId}/caught/${stepId}`,
  runner: (runnerId: string): string => `runners/${runnerId}`,
  schedule: (scheduleId: string): string => `schedules/${scheduleId}`,
  schedulesPrefix: 'schedules/',
  declaration: (runnerId: string): string => `declarations/${runnerId}`,
  declarationsPrefix: 'declarations/',
  runnersPrefix: 'runners/',
  startBatch: (name: string): string => `starts/${name}`,
  startBatchesPrefix: 'starts/',
  duePrefix: 'due/',
  due: (wakeAt: number, workflowId: string): string =>
    `due/${String(Math.max(0, Math.ceil(wakeAt))).padStart(13, '0')}/${workflowId}`,
  endedPrefix: 'ended/',
  ended: (day: string, workflowId: string): string => `ended/${day}/${workflowId}`,
  retention: 'retention',
  indexPrefix: (status: StoredStatus): string => `index/${status}/`,
  index: (status: StoredStatus, workflowId: string): string => `index/${status}/${workflowId}`,
  workflowsPrefix: 'workflows/',
}

/**
 * JSON text as UTF-8 bytes. `Buffer.from` is an order of magnitude faster than `TextEncoder` on
 * the small records written per step; a small Buffer is a view into Node's shared pool (non-zero
 * `byteOffset`), which the storage contract requires every backend to honour.
 */
export function utf8(text: string): Uint8Array {
  return Buffer.from(text, 'utf8')
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/** UTF-8 bytes as text (a `TypeError` when they are not valid UTF-8). */
export function fromUtf8(data: Uint8Array): string {
  return decoder.decode(data)
}

/** The record stored at `key`, parsed; `CorruptRecordError` when it is not JSON. */
export function parseJson<T>(key: string, data: Uint8Array): T {
  try {
    return JSON.parse(decoder.decode(data)) as T
  } catch (error) {
    throw new CorruptRecordError(key, 'not valid JSON (truncated or overwritten by something else)', {
      cause: error,
    })
  }
}

/**
 * The JSON of inline graphs, by graph. A workflow record is written two or three times per run and
 * carries its inline graph each time, by far its largest part: serializing the graph once per
 * graph, not once per write, is most of a record's serialization cost. Stored graphs are never
 * changed in place (a record with another graph holds another object), so the text stays right.
 */
const graphJson = new WeakMap<StoredGraph, string>()

export function jsonOfGraph(graph: StoredGraph): string {
  let json = graphJson.get(graph)
  if (json === undefined) {
    json = JSON.stringify(graph)
    graphJson.set(graph, json)
  }
  return json
}

/**
 * A workflow record as JSON (as `WorkflowStore` stores it). An inline graph is written from `jsonOfGraph`, as the
 * record's last field: readers parse the record, so the order of its fields does not matter.
 */
export function recordJson(record: WorkflowRecord): string {
  const { graph, runtime } = record
  const inlineGraph = typeof graph === 'object' && graph !== null
  if (!inlineGraph && runtime === undefined) return JSON.stringify(record)
  // `undefined` leaves a field out; the spread keeps the other fields in their order. The graph and
  // the runtime info (the same object for every workflow a process submits) are written from
  // their cached JSON, as the record's last fields.
  const rest = JSON.stringify({ ...record, graph: inlineGraph ? undefined : graph, runtime: undefined })
  // Joined without slicing the text built so far: a slice of a joined string copies it whole (V8
  // flattens it first), a record's size of garbage per slice, twice per workflow.
  let text = rest.length > 2 ? rest.slice(0, -1) : '{'
  let comma = rest.length > 2 ? ',' : ''
  if (runtime !== undefined) {
    text += `${comma}"runtime":${jsonOfRuntime(runtime)}`
    comma = ','
  }
  if (inlineGraph) text += `${comma}"graph":${jsonOfGraph(graph)}`
  return `${text}}`
}

const runtimeJson = new WeakMap<RuntimeInfo, string>()

/** The JSON of a runtime info, once per object (records share the process's: see `recordJson`). */
function jsonOfRuntime(runtime: RuntimeInfo): string {
  let json = runtimeJson.get(runtime)
  if (json === undefined) {
    json = JSON.stringify(runtime)
    runtimeJson.set(runtime, json)
  }
  return json
}
