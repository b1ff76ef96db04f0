// Forking a workflow: a new workflow from the same graph that keeps some committed results of the
// original (copied, with their blobs, so deleting either workflow never breaks the other) and runs
// the rest with the code loaded now. Which steps to keep is the caller's choice (@wf/client's `fork`
// computes it from the step graph: every committed step that does not depend on the fork point).

import { ConditionFailedError, WorkflowAlreadyExistsError } from '../errors.js'
import { validateMetadata, validateWorkflowId } from '../model/ids.js'
import { type StoredOutput, storeKeys, type WorkflowRecord } from '../model/records.js'
import type { StoredGraph } from '../model/stored-graph.js'
import { fingerprintStep } from '../step/fingerprint.js'
import { getRegisteredStep } from '../step/step.js'
import type { WorkflowStore } from '../store/store.js'
import { newIncarnation } from './claim.js'
import { currentRuntimeInfo } from './runtime-info.js'

/** What a forked workflow's record says it came from (`WorkflowRecord.forkedFrom`). */
export interface ForkedFrom {
  workflowId: string
  stepId: string
}

/** The fork to write. */
export interface ForkPlan {
  workflowId: string
  /** Committed steps of the original to keep (their records are copied). */
  keep: readonly string[]
  /** Step names that run again: their fingerprints become this process's (a fork re-runs them on purpose). */
  rerunNames: readonly string[]
  metadata: WorkflowRecord['metadata']
  forkedFrom: ForkedFrom
}

/**
 * Writes the fork: the kept step records (and caught outcomes) with their blobs, then its graph,
 * then its record, PENDING (create-if-absent: `WorkflowAlreadyExistsError` when the id is taken).
 * A crash before the record leaves keys without a record, which `wf doctor` reports and removes.
 */
export async function writeFork(
  store: WorkflowStore,
  source: WorkflowRecord,
  plan: ForkPlan,
): Promise<WorkflowRecord> {
  validateWorkflowId(plan.workflowId)
  validateMetadata(plan.metadata, `fork of ${source.workflowId}`)
  if (await store.readWorkflow(plan.workflowId)) throw new WorkflowAlreadyExistsError(plan.workflowId)
  const from = source.workflowId
  const to = plan.workflowId
  const copyOutput = async (output: StoredOutput | undefined) => {
    if (output && 'blob' in output) {
      const found = await store.storage.get(storeKeys.blob(from, output.blob))
      if (found) await store.storage.put(storeKeys.blob(to, output.blob), found.data)
    }
  }
  for (const stepId of plan.keep) {
    const record = await store.readStep(from, stepId)
    if (!record) continue
    await copyOutput(record.output)
    await store.commitStep(to, stepId, record)
    const caught = await store.readCaught(from, stepId)
    if (caught) {
      await copyOutput(caught.output)
      await store.commitCaught(to, stepId, caught)
    }
  }
  const graph = await store.loadGraph(source)
  const forkGraph: StoredGraph = { ...graph }
  if (graph.fingerprints) {
    const fingerprints = { ...graph.fingerprints }
    for (const name of plan.rerunNames) {
      const definition = getRegisteredStep(name)
      if (definition && fingerprints[name] !== undefined) fingerprints[name] = fingerprintStep(definition)
    }
    forkGraph.fingerprints = fingerprints
  }
  const now = Date.now()
  const graphRef = await store.graphRef(to, forkGraph)
  let runtime = currentRuntimeInfo()
  if (typeof graphRef === 'string' && forkGraph.fingerprints)
    runtime = { ...runtime, steps: forkGraph.fingerprints }
  const record: WorkflowRecord = {
    v: 1,
    workflowId: to,
    status: 'PENDING',
    createdAt: now,
    updatedAt: now,
    metadata: plan.metadata,
    graph: graphRef,
    rootStepId: source.rootStepId,
    runs: 0,
    runtime,
    incarnation: newIncarnation(),
    forkedFrom: { ...plan.forkedFrom },
  }
  try {
    await store.createWorkflow(record)
  } catch (error) {
    if (error instanceof ConditionFailedError) throw new WorkflowAlreadyExistsError(to)
    throw error
  }
  return record
}
