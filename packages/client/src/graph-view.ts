// The step graph of one workflow as stored: the submitted graph, each committed step's record
// (the root step's comes from the workflow record when that committed it), and the sub-graphs that
// continuations expanded into, nested under their step. `wf show` and `getMetadata(id, { stepId })`
// read it; it costs one read per committed step.

import {
  CorruptRecordError,
  fingerprintStep,
  type Runtime,
  type StepFailures,
  type StepRecord,
  type WorkflowRecord,
} from '@wf/core'
import { continuationPrefix, getRegisteredStep, mapLimit, type WorkflowStore } from '@wf/core/internal'
import type { FailureInfo, StepStatus, StoredGraph, StoredStepOptions } from './types.js'

/** One step of a workflow's graph, with what is stored about its run. */
export interface StepView {
  stepId: string
  name: string
  status: StepStatus
  options: StoredStepOptions
  /** Ids of the steps whose outputs this one takes (in the same graph). */
  dependsOn: string[]
  /** The committed record; absent when the step has not committed. */
  record?: StepRecord
  /**
   * For a step that returned a sub-graph: that sub-graph's steps, upstream first. For a durable
   * function (`workflow()`): its committed calls, in the order they started.
   */
  children: StepView[]
  continuationRootId?: string
  parentStepId?: string
  error?: FailureInfo
  /**
   * Its failed attempts (the last errors, the attempt count, the time span), over every run: also
   * for a step that then succeeded, or whose error `catchExceptions` caught (`failures.caught`).
   */
  failures?: StepFailures
  /**
   * Set on a `catchExceptions` step whose continuation failed: its outcome `{ ok: false, error }` is
   * committed (the failed step inside shows its `failures`), and the rest of the continuation was
   * not run.
   */
  caughtContinuation?: boolean
  /**
   * The fingerprint of the step's code and options recorded with the graph it belongs to (the
   * submitted one, or a continuation's, written when that step ran): a step name recorded at two
   * moments may show two fingerprints in two views.
   */
  fingerprint?: string
  /**
   * Whether the step's code or options differ from what the workflow was submitted with, as
   * registered in this process; `undefined` when this process has not registered the step.
   */
  codeChanged?: boolean
}

/** A workflow's graph with each step's status. */
export interface WorkflowGraph {
  workflowId: string
  rootStepId: string
  /** The submitted graph's steps, upstream first; continuations are nested in `children`. */
  steps: StepView[]
  /** Every step, continuation steps included, by id. */
  byId: Map<string, StepView>
  /** Steps with a committed record. */
  committed: number
  /** Steps known so far (sub-graphs not expanded yet are not counted). */
  total: number
}

const READ_CONCURRENCY = 16

/** Loads the graph of `record`'s workflow and works out each step's status (as `runtime` sees it). */
export async function loadGraph(
  runtime: Runtime,
  store: WorkflowStore,
  record: WorkflowRecord,
): Promise<WorkflowGraph> {
  const workflowId = record.workflowId
  const [stepIds, failedIds, caughtIds] = await Promise.all([
    store.listStepIds(workflowId, record),
    store.listFailedStepIds(workflowId),
    store.listCaughtStepIds(workflowId),
  ])
  // Steps that caught a failure of their continuation: their outcome stands (`{ ok: false, error }`).
  const caught = new Set(caughtIds)
  const committed = new Set(stepIds)
  const byId = new Map<string, StepView>()

  const build = async (graph: StoredGraph, parentStepId: string | undefined): Promise<StepView[]> => {
    const views = graph.nodes.map((node): StepView => {
      const view: StepView = {
        stepId: node.id,
        name: node.name,
        status: 'PENDING',
        options: node.options,
        dependsOn: [...new Set(node.refs.map(([, dep]) => dep))],
        children: [],
      }
      if (parentStepId !== undefined) view.parentStepId = parentStepId
      const recorded = graph.fingerprints?.[node.name]
      if (recorded !== undefined) view.fingerprint = recorded
      const definition = getRegisteredStep(node.name)
      if (recorded !== undefined && definition) view.codeChanged = fingerprintStep(definition) !== recorded
      byId.set(node.id, view)
      return view
    })
    const toRead = views.filter((v) => committed.has(v.stepId))
    const records = await mapLimit(toRead, READ_CONCURRENCY, (v) =>
      store.readStep(workflowId, v.stepId, record),
    )
    await Promise.all(
      toRead.map(async (view, i) => {
        const stepRecord = records[i]
        if (!stepRecord) return // deleted since the listing
        view.record = stepRecord
        if (stepRecord.kind === 'continuation' && stepRecord.graph) {
          view.continuationRootId = stepRecord.graph.root
          view.children = await build(stepRecord.graph, view.stepId)
        }
      }),
    )
    return views
  }

  const steps = await build(await store.loadGraph(record), undefined)

  // Durable functions' calls: committed under `<functionStepId>~<n>` (or `~k:<key>`), in no stored
  // graph. Found by their prefix, level by level (a call may be a durable function with calls).
  const loose = new Map<string, string[]>()
  for (const id of committed) {
    const cut = id.lastIndexOf('~')
    if (cut <= 0 || byId.has(id)) continue
    const prefix = id.slice(0, cut + 1)
    const ids = loose.get(prefix)
    if (ids) ids.push(id)
    else loose.set(prefix, [id])
  }
  let parents = [...byId.values()]
  while (parents.length > 0 && loose.size > 0) {
    const known = new Set(byId.keys())
    for (const parent of parents) {
      const ids = loose.get(continuationPrefix(parent.stepId))?.filter((id) => !byId.has(id))
      if (!ids || ids.length === 0) continue
      loose.delete(continuationPrefix(parent.stepId))
      const records = await mapLimit(ids, READ_CONCURRENCY, (id) => store.readStep(workflowId, id, record))
      const calls: StepView[] = []
      for (let i = 0; i < ids.length; i++) {
        const stepRecord = records[i]
        if (!stepRecord) continue
        const view: StepView = {
          stepId: ids[i] as string,
          name: stepRecord.name,
          status: 'PENDING',
          options: {},
          dependsOn: [],
          children: [],
          parentStepId: parent.stepId,
          record: stepRecord,
        }
        byId.set(view.stepId, view)
        if (stepRecord.fingerprint !== undefined) {
          view.fingerprint = stepRecord.fingerprint
          const definition = getRegisteredStep(stepRecord.name)
          if (definition) view.codeChanged = fingerprintStep(definition) !== stepRecord.fingerprint
        }
        if (stepRecord.kind === 'continuation' && stepRecord.graph) {
          view.continuationRootId = stepRecord.graph.root
          view.children = await build(stepRecord.graph, view.stepId)
        }
        calls.push(view)
      }
      calls.sort(
        (a, b) => (a.record?.startTime ?? 0) - (b.record?.startTime ?? 0) || callOrder(a.stepId, b.stepId),
      )
      parent.children.push(...calls)
    }
    parents = [...byId.values()].filter((view) => !known.has(view.stepId))
  }

  // Failures are listed once; only steps that failed an attempt have a record to read.
  const failedViews = failedIds.flatMap((id) => byId.get(id) ?? [])
  // A record of failures that cannot be read only explains less: the graph is shown without it.
  const failures = await mapLimit(failedViews, READ_CONCURRENCY, (view) =>
    store.readFailures(workflowId, view.stepId).catch((error: unknown) => {
      if (error instanceof CorruptRecordError) return undefined
      throw error
    }),
  )
  failedViews.forEach((view, i) => {
    const found = failures[i]
    if (found) view.failures = found
  })

  const statusOf = (view: StepView): StepStatus => {
    if (!view.record) return 'PENDING'
    if (view.record.kind === 'value') return 'SUCCESSFUL'
    const root = view.continuationRootId === undefined ? undefined : byId.get(view.continuationRootId)
    return root && statusOf(root) === 'SUCCESSFUL' ? 'SUCCESSFUL' : 'CONTINUED'
  }
  for (const view of byId.values()) view.status = caught.has(view.stepId) ? 'SUCCESSFUL' : statusOf(view)
  for (const stepId of caught) {
    const view = byId.get(stepId)
    if (view) view.caughtContinuation = true
  }

  // A FAILED workflow names the step that failed; the steps that continued into it failed too. Its
  // status is derived: a resume of it whose runner died before its first commit is FAILED again,
  // while a live one runs that step anew.
  const failure = runtime.deriveStatus(record) === 'FAILED' ? record.error : undefined
  let failed = failure ? byId.get(failure.stepId) : undefined
  while (failure && failed) {
    failed.status = 'FAILED'
    failed.error = {
      stepId: failure.stepId,
      name: failure.name,
      message: failure.message,
      ...(failure.stack === undefined ? {} : { stack: failure.stack }),
    }
    failed = failed.parentStepId === undefined ? undefined : byId.get(failed.parentStepId)
  }

  let done = 0
  for (const view of byId.values()) if (view.record) done++
  return { workflowId, rootStepId: record.rootStepId, steps, byId, committed: done, total: byId.size }
}

/** Calls that started in the same millisecond: numbered ones by number, then keyed ones by key. */
function callOrder(a: string, b: string): number {
  const number = (id: string) => {
    const tail = id.slice(id.lastIndexOf('~') + 1)
    return /^\d+$/.test(tail) ? Number(tail) : Number.POSITIVE_INFINITY
  }
  return number(a) - number(b) || (a < b ? -1 : a > b ? 1 : 0)
}
