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

export function classify(error: unknown, conditionalWrite = false): Failure {
  const status = httpStatusOf(error)
  const rawAttempts = shape(error).$metadata?.attempts
  const attempts = typeof rawAttempts === 'number' ? rawAttempts : 1
  const failure = (kind: FailureKind): Failure => ({ kind, status, attempts, error })
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
 * Backoff for one storage call. The budget counts from the call's first failure, not its start,
 * so a long multipart upload is not cut short; it bounds how long a server may stay down
 * before the caller hears about it.
 */
export class RetryClock {
  #firstFailureAt: number | undefined
  #retries = 0
  readonly #budgetMs: number
  readonly #what: string

  constructor(budgetMs: number, what: string) {
    this.#budgetMs = budgetMs
    this.#what = what
  }

  /**
   * Waits before the next attempt, or throws `StorageUnavailableError` (cause attached) when the
   * budget is spent. `outcome` tells the user whether the failed call may have written.
   */
  async backoff(error: unknown, outcome = 'nothing was written'): Promise<void> {
    const now = Date.now()
    this.#firstFailureAt ??= now
    const elapsed = now - this.#firstFailureAt
    const remaining = this.#budgetMs - elapsed
    if (remaining <= 0) {
      throw new StorageUnavailableError(
        `S3 ${this.#what} kept failing for ${elapsed} ms (${this.#retries + 1} attempts; ${outcome}): ${describeError(error)}. Check that the S3 endpoint is reachable, or raise retryBudgetMs`,
        { cause: error },
      )
    }
    // Exponential backoff with full jitter (AWS's advice for SlowDown), capped so a server
    // that comes back is noticed within a few seconds.
    const ceiling = Math.min(3_000, 50 * 2 ** Math.min(this.#retries, 10))
    this.#retries++
    await sleep(Math.min(remaining, ceiling / 2 + Math.random() * (ceiling / 2)))
  }
}
