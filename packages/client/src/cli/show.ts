// `wf show`: a workflow's record and its step graph as a tree. Steps are listed upstream first,
// each with its status, attempts, duration and inputs; a continuation's sub-graph is nested
// under the step that returned it; steps planned but not run yet show as PENDING.

import type { StepView, WorkflowGraph } from '../graph-view.js'
import type { WorkflowMetadata } from '../types.js'
import { duration, type Out, paint, status, table, time } from './format.js'

interface StepJson {
  stepId: string
  name: string
  status: StepView['status']
  attempts: number
  startTime?: number
  endTime?: number
  durationMs?: number
  dependsOn: string[]
  error?: StepView['error']
  /** Whether the step's code changed since submission (only known for steps this process registered). */
  codeChanged?: boolean
  children: StepJson[]
}

function stepJson(view: StepView): StepJson {
  const out: StepJson = {
    stepId: view.stepId,
    name: view.name,
    status: view.status,
    attempts: view.record?.attempts ?? 0,
    dependsOn: view.dependsOn,
    children: view.children.map(stepJson),
  }
  if (view.record) {
    out.startTime = view.record.startTime
    out.endTime = view.record.endTime
    out.durationMs = view.record.endTime - view.record.startTime
  }
  if (view.error) out.error = view.error
  if (view.codeChanged !== undefined) out.codeChanged = view.codeChanged
  return out
}

/** The `--json` form of `wf show`. */
export function showJson(meta: WorkflowMetadata, graph: WorkflowGraph): unknown {
  return {
    workflow: meta,
    steps: graph.steps.map(stepJson),
    committed: graph.committed,
    total: graph.total,
  }
}

function rows(views: StepView[], indent: string, nested: boolean, out: Out): string[][] {
  const lines: string[][] = []
  views.forEach((view, i) => {
    const last = i === views.length - 1
    const branch = nested ? (last ? '└─ ' : '├─ ') : ''
    const attempts = view.record ? String(view.record.attempts) : '-'
    const took = view.record ? duration(view.record.endTime - view.record.startTime) : '-'
    const inputs = view.dependsOn.length > 0 ? view.dependsOn.join(', ') : ''
    const changed = view.codeChanged ? paint(out, 'yellow', '  (code changed)') : ''
    const label =
      (view.status === 'PENDING' ? paint(out, 'dim', `${view.stepId}  (not run yet)`) : view.stepId) + changed
    lines.push([`${indent}${branch}${label}`, status(out, view.status), attempts, took, inputs])
    if (view.children.length > 0) {
      const childIndent = nested ? indent + (last ? '   ' : '│  ') : indent
      lines.push(...rows(view.children, childIndent, true, out))
    }
  })
  return lines
}

/** The human form of `wf show`. */
export function showText(meta: WorkflowMetadata, graph: WorkflowGraph, out: Out): string {
  const ended = meta.stats.endTime
  const head: [string, string][] = [
    ['workflow', meta.workflowId],
    ['status', status(out, meta.status)],
    ['created', time(meta.stats.startTime)],
    ['ended', ended === undefined ? '-' : `${time(ended)} (took ${duration(ended - meta.stats.startTime)})`],
    ['runs', String(meta.stats.runs)],
  ]
  if (Object.keys(meta.userMetadata).length > 0) head.push(['metadata', JSON.stringify(meta.userMetadata)])
  if (meta.runner) head.push(['runner', `${meta.runner.host} pid ${meta.runner.pid}`])
  const rt = meta.runtime
  if (rt) {
    const app = rt.app ? `${rt.app.name ?? '?'}@${rt.app.version ?? '?'}` : 'unknown'
    const wf = Object.entries(rt.wfPackages)
      .map(([name, version]) => `${name}@${version}`)
      .join(' ')
    const lock = rt.lockfile ? `, lockfile ${rt.lockfile.sha256.slice(0, 12)}` : ''
    head.push(['submitted', `node ${rt.node} ${rt.platform}/${rt.arch}, app ${app}${lock}; ${wf}`])
  }
  if (meta.error) {
    head.push([
      'error',
      paint(out, 'red', `${meta.error.name}: ${meta.error.message} (in step ${meta.error.stepId})`),
    ])
  }
  const width = Math.max(...head.map(([k]) => k.length))
  const lines = head.map(([k, v]) => `${k.padEnd(width)}  ${v}`)
  lines.push('', `steps: ${graph.committed} of ${graph.total} done`)
  lines.push(
    table(['STEP', 'STATUS', 'ATTEMPTS', 'DURATION', 'INPUTS'], rows(graph.steps, '', false, out), out),
  )
  return lines.join('\n')
}
