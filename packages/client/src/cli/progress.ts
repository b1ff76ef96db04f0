// Progress of `wf resume` on a terminal: "steps done / known" on one rewritten stderr line.
// It reads what the run commits (each step record once), so it needs no hook in the engine.

import type { StepRecord } from '@wf/core'
import type { WorkflowStore } from '@wf/core/internal'

const TICK_MS = 250

/** Starts drawing progress; the returned function stops it and clears the line. */
export function showProgress(
  store: WorkflowStore,
  workflowId: string,
  write: (text: string) => void,
): () => void {
  const seen = new Set<string>()
  let total: number | undefined
  let busy = false
  let stopped = false
  const tick = async (): Promise<void> => {
    if (busy || stopped) return
    busy = true
    try {
      if (total === undefined) {
        const found = await store.readWorkflow(workflowId)
        if (!found) return
        total = (await store.loadGraph(found.record)).nodes.length
      }
      for (const stepId of await store.listStepIds(workflowId)) {
        if (seen.has(stepId)) continue
        seen.add(stepId)
        const record: StepRecord | undefined = await store.readStep(workflowId, stepId)
        // A continuation adds the steps of the sub-graph it returned.
        if (record?.kind === 'continuation') total += record.graph?.nodes.length ?? 0
      }
      if (!stopped) write(`\r\u001b[2Ksteps ${seen.size}/${total}`)
    } catch {
      // Progress is best effort: the run reports its own errors.
    } finally {
      busy = false
    }
  }
  const timer = setInterval(() => void tick(), TICK_MS)
  timer.unref()
  void tick()
  return () => {
    stopped = true
    clearInterval(timer)
    write('\r\u001b[2K')
  }
}
