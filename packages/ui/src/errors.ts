// Errors of the dashboard: the server could not start, and the refusals the JSON API answers with
// (each with a stable code and the HTTP status it is sent with, as `{ error: { code, message } }`).

import { WfError } from '@wf/core'

/** The server could not listen (the port is taken, the host is not an address of this machine…). */
export class UiListenError extends WfError<'WF_UI_LISTEN'> {
  readonly host: string
  readonly port: number
  constructor(host: string, port: number, cause: unknown) {
    const reason = (cause as { code?: unknown } | null)?.code
    const hint =
      reason === 'EADDRINUSE'
        ? `port ${port} is in use: pass another one (wf ui --port ${port + 1}, or 0 for any free port)`
        : reason === 'EADDRNOTAVAIL'
          ? `${host} is not an address of this machine: pass --host 127.0.0.1 (the default)`
          : cause instanceof Error
            ? cause.message
            : String(cause)
    super('WF_UI_LISTEN', `wf ui could not listen on ${host}:${port}: ${hint}`, { cause })
    this.host = host
    this.port = port
  }
}

/** The stable codes of the API's own refusals. */
export const API_ERROR_CODES = {
  /** 401: no token, or a wrong one. */
  unauthorized: 'WF_UI_UNAUTHORIZED',
  /** 403: the `Host` header names a host this server does not answer to (DNS rebinding). */
  forbiddenHost: 'WF_UI_FORBIDDEN_HOST',
  /** 403: a state-changing request from another origin (CSRF), or without Origin and without a Bearer token. */
  crossOrigin: 'WF_UI_CROSS_ORIGIN',
  /** 403: an action on a server started read-only. */
  readOnly: 'WF_UI_READ_ONLY',
  /** 409: resume asked of a server that has not imported the step modules. */
  resumeUnavailable: 'WF_UI_RESUME_UNAVAILABLE',
  /** 404: no such route. */
  notFound: 'WF_UI_NOT_FOUND',
  /** 405: a route that does not take this method. */
  methodNotAllowed: 'WF_UI_METHOD_NOT_ALLOWED',
  /** 400: a query parameter, path segment or body that cannot be read. */
  badRequest: 'WF_UI_BAD_REQUEST',
  /** 413: a request body over the limit (1 MiB). */
  tooLarge: 'WF_UI_BODY_TOO_LARGE',
} as const

export type ApiErrorCode = (typeof API_ERROR_CODES)[keyof typeof API_ERROR_CODES]

/** A refusal of the JSON API, sent with `status` as `{ error: { code, message } }`. */
export class ApiError extends WfError<ApiErrorCode> {
  readonly status: number
  readonly headers: Record<string, string>
  constructor(status: number, code: ApiErrorCode, message: string, headers: Record<string, string> = {}) {
    super(code, message)
    this.status = status
    this.headers = headers
  }
}
