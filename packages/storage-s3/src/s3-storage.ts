// `S3Storage`: the wf storage contract over one S3 bucket and prefix. Conditional writes map to
// `If-None-Match: *` / `If-Match: <etag>` on single PUTs; every write carries a random token so an
// ambiguous outcome (5xx, 409, timeout, a 412 after a retry) is settled by reading it back.
// Over 400 lines: the five contract calls share one retry loop and its settling of ambiguous
// outcomes; split them out when a second write path (multipart) arrives.

import { Readable } from 'node:stream'
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import {
  ConditionFailedError,
  CorruptRecordError,
  compareKeys,
  InvalidKeyError,
  type ListOptions,
  type ListPage,
  type PutCondition,
  type Storage,
  StorageConfigError,
  StorageUnavailableError,
  type StoredValue,
  validateKey,
  validatePrefix,
} from '@wf/core'
import { decodeObject, encodeHeader, encodeObject, HEADER_BYTES, newToken, readToken } from './envelope.js'
import { buildClient, type ResolvedOptions, resolveOptions, type S3StorageOptions } from './options.js'
import { runProbe } from './probe.js'
import { classify, configErrorFor, Endpoint, type Failure, RetryClock } from './s3-errors.js'
import { decodeListedName, fitsInXml } from './s3-keys.js'

/** Top-level folder (under the prefix) of the startup probe's keys; hidden from `list`, refused as a key. */
export const PROBE_FOLDER = '.wf-s3-probe/'
const DELETE_BATCH = 1000
// Keys that cannot go into a DeleteObjects body are deleted one request each, this many at once.
const SINGLE_DELETES_IN_FLIGHT = 16
const LIST_PAGE = 1000
// Multipart parts: S3's minimum is 5 MiB; 8 MiB × 4 in flight keeps memory bounded and each
// retried part cheap.
const PART_BYTES = 8 * 1024 * 1024
const PART_QUEUE = 4
/**
 * Unconditional values from this size on (blobs) are sent as a sized stream of the header and
 * the value: no copy into one buffer, and no SHA-256 of the body for the signature (a streamed
 * body is signed as UNSIGNED-PAYLOAD, as the SDK's multipart uploads are). Measured on the local
 * RGW, 10 MB: 80 ms and 8 ms of CPU per PUT, against 150-250 ms and 30 ms with one buffer; a
 * multipart upload of 5 MiB parts, 4 at once, took 150-550 ms. 1 MB: 18-26 ms and 3.2-4.4 ms
 * of CPU per PUT, against 23-43 ms and 5-7 ms. Conditional puts (records) keep the signed single
 * buffer, and so does a client passed in (see `#putSingle`).
 */
const STREAM_FROM_BYTES = 256 * 1024

type Attempt<T> = { ok: true; value: T } | { ok: false; failure: Failure }

/** What an indeterminate conditional write turned out to be after reading the key back. */
type Settled = { outcome: 'ours'; version: string } | { outcome: 'lost' } | { outcome: 'retry' }

/**
 * wf storage in an S3 bucket (AWS S3, or any S3-compatible store that enforces conditional PUTs).
 *
 * ```ts
 * import { S3Storage } from '@wf/storage-s3'
 * const storage = new S3Storage({ bucket: 'my-bucket', prefix: 'wf/prod', region: 'eu-west-1' })
 * ```
 */
export class S3Storage implements Storage {
  /** The S3 client in use (built from the options, or the one passed in). */
  readonly client: S3Client
  readonly bucket: string
  /** `""` or the key prefix, ending with `/`. */
  readonly prefix: string
  readonly #options: ResolvedOptions
  readonly #ownsClient: boolean
  readonly #endpoint: Endpoint
  #probe: Promise<void> | undefined
  #closed = false

  constructor(options: S3StorageOptions) {
    this.#options = resolveOptions(options)
    const { client, owned } = buildClient(options)
    this.client = client
    this.#ownsClient = owned
    this.#endpoint = new Endpoint(
      owned && typeof options.endpoint === 'string' ? options.endpoint : undefined,
    )
    this.bucket = this.#options.bucket
    this.prefix = this.#options.prefix
  }

  async get(key: string): Promise<StoredValue | undefined> {
    this.#checkKey(key)
    this.#checkOpen()
    const s3Key = this.#s3Key(key)
    const clock = this.#clock(`GET of "${key}"`)
    for (;;) {
      // Reading the body can fail mid-way too: it belongs to the attempt.
      const result = await this.#attempt(async () => {
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: s3Key }))
        return { etag: out.ETag, bytes: out.Body ? await out.Body.transformToByteArray() : new Uint8Array() }
      })
      if (result.ok) {
        const data = decodeObject(result.value.bytes)
        if (data === undefined) {
          throw new CorruptRecordError(
            key,
            `the S3 object s3://${this.bucket}/${s3Key} was not written by @wf/storage-s3 (its "wf-s3/1" header is missing)`,
          )
        }
        return { data, version: etagOf(result.value.etag, key) }
      }
      const { failure } = result
      if (failure.kind === 'notFound') return undefined
      if (failure.kind !== 'transient') throw configErrorFor(failure, this.bucket, `GET of "${key}"`)
      await clock.backoff(failure)
    }
  }

  async put(key: string, data: Uint8Array, condition?: PutCondition): Promise<{ version: string }> {
    this.#checkKey(key)
    if (!(data instanceof Uint8Array)) throw new TypeError('put() takes the value as a Uint8Array')
    checkCondition(condition)
    const size = data.byteLength + HEADER_BYTES
    if (size > this.#options.maxSinglePutBytes) {
      if (condition !== undefined) {
        throw new StorageConfigError(
          `conditional put of "${key}" is ${data.byteLength} bytes, over the ${this.#options.maxSinglePutBytes}-byte single-PUT limit: S3 enforces conditions only on single PUTs. Raise maxSinglePutBytes (up to 5 GiB), or write the value unconditionally under a unique key and commit a small reference with the condition`,
        )
      }
      this.#checkOpen()
      return this.#putMultipart(key, data)
    }
    this.#checkOpen()
    // Only a conditional write depends on the server enforcing conditions: the probe runs before
    // the first one, so reads (and `wf list`, `wf status`...) never write.
    if (condition !== undefined) await this.#ready()
    return this.#putSingle(this.#s3Key(key), key, data, condition)
  }

  async delete(key: string): Promise<void> {
    this.#checkKey(key)
    this.#checkOpen()
    await this.#deleteRaw(this.#s3Key(key), key)
  }

  async deleteMany(keys: string[]): Promise<void> {
    for (const key of keys) this.#checkKey(key)
    const unique = [...new Set(keys)]
    if (unique.length === 0) return
    this.#checkOpen()
    const batchable = unique.filter(fitsInXml)
    for (let i = 0; i < batchable.length; i += DELETE_BATCH) {
      await this.#deleteBatch(batchable.slice(i, i + DELETE_BATCH))
    }
    const single = unique.filter((key) => !fitsInXml(key))
    let next = 0
    await Promise.all(
      Array.from({ length: Math.min(SINGLE_DELETES_IN_FLIGHT, single.length) }, async () => {
        for (let key = single[next++]; key !== undefined; key = single[next++]) {
          await this.#deleteRaw(this.#s3Key(key), key)
        }
      }),
    )
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    validatePrefix(prefix)
    const { after, limit } = options
    if (after !== undefined && typeof after !== 'string')
      throw new TypeError('list() "after" must be a string')
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
      throw new TypeError('list() "limit" must be a whole number, 0 or more')
    }
    this.#checkOpen()
    const wanted = limit ?? Number.POSITIVE_INFINITY
    const keys: string[] = []
    if (wanted === 0) return { keys }
    // Object names are the keys below this.prefix, and S3 orders them by UTF-8 bytes like the
    // contract does, so S3's Prefix and StartAfter mean exactly what `prefix` and `after` mean.
    const fullPrefix = this.prefix + prefix
    // An `after` before the prefix excludes nothing; compared in the contract's order, not with
    // JavaScript's `<`, which disagrees with it around U+E000–U+FFFF.
    let startAfter = after !== undefined && compareKeys(after, prefix) >= 0 ? this.prefix + after : undefined
    let continuation: string | undefined
    let truncated = true
    // Without a limit, return every key: callers that forget `next` must not silently miss keys.
    while (keys.length < wanted && truncated) {
      const page = await this.#listPage(
        fullPrefix,
        startAfter,
        continuation,
        Math.min(LIST_PAGE, wanted - keys.length),
      )
      truncated = page.IsTruncated === true && page.NextContinuationToken !== undefined
      // A server that hands back the token it was given would keep this loop going for ever.
      if (truncated && continuation !== undefined && page.NextContinuationToken === continuation) {
        throw new StorageUnavailableError(
          `S3 LIST of "${fullPrefix}" in bucket "${this.bucket}" does not advance: the server returned the continuation token it was sent. Check the S3-compatible server`,
        )
      }
      continuation = page.NextContinuationToken
      startAfter = undefined
      for (const entry of page.Contents ?? []) {
        if (entry.Key === undefined) continue
        const s3Key = decodeListedName(entry.Key, page.EncodingType)
        if (!s3Key.startsWith(fullPrefix)) continue
        // Ordered and bounded by S3 (StartAfter), so no filtering by `after` here.
        const key = s3Key.slice(this.prefix.length)
        if (key.startsWith(PROBE_FOLDER)) continue
        keys.push(key)
      }
    }
    const last = keys[keys.length - 1]
    return truncated && last !== undefined ? { keys, next: last } : { keys }
  }

  /** Destroys the S3 client if this storage built it; a client passed in stays open. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#ownsClient) this.client.destroy()
  }

  /** Runs the conditional-write probe now (it otherwise runs before the first conditional write). Resolves once it passed. */
  async probe(): Promise<void> {
    await this.#ready()
  }

  // Keys are stored exactly as given: a prefix of at most 124 bytes (checked in options) and a key
  // of at most MAX_KEY_BYTES (900) always fit S3's 1 024-byte object names.
  #s3Key(key: string): string {
    return this.prefix + key
  }

  #checkKey(key: string): void {
    validateKey(key)
    if (key.startsWith(PROBE_FOLDER)) {
      throw new InvalidKeyError(key, `"${PROBE_FOLDER}" is reserved for the S3 storage's startup probe`)
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new StorageConfigError('this S3 storage was closed')
  }

  /** A retry clock for one call, sharing what this storage knows of its endpoint. */
  #clock(what: string): RetryClock {
    return new RetryClock(this.#options.retryBudgetMs, what, this.#endpoint)
  }

  /** Runs one S3 request and reads its failure, if any, by HTTP status. */
  async #attempt<T>(request: () => Promise<T>, conditionalWrite = false): Promise<Attempt<T>> {
    try {
      const value = await request()
      this.#endpoint.heard()
      return { ok: true, value }
    } catch (error) {
      const failure = classify(error, conditionalWrite)
      if (failure.status !== undefined) this.#endpoint.heard()
      return { ok: false, failure }
    }
  }

  // The probe runs once per storage, before its first conditional write; a probe that failed
  // because the server was down is forgotten, so the next call tries again, while a server that
  // ignores conditions stays refused.
  #ready(): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageConfigError('this S3 storage was closed'))
    if (!this.#options.probe) return Promise.resolve()
    this.#probe ??= runProbe({
      bucket: this.bucket,
      key: `${this.prefix}${PROBE_FOLDER}${newToken()}`,
      put: (s3Key, body, condition) => this.#putSingle(s3Key, s3Key, body, condition),
      remove: (s3Key) => this.#deleteRaw(s3Key, s3Key),
    }).catch((error: unknown) => {
      if (!(error instanceof StorageConfigError)) this.#probe = undefined
      throw error
    })
    return this.#probe
  }

  /**
   * One single-part PUT, retried until it succeeds, its condition fails, or the retry budget runs
   * out. Each attempt carries a fresh token; `tokens` remembers them all, because an earlier
   * attempt that timed out may still land after a later one was sent.
   */
  async #putSingle(
    s3Key: string,
    key: string,
    data: Uint8Array,
    condition?: PutCondition,
  ): Promise<{ version: string }> {
    const clock = this.#clock(`PUT of "${key}"`)
    const tokens = new Set<string>()
    const header =
      condition === undefined
        ? {}
        : 'ifAbsent' in condition
          ? { IfNoneMatch: '*' }
          : { IfMatch: condition.ifVersion }
    let uncertain = false
    for (;;) {
      const token = newToken()
      tokens.add(token)
      // Only with a client of ours: a stream cannot be sent again by the SDK's own retries, which
      // a client passed in may have on.
      const streamed = this.#ownsClient && condition === undefined && data.byteLength >= STREAM_FROM_BYTES
      const result = await this.#attempt(
        () =>
          this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: s3Key,
              // A new stream per attempt: the SDK itself makes one attempt only (maxAttempts 1).
              ...(streamed
                ? {
                    Body: Readable.from([encodeHeader(token), data], { objectMode: false }),
                    ContentLength: HEADER_BYTES + data.byteLength,
                  }
                : { Body: encodeObject(token, data) }),
              ContentType: 'application/octet-stream',
              ...header,
            }),
          ),
        condition !== undefined,
      )
      if (result.ok) return { version: etagOf(result.value.ETag, key) }
      const { failure } = result
      if (failure.kind === 'config' || (failure.kind === 'notFound' && condition === undefined)) {
        throw configErrorFor(failure, this.bucket, `PUT of "${key}"`)
      }
      if (condition === undefined) {
        // An unconditional PUT can simply be sent again: the last one wins either way.
        await clock.backoff(failure, 'the value may or may not be written')
        continue
      }
      if (failure.unreached) {
        // Never sent (connection refused, unknown host): nothing to settle, send it again.
        await clock.backoff(
          failure,
          uncertain ? 'the conditional write may or may not have happened' : undefined,
        )
        continue
      }
      // A plain 412/404 on a first try means the condition did not hold. After an ambiguous
      // attempt, or when the SDK itself retried, it may be our own earlier write that made it fail.
      if (failure.kind === 'condition' && !uncertain && failure.attempts <= 1)
        throw new ConditionFailedError(key)
      uncertain = true
      clock.mayHaveLanded()
      const settled = await this.#settle(s3Key, key, condition, tokens, clock)
      if (settled.outcome === 'ours') return { version: settled.version }
      if (settled.outcome === 'lost') throw new ConditionFailedError(key)
      // Sent again, after a wait and within the budget also when the failure was a 412/404: a
      // server that keeps refusing a condition the key satisfies must not keep this loop going.
      await clock.backoff(failure, 'the conditional write may or may not have happened')
    }
  }

  /**
   * Decides an indeterminate conditional write by reading the key's header (a ranged GET: the
   * ETag and the token come from the same object version). Our token: it was written. Another
   * token: someone else won (unless, for compare-and-swap, the expected version is still there,
   * so nothing was written). Absent: nothing was written.
   */
  async #settle(
    s3Key: string,
    key: string,
    condition: PutCondition,
    tokens: Set<string>,
    clock: RetryClock,
  ): Promise<Settled> {
    for (;;) {
      const result = await this.#attempt(async () => {
        const out = await this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key: s3Key, Range: `bytes=0-${HEADER_BYTES - 1}` }),
        )
        return { etag: out.ETag, head: out.Body ? await out.Body.transformToByteArray() : new Uint8Array() }
      })
      if (result.ok) {
        const version = etagOf(result.value.etag, key)
        const token = readToken(result.value.head)
        if (token !== undefined && tokens.has(token)) return { outcome: 'ours', version }
        if ('ifVersion' in condition && version === condition.ifVersion) return { outcome: 'retry' }
        return { outcome: 'lost' }
      }
      const { failure } = result
      if (failure.kind === 'notFound')
        return 'ifAbsent' in condition ? { outcome: 'retry' } : { outcome: 'lost' }
      if (failure.kind !== 'transient') throw configErrorFor(failure, this.bucket, `GET of "${key}"`)
      await clock.backoff(failure, 'the conditional write may or may not have happened')
    }
  }

  /** An unconditional value too big for one PUT. The whole upload is retried on failure. */
  async #putMultipart(key: string, data: Uint8Array): Promise<{ version: string }> {
    const s3Key = this.#s3Key(key)
    const clock = this.#clock(`multipart upload of "${key}"`)
    for (;;) {
      const token = newToken()
      const upload = new Upload({
        client: this.client,
        params: {
          Bucket: this.bucket,
          Key: s3Key,
          Body: Readable.from([encodeHeader(token), data], { objectMode: false }),
          ContentType: 'application/octet-stream',
        },
        partSize: PART_BYTES,
        queueSize: PART_QUEUE,
        leavePartsOnError: false,
      })
      const result = await this.#attempt(() => upload.done())
      if (result.ok) {
        const etag = result.value.ETag === undefined ? '' : stripQuotes(result.value.ETag)
        if (etag !== '') return { version: etag }
        // RGW answers CompleteMultipartUpload without an ETag: read it back, and make sure the
        // object there is still ours.
        const settled = await this.#settle(s3Key, key, { ifAbsent: true }, new Set([token]), clock)
        // Overwritten already: hand out a version that no future compare-and-swap can match.
        return { version: settled.outcome === 'ours' ? settled.version : `overwritten-${token}` }
      }
      const { failure } = result
      if (failure.kind !== 'transient')
        throw configErrorFor(failure, this.bucket, `multipart upload of "${key}"`)
      await clock.backoff(failure, 'the value may or may not be written')
    }
  }

  async #deleteRaw(s3Key: string, key: string): Promise<void> {
    const clock = this.#clock(`DELETE of "${key}"`)
    for (;;) {
      const result = await this.#attempt(() =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: s3Key })),
      )
      if (result.ok) return
      const { failure } = result
      if (failure.kind === 'notFound') return
      if (failure.kind !== 'transient') throw configErrorFor(failure, this.bucket, `DELETE of "${key}"`)
      // Deleting twice is harmless, so a retry needs no settling.
      await clock.backoff(failure, 'the key may or may not be deleted')
    }
  }

  async #deleteBatch(keys: string[]): Promise<void> {
    const clock = this.#clock(`DeleteObjects of ${keys.length} keys`)
    let pending = keys
    for (;;) {
      const result = await this.#attempt(() =>
        this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: pending.map((key) => ({ Key: this.#s3Key(key) })), Quiet: true },
          }),
        ),
      )
      let failure: Failure
      if (result.ok) {
        const errors = result.value.Errors ?? []
        // Per-key failures come back inside a 200: retry just those keys.
        const failed = new Set(errors.map((e) => e.Key))
        pending = pending.filter((key) => failed.has(this.#s3Key(key)))
        if (pending.length === 0) return
        const first = errors[0]
        failure = {
          kind: 'transient',
          status: undefined,
          unreached: false,
          attempts: 1,
          error: new Error(
            `DeleteObjects failed for ${errors.length} keys: ${first?.Code} ${first?.Message}`,
          ),
        }
      } else {
        failure = result.failure
      }
      if (failure.kind === 'notFound') return
      if (failure.kind !== 'transient') throw configErrorFor(failure, this.bucket, 'DeleteObjects')
      await clock.backoff(failure, 'some of the keys may be deleted')
    }
  }

  async #listPage(
    prefix: string,
    startAfter: string | undefined,
    continuation: string | undefined,
    maxKeys: number,
  ): Promise<ListObjectsV2CommandOutput> {
    const clock = this.#clock(`LIST of "${prefix}"`)
    for (;;) {
      const result = await this.#attempt(() =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            MaxKeys: maxKeys,
            // Names come back URL-encoded: XML 1.0 cannot carry U+FFFE/U+FFFF, which keys may hold.
            EncodingType: 'url',
            ...(startAfter === undefined ? {} : { StartAfter: startAfter }),
            ...(continuation === undefined ? {} : { ContinuationToken: continuation }),
          }),
        ),
      )
      if (result.ok) return result.value
      const { failure } = result
      if (failure.kind !== 'transient') throw configErrorFor(failure, this.bucket, `LIST of "${prefix}"`)
      await clock.backoff(failure)
    }
  }
}

/** Creates an `S3Storage`. Nothing is sent until first use; the conditional-write probe runs before the first conditional write. */
export function createS3Storage(options: S3StorageOptions): S3Storage {
  return new S3Storage(options)
}

function checkCondition(condition: PutCondition | undefined): void {
  if (condition === undefined) return
  if (typeof condition === 'object' && condition !== null) {
    if ('ifAbsent' in condition && condition.ifAbsent === true) return
    if ('ifVersion' in condition && typeof condition.ifVersion === 'string' && condition.ifVersion !== '')
      return
  }
  throw new TypeError(
    'put() condition must be { ifAbsent: true } or { ifVersion: "<version from get or put>" }',
  )
}

function stripQuotes(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '')
}

// Versions are ETags without quotes: RGW answers 412 to a quoted If-Match.
function etagOf(etag: string | undefined, key: string): string {
  const version = etag === undefined ? '' : stripQuotes(etag)
  if (version === '')
    throw new CorruptRecordError(key, 'the S3 server returned no ETag, which wf uses as the version')
  return version
}
