// How an S3 failure is read: by HTTP status (`$metadata.httpStatusCode`), never by `err.name`,
// which is often `Unknown` on RGW. Plus the retry clock that bounds how long a call keeps
// retrying a server that stays down before it surfaces a `StorageUnavailableError`.

import { StorageConfigError, StorageUnavailableError } from '@wf/core'

/**
 * What a failed S3 request means for the caller:
 * - `condition`: 412, or 404 on a conditional write (the condition did not hold, if nothing was retried).
 * - `notFound`: 404 on a read or delete.
 * - `transient`: throttling, 5xx, 408, 409, network errors and timeouts; the request may or may not
 *   have taken effect, so a write in this state is indeterminate.
 * - `config`: a failure that retrying cannot fix (credentials, permissions, missing bucket, wrong
 *   region); surfaced as `StorageConfigError`.
 */
export type FailureKind = 'condition' | 'notFound' | 'transient' | 'config'

export interface Failure {
  kind: FailureKind
  status: number | undefined
  /**
   * The request never reached the server: the connection was refused, the name did not resolve,
   * no route to the host. Nothing it carried can have taken effect.
   */
  unreached: boolean
  /** How many HTTP attempts the SDK made for this command (more than 1: it retried on its own). */
  attempts: number
  error: unknown
}

interface SdkErrorShape {
  name?: unknown
  message?: unknown
  code?: unknown
  Code?: unknown
  $metadata?: { httpStatusCode?: unknown; attempts?: unknown }
}

function shape(error: unknown): SdkErrorShape {
  return typeof error === 'object' && error !== null ? (error as SdkErrorShape) : {}
}

export function httpStatusOf(error: unknown): number | undefined {
  const status = shape(error).$metadata?.httpStatusCode
  return typeof status === 'number' ? status : undefined
}

/** The S3 error code for messages only (`NoSuchBucket`, `AccessDenied`, …); never used to decide a retry. */
function codeOf(error: unknown): string | undefined {
  const e = shape(error)
  for (const candidate of [e.Code, e.code, e.name]) {
    if (
      typeof candidate === 'string' &&
      candidate !== '' &&
      candidate !== 'Unknown' &&
      candidate !== 'Error'
    ) {
      return candidate
    }
  }
  return undefined
}

export function describeError(error: unknown): string {
  const status = httpStatusOf(error)
  const code = codeOf(error)
  const message = error instanceof Error ? error.message : String(error)
  const parts = [status === undefined ? undefined : `HTTP ${status}`, code, message].filter(
    (p): p is string => typeof p === 'string' && p !== '' && p !== 'UnknownError',
  )
  return [...new Set(parts)].join(' ')
}

// Errors raised by the SDK before any request is sent: no retry will help.
function isClientSideConfigError(error: unknown): boolean {
  const e = shape(error)
  const message = typeof e.message === 'string' ? e.message : ''
  return (
    e.name === 'CredentialsProviderError' ||
    /Region is missing|Invalid region|Could not load credentials|Endpoint .* is not a valid/i.test(message)
  )
}

/**
 * Socket errors raised before a connection exists, with what they mean. A request that failed
 * with one was never sent: retrying it needs no settling, and nothing it carried happened.
 */
const UNREACHED: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'no such host (DNS lookup failed)',
  EAI_AGAIN: 'DNS lookup failed (EAI_AGAIN)',
  EHOSTUNREACH: 'no route to the host',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
}

function unreachedCode(error: unknown): string | undefined {
  const code = shape(error).code
  return typeof code === 'string' && code in UNREACHED ? code : undefined
}

export function classify(error: unknown, conditionalWrite = false): Failure {
  const status = httpStatusOf(error)
  const rawAttempts = shape(error).$metadata?.attempts
  const attempts = typeof rawAttempts === 'number' ? rawAttempts : 1
  // The SDK's own retries (a client passed in) may have reached the server before the last refusal.
  const unreached = status === undefined && attempts <= 1 && unreachedCode(error) !== undefined
  const failure = (kind: FailureKind): Failure => ({ kind, status, unreached, attempts, error })
  if (status === undefined) return failure(isClientSideConfigError(error) ? 'config' : 'transient')
  if (status === 412) return failure('condition')
  if (status === 404) {
    // A missing bucket is a configuration problem, whatever the operation. The code is only
    // trusted when the server sent one; a HEAD-style 404 without a body is a missing key.
    if (codeOf(error) === 'NoSuchBucket') return failure('config')
    return failure(conditionalWrite ? 'condition' : 'notFound')
  }
  // 501: the server does not implement what was asked (often conditional headers): no retry helps.
  if (status === 501) return failure('config')
  // 409: AWS's answer to a conditional write racing another one; RGW's to some bucket races.
  if (status === 408 || status === 409 || status === 429 || status >= 500) return failure('transient')
  return failure('config')
}

export function configErrorFor(failure: Failure, bucket: string, what: string): StorageConfigError {
  const detail = describeError(failure.error)
  let advice = 'check the bucket, region, endpoint and credentials'
  if (failure.status === 403) {
    advice = `check the credentials and that they allow s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on bucket "${bucket}"`
  } else if (failure.status === 404) {
    advice = `bucket "${bucket}" does not exist: create it, or fix the bucket name`
  } else if (failure.status === 301 || failure.status === 307 || /region/i.test(detail)) {
    advice = `bucket "${bucket}" is in another region or behind another endpoint: set region (and endpoint for S3-compatible stores)`
  } else if (failure.status === 501) {
    advice = 'the server does not implement this S3 feature'
  }
  return new StorageConfigError(`S3 ${what} failed (${detail}): ${advice}`, { cause: failure.error })
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * How long a call keeps retrying an endpoint that this storage has never reached: a refused
 * connection or an unknown host at start-up is a wrong endpoint or a server that is not running,
 * and the user should hear so at once. Once the endpoint has answered, the same errors are an
 * outage (a gateway restarting), ridden out for the whole `retryBudgetMs`.
 */
export const UNREACHED_BUDGET_MS = 2_000
/** A call about to have retried this long says so once on stderr (see `Endpoint.warned`); not one whose budget ends by then. */
export const WARN_AFTER_MS = 2_000

/** What one storage knows about its endpoint, shared by all its calls. */
export class Endpoint {
  /** The endpoint URL as configured; `undefined` for AWS or a client passed in (then read from the error). */
  readonly url: string | undefined
  /** True once any request got an HTTP answer. */
  answered = false
  /** True once the current run of failures was reported on stderr; cleared by the next answer. */
  warned = false

  constructor(url: string | undefined) {
    this.url = url
  }

  /** Any HTTP answer, success or error status: the server is there. */
  heard(): void {
    this.answered = true
    this.warned = false
  }

  /** `http://host:port` for a message: the configured URL, else what the socket error names. */
  describe(error: unknown): string {
    if (this.url !== undefined) return this.url
    const e = error as { hostname?: unknown; address?: unknown; port?: unknown }
    const host =
      typeof e?.hostname === 'string' ? e.hostname : typeof e?.address === 'string' ? e.address : '?'
    return typeof e?.port === 'number' ? `${host}:${e.port}` : host
  }
}

/**
 * Backoff for one storage call. The budget counts from the call's first failure, not its start,
 * so a long multipart upload is not cut short; it bounds how long a server may stay down
 * before the caller hears about it. `now` and `wait` are injectable for tests of long waits.
 */
export class RetryClock {
  #firstFailureAt: number | undefined
  #retries = 0
  /** True while every failure so far was a request that never reached the server. */
  #neverSent = true
  readonly #budgetMs: number
  readonly #what: string
  readonly #endpoint: Endpoint
  readonly #now: () => number
  readonly #wait: (ms: number) => Promise<void>

  constructor(
    budgetMs: number,
    what: string,
    endpoint: Endpoint,
    clock: { now?: () => number; wait?: (ms: number) => Promise<void> } = {},
  ) {
    this.#budgetMs = budgetMs
    this.#what = what
    this.#endpoint = endpoint
    this.#now = clock.now ?? Date.now
    this.#wait = clock.wait ?? sleep
  }

  /** Records a failed request that may have reached the server, without waiting (before settling it). */
  mayHaveLanded(): void {
    this.#neverSent = false
  }

  /**
   * Waits before the next attempt, or throws `StorageUnavailableError` (cause attached) when the
   * budget is spent. `outcome` tells the user whether the failed call may have written; it is
   * replaced by "nothing was sent" when no request of the call reached the server.
   */
  async backoff(failure: Failure, outcome = 'nothing was written'): Promise<void> {
    const { error } = failure
    if (!failure.unreached) this.#neverSent = false
    const now = this.#now()
    this.#firstFailureAt ??= now
    const elapsed = now - this.#firstFailureAt
    const unreachable = this.#neverSent && unreachedCode(error) !== undefined
    const budget =
      unreachable && !this.#endpoint.answered ? Math.min(this.#budgetMs, UNREACHED_BUDGET_MS) : this.#budgetMs
    const remaining = budget - elapsed
    if (remaining <= 0) {
      const attempts = `${this.#retries + 1} attempts in ${elapsed} ms`
      if (unreachable) {
        const code = unreachedCode(error) as string
        const advice = this.#endpoint.answered
          ? 'It answered earlier: raise retryBudgetMs to ride out longer outages'
          : 'Check that the server is running and that the endpoint (and its port) is right'
        throw new StorageUnavailableError(
          `cannot reach the S3 endpoint ${this.#endpoint.describe(error)}: ${UNREACHED[code]} (${code}; ${attempts} at ${this.#what}; no request reached it, nothing was written). ${advice}`,
          { cause: error },
        )
      }
      throw new StorageUnavailableError(
        `S3 ${this.#what} kept failing for ${elapsed} ms (${attempts}; ${outcome}): ${describeError(error)}. Check that the S3 endpoint is reachable, or raise retryBudgetMs`,
        { cause: error },
      )
    }
    // Exponential backoff with full jitter (AWS's advice for SlowDown), capped so a server
    // that comes back is noticed within a few seconds.
    const ceiling = Math.min(3_000, 50 * 2 ** Math.min(this.#retries, 10))
    this.#retries++
    const delay = Math.min(remaining, ceiling / 2 + Math.random() * (ceiling / 2))
    // Said before the wait that takes the call past WARN_AFTER_MS (a wait may jump over it).
    if (budget > WARN_AFTER_MS && elapsed + delay >= WARN_AFTER_MS && !this.#endpoint.warned) {
      this.#endpoint.warned = true
      process.emitWarning(
        `S3 ${this.#what} has been failing for ${(elapsed / 1000).toFixed(1)} s (${describeError(error)}); retrying for up to ${(remaining / 1000).toFixed(1)} s more (retryBudgetMs)`,
        { code: 'WF_S3_RETRYING' },
      )
    }
    await this.#wait(delay)
  }
}
