// `fork(id, { fromStep })`: a new workflow from the same graph that keeps every committed result
// that does not depend on the fork point and runs the fork point and everything downstream of it
// again, with the code loaded now. What depends on what comes from the step graph (`loadGraph`):
// a step depends on the fork point when one of its inputs does; a step whose continuation's output
// depends on it keeps its continuation record (its sub-graph's other steps are kept too) but gives
// its dependents a new output; the fork point's own continuation is made again.

import {
  InvalidOptionsError,
  type Runtime,
  validateWorkflowId,
  type WorkflowHandle,
  WorkflowStillActiveError,
} from '@wf/core'
import { writeFork } from '@wf/core/internal'
import { StepNotFoundError } from './errors.js'
import { loadGraph, type StepView, type WorkflowGraph } from './graph-view.js'

/** Options of `fork`. */
export interface ForkOptions {
  /** The step to run again, with everything downstream of it. Default: the first step that failed (or, for a CANCELED workflow, the first not committed). */
  fromStep?: string
  /** The new workflow's id. Default `<id>-fork-<n>`, the first free one. */
  workflowId?: string
  /** The new workflow's metadata. Default: the original's. */
  metadata?: { [key: string]: import('@wf/core').Json }
  /** Store it PENDING for the workers instead of running it here. */
  detach?: boolean
}

/** What a fork keeps and runs again. */
export interface ForkResult<T> extends WorkflowHandle<T> {
  forkedFrom: { workflowId: string; stepId: string }
  /** The committed steps whose results were copied. */
  kept: string[]
}

function flatten(views: readonly StepView[], out: StepView[] = []): StepView[] {
  for (const view of views) {
    out.push(view)
    flatten(view.children, out)
  }
  return out
}

/** Every step inside `view`'s continuation, at any depth. */
function inside(view: StepView, out = new Set<string>()): Set<string> {
  for (const child of view.children) {
    out.add(child.stepId)
    inside(child, out)
  }
  return out
}

/** The fork point when none is given: the failed step, or the first step not done. */
function defaultForkPoint(graph: WorkflowGraph, status: string, failedStep: string | undefined): string {
  if (status === 'SUCCESSFUL') {
    throw new InvalidOptionsError(
      `workflow "${graph.workflowId}" is SUCCESSFUL: fork it from a step (fromStep, --from)`,
    )
  }
  if (failedStep !== undefined && graph.byId.has(failedStep)) return failedStep
  const steps = flatten(graph.steps)
  const first =
    steps.find((s) => s.status === 'FAILED') ??
    steps.find((s) => s.status === 'PENDING' && s.children.length === 0)
  if (!first)
    throw new InvalidOptionsError(
      `workflow "${graph.workflowId}" has no failed or unfinished step: give fromStep`,
    )
  return first.stepId
}

/** The committed steps to keep when forking from `fromStep`. */
export function stepsToKeep(graph: WorkflowGraph, fromStep: string): { keep: string[]; rerun: Set<string> } {
  const all = flatten(graph.steps)
  const rerun = new Set<string>([fromStep])
  const newOutput = new Set<string>()
  const dropped = inside(graph.byId.get(fromStep) as StepView)
  for (let changed = true; changed; ) {
    changed = false
    for (const view of all) {
      if (dropped.has(view.stepId)) continue
      if (!rerun.has(view.stepId) && view.dependsOn.some((dep) => rerun.has(dep) || newOutput.has(dep))) {
        rerun.add(view.stepId)
        for (const id of inside(view)) dropped.add(id)
        changed = true
      }
      const root = view.continuationRootId
      if (root !== undefined && !newOutput.has(view.stepId) && (rerun.has(root) || newOutput.has(root))) {
        newOutput.add(view.stepId)
        changed = true
      }
    }
  }
  const keep = all
    .filter((v) => v.record !== undefined && !rerun.has(v.stepId) && !dropped.has(v.stepId))
    // A step whose continuation gives a new output keeps its continuation record, not a value.
    .filter((v) => !newOutput.has(v.stepId) || v.record?.kind === 'continuation')
    .map((v) => v.stepId)
  for (const id of dropped) rerun.add(id)
  for (const id of newOutput) rerun.add(id)
  return { keep, rerun }
}

export async function forkWorkflow<T>(
  runtime: Runtime,
  workflowId: string,
  options: ForkOptions,
): Promise<ForkResult<T>> {
  validateWorkflowId(workflowId)
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionsError('fork options must be an object')
  const store = await runtime.store()
  const { record } = await store.requireWorkflow(workflowId)
  const status = runtime.deriveStatus(record)
  if (status === 'RUNNING' || status === 'PENDING') {
    throw new WorkflowStillActiveError(
      workflowId,
      `it is ${status}: fork it once it has ended (or cancel it first)`,
    )
  }
  const graph = await loadGraph(runtime, store, record)
  const fromStep = options.fromStep ?? defaultForkPoint(graph, status, record.error?.stepId)
  if (!graph.byId.has(fromStep)) throw new StepNotFoundError(workflowId, fromStep)
  const { keep, rerun } = stepsToKeep(graph, fromStep)
  const rerunNames = [...rerun]
    .map((id) => graph.byId.get(id)?.name)
    .filter((n): n is string => n !== undefined)
  const keptNames = new Set(keep.map((id) => graph.byId.get(id)?.name))
  let newId = options.workflowId
  if (newId === undefined) {
    for (let n = 1; ; n++) {
      const candidate = `${workflowId}-fork-${n}`
      if (!(await store.readWorkflow(candidate))) {
        newId = candidate
        break
      }
    }
  }
  const forkedFrom = { workflowId, stepId: fromStep }
  await writeFork(store, record, {
    workflowId: newId,
    keep,
    rerunNames: rerunNames.filter((name) => !keptNames.has(name)),
    metadata: options.metadata ?? record.metadata,
    forkedFrom,
  })
  const id = newId
  if (options.detach) {
    return {
      workflowId: id,
      forkedFrom,
      kept: keep,
      result: () => runtime.waitForResult<T>(id),
      cancel: () => runtime.cancel(id),
    }
  }
  const handle = await runtime.resumeAsync<T>(id)
  return { ...handle, forkedFrom, kept: keep }
}
