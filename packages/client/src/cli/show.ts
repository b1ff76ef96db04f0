// `wf show`: a workflow's record and its step graph as a tree. Steps are listed upstream first,
// each with its status, attempts, duration and inputs; a continuation's sub-graph is nested
// under the step that returned it; steps planned but not run yet show as PENDING. Below the tree,
// each step that failed an attempt: its attempts, its errors, and the stack of the one that counted.

import type { AttemptFailure, EventSummary, StepFailures } from '@wf/core'
import type { StepView, WorkflowGraph } from '../graph-view.js'
import type { WorkflowMetadata } from '../types.js'
import { duration, type Out, paint, shorten, status, table, time } from './format.js'

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
  /** Its failed attempts, when any failed (the last five errors, the count, the time span). */
  failures?: StepView['failures']
  /** Set when it caught a failure in its continuation (its outcome is `{ ok: false, error }`). */
  caughtContinuation?: boolean
  /** The fingerprint of its code and options recorded with its graph. */
  fingerprint?: string
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
  if (view.failures) {
    out.failures = view.failures
    if (!view.record) {
      // Nothing committed: what is known of its run is its failed attempts.
      out.attempts = view.failures.attempts
      out.startTime = view.failures.startTime
      out.endTime = view.failures.endTime
      out.durationMs = view.failures.endTime - view.failures.startTime
    }
  }
  if (view.fingerprint !== undefined) out.fingerprint = view.fingerprint
  if (view.caughtContinuation) out.caughtContinuation = true
  if (view.codeChanged !== undefined) out.codeChanged = view.codeChanged
  return out
}

/** The `--json` form of `wf show`. */
export function showJson(meta: WorkflowMetadata, graph: WorkflowGraph, events: EventSummary[] = []): unknown {
  return {
    workflow: meta,
    steps: graph.steps.map(stepJson),
    committed: graph.committed,
    total: graph.total,
    events,
  }
}

/** The events sent to the workflow: who took each, and those still waiting for a step. */
function eventLines(events: EventSummary[], out: Out): string[] {
  const own = events.filter((event) => !event.foreign)
  if (own.length === 0) return []
  const rows = own.map((event) => [
    `#${event.seq}`,
    event.name,
    time(event.sentAt),
    event.takenBy === undefined ? paint(out, 'yellow', 'pending') : `taken by ${event.takenBy}`,
  ])
  return [
    '',
    `events: ${own.length} sent, ${own.filter((e) => e.takenBy === undefined).length} pending`,
    table(['SEQ', 'EVENT', 'SENT', 'TAKEN'], rows, out),
  ]
}

function rows(views: StepView[], indent: string, nested: boolean, out: Out): string[][] {
  const lines: string[][] = []
  views.forEach((view, i) => {
    const last = i === views.length - 1
    const branch = nested ? (last ? '└─ ' : '├─ ') : ''
    const run = view.record ?? view.failures
    const attempts = run ? String(run.attempts) : '-'
    const took = run ? duration(run.endTime - run.startTime) : '-'
    const inputs = view.dependsOn.length > 0 ? view.dependsOn.join(', ') : ''
    const changed = view.codeChanged ? paint(out, 'yellow', '  (code changed)') : ''
    const label =
      (view.status === 'PENDING'
        ? paint(
            out,
            'dim',
            `${view.stepId}  (${view.failures ? 'failed attempts, nothing committed' : 'not run yet'})`,
          )
        : view.stepId) +
      // A durable function's call is named by its key: say which step it called.
      (/~(\d+|[kp]:[^~]*)$/.test(view.stepId) ? paint(out, 'dim', ` (${view.name})`) : '') +
      changed
    const caught =
      view.status === 'SUCCESSFUL' && view.failures?.caught ? lastError(view.failures) : undefined
    const state =
      status(out, view.status) +
      (caught ? paint(out, 'yellow', ` (caught ${cut(`${caught.name}: ${caught.message}`, 60)})`) : '') +
      (view.caughtContinuation ? paint(out, 'yellow', ' (caught a failure in its continuation)') : '')
    lines.push([`${indent}${branch}${label}`, state, attempts, took, inputs])
    if (view.children.length > 0) {
      const childIndent = nested ? indent + (last ? '   ' : '│  ') : indent
      lines.push(...rows(view.children, childIndent, true, out))
    }
  })
  return lines
}

const STACK_LINES = 6

/** `text` on one line, cut to `max` characters. */
function cut(text: string, max: number): string {
  const line = text.replace(/\s*\n\s*/g, ' ')
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`
}

function lastError(failures: StepFailures): AttemptFailure | undefined {
  return failures.errors[failures.errors.length - 1]
}

/** The stack's first lines under its error's own line (`name: message`), indented. */
function stackLines(error: { name: string; message: string; stack?: string }, indent: string): string[] {
  const head = `${error.name}: ${error.message}`
  const frames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line))
  return [indent + head, ...frames.slice(0, STACK_LINES).map((line) => `${indent}  ${line.trim()}`)]
}

/**
 * The failed attempts of each step that had some: how many, over how long, each recorded error
 * on a line, and the stack of the error that failed the step (or that `catchExceptions` caught).
 */
function failureLines(graph: WorkflowGraph, out: Out): string[] {
  const lines: string[] = []
  for (const view of graph.byId.values()) {
    const failures = view.failures
    if (!failures && !view.error) continue
    if (!failures) {
      // Recorded by an earlier version of wf: only the workflow's error is known.
      if (view.error && view.error.stepId === view.stepId)
        lines.push('', paint(out, 'bold', view.stepId), ...stackLines(view.error, '  '))
      continue
    }
    const span = duration(failures.endTime - failures.startTime)
    const n = failures.attempts
    const outcome =
      view.status === 'FAILED'
        ? paint(out, 'red', 'failed')
        : failures.caught
          ? paint(out, 'yellow', 'failed, and catchExceptions caught the last error')
          : view.record
            ? 'succeeded after retries'
            : 'failing, will be retried'
    lines.push(
      '',
      `${paint(out, 'bold', view.stepId)}: ${n} failed attempt${n === 1 ? '' : 's'} over ${span} (first started ${time(failures.startTime)}), ${outcome}`,
    )
    if (failures.attempts > failures.errors.length)
      lines.push(`  (the last ${failures.errors.length} are kept)`)
    for (const error of failures.errors) {
      lines.push(
        `  attempt ${error.attempt}  ${time(error.time)}  ${cut(`${error.name}: ${error.message}`, 100)}`,
      )
    }
    const last = lastError(failures)
    if (last && (view.status === 'FAILED' || failures.caught)) lines.push(...stackLines(last, '  '))
  }
  return lines.length === 0
    ? []
    : ['', 'failures:', ...lines.slice(1).map((line) => (line === '' ? '' : `  ${line}`))]
}

/** The human form of `wf show`. */
export function showText(
  meta: WorkflowMetadata,
  graph: WorkflowGraph,
  out: Out,
  events: EventSummary[] = [],
): string {
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
  if (meta.forkedFrom)
    head.push(['forked', `from ${meta.forkedFrom.workflowId} at step ${meta.forkedFrom.stepId}`])
  if (meta.waitingFor) {
    const { until, events, steps } = meta.waitingFor
    const left = until === undefined ? undefined : until - Date.now()
    const when =
      until === undefined
        ? ''
        : `until ${time(until)} (${left !== undefined && left > 0 ? `in ${duration(left)}` : 'due now'})`
    const what = events?.length
      ? `waiting for ${events.map((e) => `event ${e}`).join(', ')}${when && `, or ${when}`}`
      : `sleeping ${when}`
    head.push(['waiting', `parked, ${what}; a worker wakes it: ${steps.join(', ')}`])
  }
  if (meta.cancelRequested) {
    const { at, by } = meta.cancelRequested
    // RESUMABLE: no runner left to acknowledge; `wf cancel` writes CANCELED itself then.
    const then =
      meta.status === 'RUNNING'
        ? 'waiting for the runner'
        : `its runner is gone: \`wf cancel ${shorten(meta.workflowId)}\` cancels it`
    head.push(['cancel', `requested at ${time(at)} by ${by.host}:${by.pid}, ${then}`])
  }
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
  lines.push(...failureLines(graph, out))
  lines.push(...eventLines(events, out))
  return lines.join('\n')
}
