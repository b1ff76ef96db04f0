// What the API sends: the client's graph view as plain JSON (no Map, no step records: only what a
// page shows), and stored values as text (indented JSON when they are JSON, util.inspect
// otherwise), cut at a size limit, so any value a step returned can be shown and never executed.

import { inspect } from 'node:util'
import type { StepView, WorkflowGraph } from '@wf/client'
import type { Json, StepFailures } from '@wf/core'
import { isJsonable } from '@wf/core/internal'

/** A step of `GET /api/workflows/:id`'s graph. */
export interface StepJson {
  stepId: string
  name: string
  status: StepView['status']
  options: { [key: string]: Json }
  dependsOn: string[]
  /** When the attempt that committed started and ended, and how many attempts it took; absent until it commits. */
  startTime?: number
  endTime?: number
  attempts?: number
  /** `value`: a result is stored; `continuation`: it returned a sub-graph (its steps are `children`). */
  kind?: 'value' | 'continuation'
  children: StepJson[]
  continuationRootId?: string
  parentStepId?: string
  error?: { stepId: string; name: string; message: string; stack?: string }
  failures?: StepFailures
  caughtContinuation?: boolean
  codeChanged?: boolean
}

/** The graph part of `GET /api/workflows/:id`. */
export interface GraphJson {
  rootStepId: string
  committed: number
  total: number
  steps: StepJson[]
}

function stepJson(view: StepView): StepJson {
  const out: StepJson = {
    stepId: view.stepId,
    name: view.name,
    status: view.status,
    // Options as stored: JSON (code such as retryOn is not stored).
    options: JSON.parse(JSON.stringify(view.options ?? {})) as { [key: string]: Json },
    dependsOn: view.dependsOn,
    children: view.children.map(stepJson),
  }
  if (view.record) {
    out.startTime = view.record.startTime
    out.endTime = view.record.endTime
    out.attempts = view.record.attempts
    out.kind = view.record.kind
  }
  if (view.continuationRootId !== undefined) out.continuationRootId = view.continuationRootId
  if (view.parentStepId !== undefined) out.parentStepId = view.parentStepId
  if (view.error) out.error = view.error
  if (view.failures) out.failures = view.failures
  if (view.caughtContinuation) out.caughtContinuation = true
  if (view.codeChanged !== undefined) out.codeChanged = view.codeChanged
  return out
}

export function graphJson(graph: WorkflowGraph): GraphJson {
  return {
    rootStepId: graph.rootStepId,
    committed: graph.committed,
    total: graph.total,
    steps: graph.steps.map(stepJson),
  }
}

/** A stored value as text for the page. */
export interface ValueText {
  /** Whether `text` is JSON (else it is util.inspect's rendering of a value JSON cannot hold). */
  json: boolean
  text: string
  /** Whether `text` was cut at the limit. */
  truncated: boolean
  /** The length of the whole text, in characters. */
  length: number
}

/** Renders a value as text, cut to `limit` characters. */
export function valueText(value: unknown, limit: number): ValueText {
  const json = isJsonable(value)
  const whole = json
    ? (JSON.stringify(value, null, 2) ?? 'undefined')
    : inspect(value, { depth: null, maxArrayLength: 1000, maxStringLength: limit, breakLength: 100 })
  const truncated = whole.length > limit
  return { json, text: truncated ? whole.slice(0, limit) : whole, truncated, length: whole.length }
}
