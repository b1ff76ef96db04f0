// The JSON API under /api, which the page uses and scripts may too (documented in the README).
// Every route goes through the public WorkflowClient; wf's errors become HTTP statuses with their
// stable code (`{ error: { code, message } }`).
// Over 400 lines: every JSON route of the dashboard with its validation.

import type { ScheduleInfo, WorkflowClient, WorkflowMetadata } from '@wf/client'
import {
  type EventSummary,
  InvalidOptionsError,
  InvalidWorkflowIdError,
  type Json,
  WfError,
  WORKFLOW_STATUSES,
  type WorkflowStatus,
} from '@wf/core'
import { stepArguments } from './args.js'
import { API_ERROR_CODES, ApiError } from './errors.js'
import { keyOfCursor, type Runs } from './runs.js'
import { type GraphJson, graphJson, type ValueText, valueText } from './views.js'

/** What the routes need from the server. */
export interface ApiContext {
  client: WorkflowClient
  readOnly: boolean
  /** Why resume is refused (no step modules imported); undefined when it is allowed. */
  resumeRefusal: string | undefined
  /** Longest value text sent, in characters. */
  outputLimit: number
  /** Runs this server resumed, so their failures are kept, not thrown into the process. */
  track(workflowId: string, result: Promise<unknown>): void
  /** The runs listing with its caches (counts, rows that cannot change). */
  runs: Runs
}

export interface ApiResponse {
  status: number
  body: unknown
  /** A download: `body` is sent as this text, not as JSON. */
  download?: { filename: string; type: string }
}

export type { WorkflowRow } from './runs.js'

const DEFAULT_LIMIT = 100
const MAX_LIMIT = 1000

/** Decodes one path segment; a malformed escape is a 400, not a crash. */
function segment(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new ApiError(
      400,
      API_ERROR_CODES.badRequest,
      `cannot decode the path segment ${JSON.stringify(raw)}`,
    )
  }
}

function statusesOf(query: URLSearchParams): Set<WorkflowStatus> | undefined {
  const given = query
    .getAll('status')
    .flatMap((s) => s.split(','))
    .filter((s) => s !== '')
  if (given.length === 0) return undefined
  for (const s of given) {
    if (!(WORKFLOW_STATUSES as readonly string[]).includes(s))
      throw new ApiError(
        400,
        API_ERROR_CODES.badRequest,
        `unknown status ${JSON.stringify(s)}: use one of ${WORKFLOW_STATUSES.join(', ')}`,
      )
  }
  return new Set(given as WorkflowStatus[])
}

function limitOf(query: URLSearchParams): number {
  const raw = query.get('limit')
  if (raw === null) return DEFAULT_LIMIT
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_LIMIT)
    throw new ApiError(400, API_ERROR_CODES.badRequest, `limit must be a whole number from 1 to ${MAX_LIMIT}`)
  return n
}

/** The cursor is the creation-time key of the last workflow the previous page examined. */
function cursorOf(query: URLSearchParams): string | undefined {
  const raw = query.get('cursor')
  if (raw === null || raw === '') return undefined
  const key = keyOfCursor(raw)
  if (key === undefined)
    throw new ApiError(400, API_ERROR_CODES.badRequest, 'cursor is not one returned by GET /api/workflows')
  return key
}

/** `createdAfter` / `createdBefore`: milliseconds since the epoch, or a date `Date.parse` reads. */
function timeOf(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name)
  return raw === null || raw === '' ? undefined : timeFrom(raw, name)
}

/** A time given as milliseconds since the epoch (a number or its digits) or a date `Date.parse` reads. */
function timeFrom(value: unknown, name: string): number {
  const ms =
    typeof value === 'number'
      ? value
      : typeof value === 'string'
        ? /^\d+$/.test(value)
          ? Number(value)
          : Date.parse(value)
        : Number.NaN
  if (!Number.isFinite(ms))
    throw new ApiError(
      400,
      API_ERROR_CODES.badRequest,
      `${name} must be milliseconds since the epoch or a date such as 2026-11-26T08:00:00Z, got ${JSON.stringify(value)}`,
    )
  return ms
}

/** `metadata`: a JSON object of keys the workflow's metadata must have, with JSON-equal values. */
function metadataOf(query: URLSearchParams): [string, Json][] {
  const raw = query.get('metadata')
  if (raw === null || raw === '') return []
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    parsed = undefined
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new ApiError(
      400,
      API_ERROR_CODES.badRequest,
      'metadata must be a JSON object, e.g. {"team":"data"}',
    )
  return Object.entries(parsed as { [key: string]: Json })
}

/**
 * `GET /api/workflows`: counts per status over the whole storage, and one page of the workflows
 * passing the filters, newest first, from the creation-time index (see runs.ts).
 */
async function listRoute(ctx: ApiContext, query: URLSearchParams): Promise<ApiResponse> {
  const statuses = statusesOf(query)
  const createdAfter = timeOf(query, 'createdAfter')
  const createdBefore = timeOf(query, 'createdBefore')
  const after = cursorOf(query)
  const body = await ctx.runs.page({
    ...(statuses === undefined ? {} : { statuses }),
    prefix: query.get('prefix') ?? '',
    limit: limitOf(query),
    ...(after === undefined ? {} : { after }),
    ...(createdAfter === undefined ? {} : { createdAfter }),
    ...(createdBefore === undefined ? {} : { createdBefore }),
    metadata: metadataOf(query),
  })
  return { status: 200, body }
}

/** The body of `GET /api/workflows/:id`. */
export interface WorkflowDetail {
  /** `getMetadata(id)`, with `waitingFor` while it is parked. */
  workflow: WorkflowMetadata
  graph: GraphJson
  /** The events sent to it, in the order accepted, with the step that took each (`listEvents`). */
  events: EventSummary[]
}

async function detailRoute(ctx: ApiContext, id: string): Promise<ApiResponse> {
  const workflow = await ctx.client.getMetadata(id)
  const [graph, events] = await Promise.all([ctx.client.getGraph(id), ctx.client.listEvents(id)])
  const body: WorkflowDetail = { workflow, graph: graphJson(graph), events }
  return { status: 200, body }
}

/** The body of `GET /api/schedules`. */
export interface ScheduleList {
  /** `listSchedules()`: spec (and in words), paused, last run, next tick, skipped ticks. */
  schedules: ScheduleInfo[]
}

async function schedulesRoute(ctx: ApiContext): Promise<ApiResponse> {
  const body: ScheduleList = { schedules: await ctx.client.listSchedules() }
  return { status: 200, body }
}

/** A schedule id from the path: one segment (the client answers 404 for any id not stored). */
function scheduleIdOf(raw: string): string {
  const id = segment(raw)
  if (id === '' || id.includes('/'))
    throw new ApiError(400, API_ERROR_CODES.badRequest, `${JSON.stringify(id)} is not a schedule id`)
  return id
}

async function pauseScheduleRoute(ctx: ApiContext, id: string, paused: boolean): Promise<ApiResponse> {
  refuseReadOnly(ctx)
  const schedule = paused ? await ctx.client.pauseSchedule(id) : await ctx.client.resumeSchedule(id)
  return { status: 200, body: { schedule } }
}

async function outputRoute(
  ctx: ApiContext,
  id: string,
  stepId: string,
  query: URLSearchParams,
): Promise<ApiResponse> {
  const value = await ctx.client.getOutput(id, { stepId })
  if (query.get('download') === '1') {
    // The whole value, as a file: the page links here when the shown text was cut.
    const whole = valueText(value, Number.POSITIVE_INFINITY)
    const safe = `${id}-${stepId}`.replace(/[^\w.-]+/g, '_').slice(0, 120)
    return {
      status: 200,
      body: whole.text,
      download: {
        filename: `${safe}.${whole.json ? 'json' : 'txt'}`,
        type: `${whole.json ? 'application/json' : 'text/plain'}; charset=utf-8`,
      },
    }
  }
  const body: { workflowId: string; stepId: string } & ValueText = {
    workflowId: id,
    stepId,
    ...valueText(value, ctx.outputLimit),
  }
  return { status: 200, body }
}

/**
 * `GET /api/workflows/:id/steps/:stepId/args`: the step's arguments as stored in its graph, as text
 * (a place an upstream output fills reads `<output of <step id>>`); `?download=1` for the whole text.
 */
async function argsRoute(
  ctx: ApiContext,
  id: string,
  stepId: string,
  query: URLSearchParams,
): Promise<ApiResponse> {
  const { args, refs } = await stepArguments(ctx.client, id, stepId)
  if (query.get('download') === '1') {
    const whole = valueText(args, Number.POSITIVE_INFINITY)
    const safe = `${id}-${stepId}-args`.replace(/[^\w.-]+/g, '_').slice(0, 120)
    return {
      status: 200,
      body: whole.text,
      download: {
        filename: `${safe}.${whole.json ? 'json' : 'txt'}`,
        type: `${whole.json ? 'application/json' : 'text/plain'}; charset=utf-8`,
      },
    }
  }
  const body: { workflowId: string; stepId: string; refs: typeof refs } & ValueText = {
    workflowId: id,
    stepId,
    refs,
    ...valueText(args, ctx.outputLimit),
  }
  return { status: 200, body }
}

function refuseReadOnly(ctx: ApiContext): void {
  if (ctx.readOnly)
    throw new ApiError(
      403,
      API_ERROR_CODES.readOnly,
      'this dashboard was started read-only (--read-only): it does not cancel, resume, fork, delete, send events, or pause, resume, trigger, backfill or delete schedules',
    )
}

/** A request body read as JSON; an empty body is `undefined`. */
function jsonBody(body: string): unknown {
  if (body.trim() === '') return undefined
  try {
    return JSON.parse(body)
  } catch {
    throw new ApiError(400, API_ERROR_CODES.badRequest, 'the request body must be JSON')
  }
}

/** An optional string field of a JSON object body. */
function stringField(body: { [key: string]: unknown }, name: string): string | undefined {
  const value = body[name]
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string')
    throw new ApiError(400, API_ERROR_CODES.badRequest, `${name} must be a string`)
  return value
}

/**
 * `POST /api/workflows/:id/fork` with `{ fromStep?, workflowId? }`: a new workflow that keeps what
 * does not depend on `fromStep` and runs it again (`fork`). It runs in this process when the step
 * modules were imported (as resume does), else it is stored PENDING for a worker.
 */
async function forkRoute(ctx: ApiContext, id: string, rawBody: string): Promise<ApiResponse> {
  refuseReadOnly(ctx)
  const body = jsonBody(rawBody) ?? {}
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError(
      400,
      API_ERROR_CODES.badRequest,
      'the body must be a JSON object { fromStep?, workflowId? }',
    )
  const fields = body as { [key: string]: unknown }
  const fromStep = stringField(fields, 'fromStep')
  const workflowId = stringField(fields, 'workflowId')
  const here = ctx.resumeRefusal === undefined
  const handle = await ctx.client.fork(id, {
    ...(fromStep === undefined ? {} : { fromStep }),
    ...(workflowId === undefined ? {} : { workflowId }),
    detach: !here,
  })
  if (here) ctx.track(handle.workflowId, handle.result())
  return {
    status: 202,
    body: {
      workflowId: handle.workflowId,
      forkedFrom: handle.forkedFrom,
      kept: handle.kept,
      status: here ? 'RUNNING' : 'PENDING',
    },
  }
}

/**
 * `POST /api/workflows/:id/events/:name`: the body (JSON; empty is null) is the event's payload,
 * as `sendEvent` takes it; `Idempotency-Key` (header) or `?idempotencyKey=` makes a resend safe.
 */
async function eventRoute(
  ctx: ApiContext,
  id: string,
  name: string,
  rawBody: string,
  query: URLSearchParams,
  idempotencyKey: string | undefined,
): Promise<ApiResponse> {
  refuseReadOnly(ctx)
  const payload = jsonBody(rawBody) ?? null
  const key = query.get('idempotencyKey') ?? idempotencyKey
  const sent = await ctx.client.sendEvent(id, name, payload, key ? { idempotencyKey: key } : undefined)
  return {
    status: 202,
    body: { workflowId: sent.workflowId, name: sent.name, seq: sent.seq, duplicate: sent.duplicate },
  }
}

/**
 * `POST /api/schedules/:id/backfill` with `{ from, to }`: one PENDING run per tick in the range that
 * has none yet (`backfillSchedule`: the schedule must be declared in this process).
 */
async function backfillRoute(ctx: ApiContext, id: string, rawBody: string): Promise<ApiResponse> {
  refuseReadOnly(ctx)
  const body = jsonBody(rawBody)
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError(400, API_ERROR_CODES.badRequest, 'the body must be a JSON object { from, to }')
  const fields = body as { [key: string]: unknown }
  const { created, existing } = await ctx.client.backfillSchedule(
    id,
    timeFrom(fields.from, 'from'),
    timeFrom(fields.to, 'to'),
  )
  return { status: 202, body: { scheduleId: id, created, existing } }
}

/** `DELETE /api/schedules/:id`: its record goes (a worker that still declares it stores it again). */
async function deleteScheduleRoute(ctx: ApiContext, id: string): Promise<ApiResponse> {
  refuseReadOnly(ctx)
  await ctx.client.deleteSchedule(id)
  return { status: 200, body: { scheduleId: id, deleted: true } }
}

/** `POST /api/schedules/:id/trigger`: runs the schedule now (PENDING for a worker), if declared here. */
async function triggerRoute(ctx: ApiContext, id: string): Promise<ApiResponse> {
  refuseReadOnly(ctx)
  const workflowId = await ctx.client.triggerSchedule(id)
  return { status: 202, body: { scheduleId: id, workflowId } }
}

async function cancelRoute(ctx: ApiContext, id: string): Promise<ApiResponse> {
  refuseReadOnly(ctx)
  const status = await ctx.client.cancel(id)
  return { status: 200, body: { workflowId: id, status } }
}

async function resumeRoute(ctx: ApiContext, id: string): Promise<ApiResponse> {
  refuseReadOnly(ctx)
  if (ctx.resumeRefusal !== undefined)
    throw new ApiError(409, API_ERROR_CODES.resumeUnavailable, ctx.resumeRefusal)
  const handle = await ctx.client.resumeAsync(id)
  ctx.track(id, handle.result())
  return { status: 202, body: { workflowId: id, status: 'RUNNING' } }
}

async function deleteRoute(ctx: ApiContext, id: string): Promise<ApiResponse> {
  refuseReadOnly(ctx)
  await ctx.client.delete(id)
  return { status: 200, body: { workflowId: id, deleted: true } }
}

function methodNotAllowed(allow: string[]): never {
  throw new ApiError(405, API_ERROR_CODES.methodNotAllowed, `this route takes ${allow.join(', ')}`, {
    Allow: allow.join(', '),
  })
}

/** Whether a method changes something (and so needs the same-origin check). */
export function isStateChanging(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS'
}

/** What a request carries beside its method and path. */
export interface RequestParts {
  query: URLSearchParams
  /** The body as text ('' when none); read for state-changing requests only. */
  body: string
  /** The `Idempotency-Key` header, for events. */
  idempotencyKey?: string
}

/** Routes one `/api` request (already authenticated) to its handler. */
export async function route(
  ctx: ApiContext,
  method: string,
  pathname: string,
  parts: RequestParts,
): Promise<ApiResponse> {
  if (!isStateChanging(method)) return dispatch(ctx, method, pathname, parts)
  try {
    return await dispatch(ctx, method, pathname, parts)
  } finally {
    // Whatever it changed (even in part, on a failure) shows in the next counts and rows.
    ctx.runs.invalidate()
    const [, , kind, raw] = pathname.split('/')
    if (method === 'DELETE' && kind === 'workflows' && raw !== undefined) {
      try {
        ctx.runs.forget(decodeURIComponent(raw))
      } catch {
        // A malformed id was refused already: nothing was deleted.
      }
    }
  }
}

async function dispatch(
  ctx: ApiContext,
  method: string,
  pathname: string,
  { query, body, idempotencyKey }: RequestParts,
): Promise<ApiResponse> {
  const parts = pathname.split('/').slice(2) // ['', 'api', …]
  if (parts.length === 1 && parts[0] === 'info') {
    if (method !== 'GET') methodNotAllowed(['GET'])
    return {
      status: 200,
      body: {
        readOnly: ctx.readOnly,
        canResume: !ctx.readOnly && ctx.resumeRefusal === undefined,
        ...(ctx.resumeRefusal === undefined ? {} : { resumeRefusal: ctx.resumeRefusal }),
        statuses: WORKFLOW_STATUSES,
      },
    }
  }
  if (parts[0] === 'workflows') {
    if (parts.length === 1) {
      if (method !== 'GET') methodNotAllowed(['GET'])
      return listRoute(ctx, query)
    }
    const id = segment(parts[1] ?? '')
    if (parts.length === 2) {
      if (method === 'GET') return detailRoute(ctx, id)
      if (method === 'DELETE') return deleteRoute(ctx, id)
      methodNotAllowed(['GET', 'DELETE'])
    }
    if (parts.length === 3 && (parts[2] === 'cancel' || parts[2] === 'resume' || parts[2] === 'fork')) {
      if (method !== 'POST') methodNotAllowed(['POST'])
      if (parts[2] === 'fork') return forkRoute(ctx, id, body)
      return parts[2] === 'cancel' ? cancelRoute(ctx, id) : resumeRoute(ctx, id)
    }
    if (parts.length === 4 && parts[2] === 'events') {
      if (method !== 'POST') methodNotAllowed(['POST'])
      return eventRoute(ctx, id, segment(parts[3] ?? ''), body, query, idempotencyKey)
    }
    if (parts.length === 5 && parts[2] === 'steps' && (parts[4] === 'output' || parts[4] === 'args')) {
      if (method !== 'GET') methodNotAllowed(['GET'])
      if (parts[4] === 'args') return argsRoute(ctx, id, segment(parts[3] ?? ''), query)
      return outputRoute(ctx, id, segment(parts[3] ?? ''), query)
    }
  }
  if (parts[0] === 'schedules') {
    if (parts.length === 1) {
      if (method !== 'GET') methodNotAllowed(['GET'])
      return schedulesRoute(ctx)
    }
    if (parts.length === 2) {
      if (method !== 'DELETE') methodNotAllowed(['DELETE'])
      return deleteScheduleRoute(ctx, scheduleIdOf(parts[1] ?? ''))
    }
    const action = parts[2]
    if (
      parts.length === 3 &&
      (action === 'pause' || action === 'resume' || action === 'trigger' || action === 'backfill')
    ) {
      if (method !== 'POST') methodNotAllowed(['POST'])
      const scheduleId = scheduleIdOf(parts[1] ?? '')
      if (action === 'trigger') return triggerRoute(ctx, scheduleId)
      if (action === 'backfill') return backfillRoute(ctx, scheduleId, body)
      return pauseScheduleRoute(ctx, scheduleId, action === 'pause')
    }
  }
  throw new ApiError(
    404,
    API_ERROR_CODES.notFound,
    `no API route ${method} ${pathname}: see the @wf/ui README`,
  )
}

/** wf's errors as HTTP: the status their meaning calls for, their stable code and message. */
export function errorResponse(error: unknown): ApiResponse & { headers: Record<string, string> } {
  if (error instanceof ApiError)
    return {
      status: error.status,
      headers: error.headers,
      body: { error: { code: error.code, message: error.message } },
    }
  const code = error instanceof WfError ? error.code : 'WF_UNEXPECTED'
  const message = error instanceof Error ? error.message : String(error)
  return { status: httpStatusOf(error, code), headers: {}, body: { error: { code, message } } }
}

function httpStatusOf(error: unknown, code: string): number {
  if (error instanceof InvalidWorkflowIdError || error instanceof InvalidOptionsError) return 400
  switch (code) {
    case 'WF_NOT_FOUND':
    case 'WF_STEP_NOT_FOUND':
    case 'WF_SCHEDULE_NOT_FOUND':
      return 404
    case 'WF_STEP_NOT_COMMITTED':
    case 'WF_STILL_ACTIVE':
    case 'WF_NOT_RESUMABLE':
    case 'WF_OUTPUT_UNAVAILABLE':
    case 'WF_CODE_CHANGED':
    case 'WF_STEP_NOT_REGISTERED':
    case 'WF_ALREADY_EXISTS':
    case 'WF_EVENT_REFUSED':
    case 'WF_SCHEDULE_NOT_DECLARED':
      return 409
    case 'WF_CANCEL_NOT_ACKNOWLEDGED':
    case 'WF_STORAGE_UNAVAILABLE':
      return 503
    default:
      return 500
  }
}
