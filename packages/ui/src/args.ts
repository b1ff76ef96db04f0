// A step's arguments as stored in its graph (`GET /api/workflows/:id/steps/:stepId/args`): the
// node's codec text decoded by the client's codec, with each place an upstream output goes (a
// `refs` path) marked by the step it comes from, since the graph stores the reference, not the value.

import type { WorkflowClient } from '@wf/client'
import type { StepRecord } from '@wf/core'
import { mapLimit, storeKeys } from '@wf/core/internal'
import { API_ERROR_CODES, ApiError } from './errors.js'

type StoredNode = NonNullable<StepRecord['graph']>['nodes'][number]

/** The decoded arguments of a step, with where its upstream outputs go. */
export interface StepArguments {
  args: unknown[]
  /** Each place in `args` filled with an upstream step's output when the step runs. */
  refs: { path: (string | number)[]; stepId: string }[]
}

/** Where a reference goes, in the text shown: the step whose output it is. */
export const refMarker = (stepId: string): string => `<output of ${stepId}>`

function place(args: unknown[], path: (string | number)[], value: unknown): void {
  let at: unknown = args
  for (let i = 0; i < path.length - 1; i++) {
    if (typeof at !== 'object' || at === null) return
    at = (at as Record<string | number, unknown>)[path[i] as string | number]
  }
  const last = path.at(-1)
  if (typeof at === 'object' && at !== null && last !== undefined)
    (at as Record<string | number, unknown>)[last] = value
}

/**
 * Finds a step's node: in the workflow's graph, else in the sub-graph of a continuation (stored in
 * the record of the step that returned it: every step record is read then, as `getGraph` does).
 */
async function findNode(client: WorkflowClient, workflowId: string, stepId: string): Promise<StoredNode> {
  const store = await client.runtime.store()
  const { record } = await store.requireWorkflow(workflowId)
  const top = await store.loadGraph(record)
  const found = top.nodes.find((n) => n.id === stepId)
  if (found) return found
  const prefix = storeKeys.stepsPrefix(workflowId)
  const keys = await store.listAllKeys(prefix)
  const records = await mapLimit(keys, 16, (key) =>
    store.readStep(workflowId, key.slice(prefix.length)).catch((): StepRecord | undefined => undefined),
  )
  for (const step of records) {
    const node = step?.kind === 'continuation' ? step.graph?.nodes.find((n) => n.id === stepId) : undefined
    if (node) return node
  }
  throw new ApiError(
    404,
    API_ERROR_CODES.notFound,
    `workflow ${JSON.stringify(workflowId)} has no step ${JSON.stringify(stepId)} in its stored graph (a step called inside a durable function keeps no arguments of its own)`,
  )
}

export async function stepArguments(
  client: WorkflowClient,
  workflowId: string,
  stepId: string,
): Promise<StepArguments> {
  const node = await findNode(client, workflowId, stepId)
  const decoded = client.runtime.codec.decode(node.args)
  const args = Array.isArray(decoded) ? decoded : [decoded]
  const refs = node.refs.map(([path, dep]) => ({ path, stepId: dep }))
  for (const ref of refs) place(args, ref.path, refMarker(ref.stepId))
  return { args, refs }
}
