// `s3://bucket/prefix?region=…&endpoint=…` URIs: what core's `init()` and `WF_STORAGE` hand to this
// package. Credentials never go in the URI; they come from the SDK's credential chain.

import { StorageConfigError } from '@wf/core'
import type { S3StorageOptions } from './options.js'
import { S3Storage } from './s3-storage.js'

const EXAMPLE = 's3://my-bucket/wf/prod?region=eu-west-1'
const PARAMS = ['region', 'endpoint', 'forcePathStyle', 'probe', 'retryBudgetMs', 'socketTimeoutMs'] as const

const fail = (uri: string, problem: string) =>
  new StorageConfigError(`invalid S3 storage URI "${redact(uri)}": ${problem} (expected e.g. ${EXAMPLE})`)

// A URI may have been written with credentials in it; never echo them back.
function redact(uri: string): string {
  return uri.replace(/^(s3:\/\/)[^/@]*@/i, '$1***@')
}

/**
 * Parses an `s3://bucket/optional/prefix?query` URI into `S3StorageOptions`.
 * Query parameters: `region`, `endpoint` (an http(s) URL of an S3-compatible store),
 * `forcePathStyle` and `probe` (`true`/`false`), `retryBudgetMs`, `socketTimeoutMs`.
 */
export function parseS3Uri(uri: string): S3StorageOptions {
  if (typeof uri !== 'string')
    throw new StorageConfigError(`an S3 storage URI must be a string like ${EXAMPLE}`)
  if (!/^s3:\/\//i.test(uri)) throw fail(uri, 'it must start with s3://')
  let url: URL
  try {
    url = new URL(uri)
  } catch (error) {
    throw fail(uri, `it is not a valid URL (${error instanceof Error ? error.message : String(error)})`)
  }
  if (url.username !== '' || url.password !== '') {
    throw fail(
      uri,
      'credentials do not belong in the URI: set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or pass credentials to createS3Storage',
    )
  }
  if (url.port !== '') throw fail(uri, 'a port belongs in the endpoint parameter, not after the bucket name')
  if (url.hash !== '') throw fail(uri, 'it must not have a #fragment')
  const bucket = url.hostname
  if (bucket === '') throw fail(uri, 'the bucket name is missing')
  // The path is read from the raw text: URL would resolve "a/../b" to "b" and hide the mistake.
  const beforeQuery = uri.slice('s3://'.length).split(/[?#]/, 1)[0] ?? ''
  const slash = beforeQuery.indexOf('/')
  let prefix: string
  try {
    prefix = decodeURIComponent(slash === -1 ? '' : beforeQuery.slice(slash))
  } catch {
    throw fail(uri, 'the prefix has a broken %-escape')
  }
  const options: S3StorageOptions = { bucket, prefix }
  for (const [name, value] of url.searchParams) {
    switch (name) {
      case 'region':
        options.region = value
        break
      case 'endpoint':
        options.endpoint = value
        break
      case 'forcePathStyle':
      case 'probe':
        options[name] = parseBoolean(uri, name, value)
        break
      case 'retryBudgetMs':
      case 'socketTimeoutMs':
        options[name] = parseMs(uri, name, value)
        break
      default:
        throw fail(uri, `unknown parameter "${name}" (known: ${PARAMS.join(', ')})`)
    }
  }
  return options
}

function parseBoolean(uri: string, name: string, value: string): boolean {
  if (value === 'true' || value === '1' || value === '') return true
  if (value === 'false' || value === '0') return false
  throw fail(uri, `${name} must be true or false, got "${value}"`)
}

function parseMs(uri: string, name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw fail(uri, `${name} must be a whole number of milliseconds, got "${value}"`)
  return Number(value)
}

/**
 * Opens the S3 storage a URI names; core's `init()` calls this for `s3://` URIs and `WF_STORAGE`.
 * Option errors (a bad bucket, region or endpoint) reject with `StorageConfigError` at once; the
 * conditional-write probe runs on first use.
 *
 * ```ts
 * const storage = await fromUri('s3://my-bucket/wf?endpoint=http://127.0.0.1:7480')
 * ```
 */
export async function fromUri(uri: string): Promise<S3Storage> {
  const options = parseS3Uri(uri)
  try {
    return new S3Storage(options)
  } catch (error) {
    if (error instanceof StorageConfigError) {
      throw new StorageConfigError(`invalid S3 storage URI "${redact(uri)}": ${error.message}`, {
        cause: error,
      })
    }
    throw error
  }
}
