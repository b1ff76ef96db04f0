// The options of `S3Storage`: what a user passes, how each is checked (a `StorageConfigError` that
// names the option and says what to do), and how the S3 client is built when none is given.

import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { MAX_KEY_BYTES, StorageConfigError, validateKey } from '@wf/core'

/** Options of `createS3Storage` / `new S3Storage`. */
export interface S3StorageOptions {
  /** The bucket; it must exist. */
  bucket: string
  /** Folder inside the bucket for every key, e.g. `"wf/prod"` (a trailing `/` is added). Default: the bucket root. */
  prefix?: string
  /**
   * A ready S3 client. When given, `region`, `endpoint`, `forcePathStyle`, `credentials` and
   * `socketTimeoutMs` must not be: configure the client instead. Its own retries stay on; this
   * package still settles their ambiguous outcomes. `close()` leaves it open.
   */
  client?: S3Client
  /** AWS region. Default: the SDK's own resolution (`AWS_REGION`, profile), or `us-east-1` with a custom `endpoint`. */
  region?: string
  /** Endpoint of an S3-compatible store, e.g. `http://127.0.0.1:7480`. Default: AWS S3. */
  endpoint?: string
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible stores need. Default: `false`, or `true` with a custom `endpoint`. */
  forcePathStyle?: boolean
  /** Credentials. Default: the SDK's credential chain (environment, profile, SSO, instance or task role). */
  credentials?: S3ClientConfig['credentials']
  /**
   * Check on first use that the server enforces `If-None-Match` and `If-Match` on PUT, and refuse
   * it with a `StorageConfigError` otherwise. Costs five small requests once. Default: `true`.
   */
  probe?: boolean
  /** How long a call keeps retrying a failing server (from its first failure) before rejecting with `StorageUnavailableError`. Default: 20 000 ms. */
  retryBudgetMs?: number
  /** A request whose socket stays silent this long fails (and is retried), for clients built here. Default: 15 000 ms. */
  socketTimeoutMs?: number
  /**
   * Largest value written with one PUT. Larger unconditional values use a multipart upload;
   * larger conditional ones are refused, because S3 only enforces conditions on single PUTs.
   * Default: 16 MiB. At most 5 GiB (S3's single-PUT limit).
   */
  maxSinglePutBytes?: number
}

/** The options after defaults, checked. */
export interface ResolvedOptions {
  bucket: string
  /** `""` or a prefix that ends with `/`. */
  prefix: string
  probe: boolean
  retryBudgetMs: number
  maxSinglePutBytes: number
}

export const DEFAULT_MAX_SINGLE_PUT_BYTES = 16 * 1024 * 1024
const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3
// S3 keys are at most 1024 UTF-8 bytes; core keys are at most MAX_KEY_BYTES of them.
const MAX_PREFIX_BYTES = 1024 - MAX_KEY_BYTES

const fail = (message: string) => new StorageConfigError(`S3 storage: ${message}`)

export function resolveOptions(options: S3StorageOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw fail('pass an options object with a bucket')
  const { bucket } = options
  if (typeof bucket !== 'string' || bucket === '') {
    throw fail('the "bucket" option is required, e.g. createS3Storage({ bucket: "my-bucket" })')
  }
  // Lenient on purpose: S3-compatible stores accept names AWS would not (uppercase, underscores).
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{2,254}$/.test(bucket)) {
    throw fail(
      `"${bucket}" is not a bucket name: use letters, digits, ".", "-" (3 to 63 characters on AWS); put folders in "prefix"`,
    )
  }
  return {
    bucket,
    prefix: normalizePrefix(options.prefix),
    probe: optionalBoolean(options.probe, 'probe') ?? true,
    retryBudgetMs: nonNegativeInteger(options.retryBudgetMs, 'retryBudgetMs') ?? 20_000,
    maxSinglePutBytes: checkMaxSinglePut(options.maxSinglePutBytes),
  }
}

function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '' || prefix === '/') return ''
  if (typeof prefix !== 'string') throw fail('"prefix" must be a string such as "wf/prod"')
  const trimmed = prefix.replace(/^\/+/, '').replace(/\/+$/, '')
  if (trimmed === '') return ''
  // The prefix becomes part of every key, so it follows core's key rules.
  try {
    validateKey(trimmed)
  } catch (error) {
    const reason =
      error instanceof Error ? error.message.replace(/^invalid storage key [^:]*: /, '') : String(error)
    throw fail(
      `prefix ${JSON.stringify(prefix)} is not a valid path (${reason}): use a plain path such as "wf/prod"`,
    )
  }
  const normalized = `${trimmed}/`
  if (Buffer.byteLength(normalized, 'utf8') > MAX_PREFIX_BYTES) {
    throw fail(
      `prefix "${prefix}" is longer than ${MAX_PREFIX_BYTES} bytes: S3 keys are at most 1024 bytes and wf keys take up to ${MAX_KEY_BYTES}`,
    )
  }
  return normalized
}

function optionalBoolean(value: unknown, name: string): boolean | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'boolean') throw fail(`"${name}" must be true or false`)
  return value
}

function nonNegativeInteger(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw fail(`"${name}" must be a whole number of milliseconds (0 or more), got ${String(value)}`)
  }
  return value
}

function checkMaxSinglePut(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_SINGLE_PUT_BYTES
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_SINGLE_PUT_BYTES) {
    throw fail(`"maxSinglePutBytes" must be a whole number of bytes from 1 to 5 GiB, got ${String(value)}`)
  }
  return value
}

/** The client to use, and whether this package owns it (and so destroys it on `close()`). */
export function buildClient(options: S3StorageOptions): { client: S3Client; owned: boolean } {
  const clientSettings = ['region', 'endpoint', 'forcePathStyle', 'credentials', 'socketTimeoutMs'] as const
  if (options.client !== undefined) {
    // Not only `instanceof`: a second copy of the SDK in node_modules makes another S3Client class.
    if (typeof (options.client as { send?: unknown }).send !== 'function') {
      throw fail('"client" must be an S3Client from @aws-sdk/client-s3')
    }
    const clashing = clientSettings.filter((name) => options[name] !== undefined)
    if (clashing.length > 0) {
      throw fail(
        `pass either "client" or client settings, not both (${clashing.join(', ')}): configure the S3Client you pass instead`,
      )
    }
    return { client: options.client, owned: false }
  }
  const { region, endpoint } = options
  if (region !== undefined && (typeof region !== 'string' || !/^[a-z0-9-]+$/i.test(region))) {
    throw fail(`"region" must be a region name such as "us-east-1", got ${JSON.stringify(region)}`)
  }
  if (endpoint !== undefined) checkEndpoint(endpoint)
  const forcePathStyle = optionalBoolean(options.forcePathStyle, 'forcePathStyle')
  const socketTimeout = nonNegativeInteger(options.socketTimeoutMs, 'socketTimeoutMs') ?? 15_000
  const config: S3ClientConfig = {
    // Only single Uint8Array bodies are sent, and RGW answers 411 to streamed bodies with the
    // SDK's default checksums: checksum only where S3 demands one.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Retries happen in S3Storage, where a conditional write's ambiguous outcome can be settled
    // and the total wait bounded by retryBudgetMs.
    maxAttempts: 1,
    // An idle timeout, not a total one: a large upload may take long, a silent server may not.
    requestHandler: { connectionTimeout: Math.min(socketTimeout, 5_000), socketTimeout },
  }
  // S3-compatible stores rarely care about the region but the signer needs one.
  if (region !== undefined) config.region = region
  else if (endpoint !== undefined) config.region = 'us-east-1'
  if (endpoint !== undefined) config.endpoint = endpoint
  if (forcePathStyle !== undefined) config.forcePathStyle = forcePathStyle
  else if (endpoint !== undefined) config.forcePathStyle = true
  if (options.credentials !== undefined) config.credentials = options.credentials
  return { client: new S3Client(config), owned: true }
}

export function checkEndpoint(endpoint: unknown): void {
  let url: URL | undefined
  try {
    if (typeof endpoint === 'string') url = new URL(endpoint)
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw fail(
      `"endpoint" must be an http:// or https:// URL such as http://127.0.0.1:7480, got ${String(endpoint)}`,
    )
  }
}
