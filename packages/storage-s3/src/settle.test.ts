// Indeterminate writes: a real gateway cannot fail on demand, so these tests wrap a real client
// and fail chosen PUTs before or after they reach the server, then check that S3Storage settles
// each outcome by reading its token back instead of guessing.

import type { S3Client } from '@aws-sdk/client-s3'
import { ConditionFailedError, StorageUnavailableError } from '@wf/core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  describeS3,
  freshBucket,
  httpError,
  inject,
  networkError,
  testClient,
  uniqueName,
} from './__tests__/s3-env.js'
import { S3Storage } from './s3-storage.js'

const utf8 = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b))

describeS3('S3Storage settles indeterminate writes by their token', () => {
  let bucket: string
  let remove: () => Promise<void>
  let client: S3Client
  let storage: S3Storage
  // A second, unwrapped storage on the same prefix: the "other runner".
  let other: S3Storage

  beforeAll(async () => {
    ;({ bucket, remove } = await freshBucket('settle'))
  })
  afterAll(async () => {
    await remove()
  })
  beforeEach(async () => {
    client = testClient()
    const prefix = uniqueName('p')
    storage = new S3Storage({ bucket, prefix, client, probe: false, retryBudgetMs: 3_000 })
    other = new S3Storage({ bucket, prefix, client: testClient(), probe: false })
    return async () => {
      client.destroy()
      other.client.destroy()
    }
  })

  const firstPutFails = (
    kind: 'failAfter' | 'failBefore',
    error: () => Error,
    before?: () => Promise<void>,
  ) =>
    inject(client, 'PutObjectCommand', (_input, attempt) =>
      attempt === 1 ? { kind, error: error(), ...(before ? { before } : {}) } : { kind: 'pass' },
    )

  describe('create-if-absent', () => {
    it('reports success with the stored version when a 500 came back after the write happened', async () => {
      const puts = firstPutFails('failAfter', () => httpError(500))
      const { version } = await storage.put('k', utf8('mine'), { ifAbsent: true })
      const stored = await other.get('k')
      expect(text(stored?.data)).toBe('mine')
      expect(stored?.version).toBe(version)
      // Settled by reading, not by writing again.
      expect(puts.calls).toBe(1)
    })

    it('reports success when a 409 came back after the write happened', async () => {
      firstPutFails('failAfter', () => httpError(409, 1, 'ConditionalRequestConflict'))
      const { version } = await storage.put('k', utf8('mine'), { ifAbsent: true })
      expect((await other.get('k'))?.version).toBe(version)
    })

    it('treats a 412 on a request the SDK retried as indeterminate: its own first attempt may have won', async () => {
      firstPutFails('failAfter', () => httpError(412, 2, 'PreconditionFailed'))
      const { version } = await storage.put('k', utf8('mine'), { ifAbsent: true })
      expect((await other.get('k'))?.version).toBe(version)
    })

    it('rejects with ConditionFailedError when the key turns out to hold another writer’s value', async () => {
      firstPutFails(
        'failBefore',
        () => httpError(503, 1, 'SlowDown'),
        async () => {
          await other.put('k', utf8('theirs'), { ifAbsent: true })
        },
      )
      await expect(storage.put('k', utf8('mine'), { ifAbsent: true })).rejects.toBeInstanceOf(
        ConditionFailedError,
      )
      expect(text((await other.get('k'))?.data)).toBe('theirs')
    })

    it('gives up with StorageUnavailableError, within the retry budget, on a server that keeps answering 412 for a key that is absent', async () => {
      // Attempt 1 is lost on the way (indeterminate); every later attempt gets a 412, yet the key
      // stays absent, so each settle says "send it again".
      const puts = inject(client, 'PutObjectCommand', (_input, attempt) =>
        attempt === 1
          ? { kind: 'failBefore', error: networkError() }
          : { kind: 'failBefore', error: httpError(412, 1, 'PreconditionFailed') },
      )
      const started = Date.now()
      const error = await storage.put('k', utf8('mine'), { ifAbsent: true }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(StorageUnavailableError)
      expect((error as Error).message).toMatch(/may or may not have happened/)
      expect(Date.now() - started).toBeLessThan(10_000)
      // Backoff, not a busy loop.
      expect(puts.calls).toBeLessThan(40)
      expect(await other.get('k')).toBeUndefined()
    }, 20_000)

    it('sends the write again when the key is still absent after a network error', async () => {
      const puts = firstPutFails('failBefore', networkError)
      const { version } = await storage.put('k', utf8('mine'), { ifAbsent: true })
      expect(puts.calls).toBe(2)
      const stored = await other.get('k')
      expect(text(stored?.data)).toBe('mine')
      expect(stored?.version).toBe(version)
    })

    it('still recognises its own earlier attempt when a retry then loses with a plain 412', async () => {
      // Attempt 1 lands but its answer is lost; the settle read is made to see nothing yet (as if
      // attempt 1 were still in flight), so attempt 2 is sent and gets 412 from attempt 1's write.
      inject(client, 'PutObjectCommand', (_input, attempt) =>
        attempt === 1 ? { kind: 'failAfter', error: networkError() } : { kind: 'pass' },
      )
      inject(client, 'GetObjectCommand', (input, attempt) =>
        attempt === 1 && typeof input.Range === 'string'
          ? { kind: 'failBefore', error: httpError(404, 1, 'NoSuchKey') }
          : { kind: 'pass' },
      )
      const { version } = await storage.put('k', utf8('mine'), { ifAbsent: true })
      expect((await other.get('k'))?.version).toBe(version)
    })

    it('a plain 412 on a first, unretried attempt is a lost race, settled without reading', async () => {
      await other.put('k', utf8('theirs'))
      const gets = inject(client, 'GetObjectCommand', () => ({ kind: 'pass' }))
      await expect(storage.put('k', utf8('mine'), { ifAbsent: true })).rejects.toBeInstanceOf(
        ConditionFailedError,
      )
      expect(gets.calls).toBe(0)
    })
  })

  describe('compare-and-swap', () => {
    it('reports success with the new version when a 500 came back after the swap happened', async () => {
      const { version: v1 } = await other.put('k', utf8('one'))
      firstPutFails('failAfter', () => httpError(500))
      const { version: v2 } = await storage.put('k', utf8('two'), { ifVersion: v1 })
      expect(v2).not.toBe(v1)
      const stored = await other.get('k')
      expect(text(stored?.data)).toBe('two')
      expect(stored?.version).toBe(v2)
      await expect(other.put('k', utf8('stale'), { ifVersion: v1 })).rejects.toBeInstanceOf(
        ConditionFailedError,
      )
    })

    it('retries when the expected version is still there after a timeout (nothing was written)', async () => {
      const { version: v1 } = await other.put('k', utf8('one'))
      const timeout = () => Object.assign(new Error('Request timed out (injected)'), { name: 'TimeoutError' })
      const puts = firstPutFails('failBefore', timeout)
      const { version: v2 } = await storage.put('k', utf8('two'), { ifVersion: v1 })
      expect(puts.calls).toBe(2)
      expect((await other.get('k'))?.version).toBe(v2)
    })

    it('rejects with ConditionFailedError when another writer swapped first', async () => {
      const { version: v1 } = await other.put('k', utf8('one'))
      firstPutFails(
        'failBefore',
        () => httpError(500),
        async () => {
          await other.put('k', utf8('theirs'), { ifVersion: v1 })
        },
      )
      await expect(storage.put('k', utf8('two'), { ifVersion: v1 })).rejects.toBeInstanceOf(
        ConditionFailedError,
      )
      expect(text((await other.get('k'))?.data)).toBe('theirs')
    })

    it('rejects with ConditionFailedError when the key was deleted meanwhile', async () => {
      const { version: v1 } = await other.put('k', utf8('one'))
      firstPutFails(
        'failBefore',
        () => httpError(502),
        async () => {
          await other.delete('k')
        },
      )
      await expect(storage.put('k', utf8('two'), { ifVersion: v1 })).rejects.toBeInstanceOf(
        ConditionFailedError,
      )
      expect(await other.get('k')).toBeUndefined()
    })
  })

  describe('retries and their budget', () => {
    it('retries an unconditional put through throttling (503 SlowDown) with backoff', async () => {
      const puts = inject(client, 'PutObjectCommand', (_input, attempt) =>
        attempt <= 3 ? { kind: 'failBefore', error: httpError(503, 1, 'SlowDown') } : { kind: 'pass' },
      )
      const { version } = await storage.put('k', utf8('v'))
      expect(puts.calls).toBe(4)
      expect((await other.get('k'))?.version).toBe(version)
    })

    it('retries reads and lists through transient failures', async () => {
      await other.put('a/1', utf8('x'))
      inject(client, 'GetObjectCommand', (_i, attempt) =>
        attempt === 1 ? { kind: 'failBefore', error: networkError() } : { kind: 'pass' },
      )
      inject(client, 'ListObjectsV2Command', (_i, attempt) =>
        attempt === 1 ? { kind: 'failBefore', error: httpError(500) } : { kind: 'pass' },
      )
      expect(text((await storage.get('a/1'))?.data)).toBe('x')
      expect(await storage.list('a/')).toEqual({ keys: ['a/1'] })
    })

    it('gives up with StorageUnavailableError (cause attached) when 5xx lasts past retryBudgetMs', async () => {
      const budgeted = new S3Storage({
        bucket,
        prefix: uniqueName('p'),
        client,
        probe: false,
        retryBudgetMs: 400,
      })
      inject(client, 'PutObjectCommand', () => ({ kind: 'failBefore', error: httpError(500) }))
      inject(client, 'GetObjectCommand', () => ({ kind: 'failBefore', error: httpError(500) }))
      const started = Date.now()
      const error = await budgeted.put('k', utf8('v'), { ifAbsent: true }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(StorageUnavailableError)
      expect((error as StorageUnavailableError).cause).toMatchObject({ $metadata: { httpStatusCode: 500 } })
      expect((error as Error).message).toMatch(/may or may not/)
      expect(Date.now() - started).toBeLessThan(5_000)
    })
  })
})
