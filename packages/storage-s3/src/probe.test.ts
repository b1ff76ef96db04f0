// The startup probe against a real gateway and against doubles that ignore conditions: a real
// client whose middleware strips If-None-Match or If-Match before the request is signed and sent.

import type { S3Client } from '@aws-sdk/client-s3'
import { StorageConfigError } from '@wf/core'
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest'
import {
  countCommands,
  describeS3,
  endpoint,
  freshBucket,
  testClient,
  uniqueName,
} from './__tests__/s3-env.js'
import { S3Storage } from './s3-storage.js'

const utf8 = (s: string) => new TextEncoder().encode(s)

/** Makes a real client behave like a server that ignores one conditional header. */
function ignoreHeader(client: S3Client, header: 'if-none-match' | 'if-match'): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> }
      if (request.headers) delete request.headers[header]
      return next(args)
    },
    { step: 'build', name: `wf-test-ignore-${header}` },
  )
}

describeS3('the conditional-write probe', () => {
  let bucket: string
  let remove: () => Promise<void>
  let client: S3Client

  beforeAll(async () => {
    ;({ bucket, remove } = await freshBucket('probe'))
  })
  afterAll(async () => {
    await remove()
  })
  beforeEach(() => {
    client = testClient()
    return () => client.destroy()
  })

  it('passes on a server that enforces conditions, runs once, and leaves no probe key behind', async () => {
    const counts = countCommands(client)
    const storage = new S3Storage({ bucket, prefix: uniqueName('p'), client })
    await Promise.all([storage.get('a'), storage.put('b', utf8('x')), storage.list('')])
    await storage.put('c', utf8('y'))
    // Four probe PUTs, then the two puts of the test.
    expect(counts.get('PutObjectCommand')).toBe(6)
    expect(counts.get('DeleteObjectCommand')).toBe(1)
    expect(await storage.list('')).toEqual({ keys: ['b', 'c'] })
  })

  it('refuses a server that ignores If-None-Match, on first use, with StorageConfigError', async () => {
    ignoreHeader(client, 'if-none-match')
    const storage = new S3Storage({ bucket, prefix: uniqueName('p'), client })
    const error = await storage.get('a').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StorageConfigError)
    expect((error as Error).message).toMatch(/ignores If-None-Match/)
    expect((error as Error).message).toMatch(/probe: false/)
    // Remembered: every later call is refused the same way, nothing is written.
    await expect(storage.put('a', utf8('x'))).rejects.toBeInstanceOf(StorageConfigError)
  })

  it('refuses a server that ignores If-Match', async () => {
    ignoreHeader(client, 'if-match')
    const storage = new S3Storage({ bucket, prefix: uniqueName('p'), client })
    await expect(storage.probe()).rejects.toThrow(/ignores If-Match/)
  })

  it('is skipped with probe: false', async () => {
    ignoreHeader(client, 'if-none-match')
    const counts = countCommands(client)
    const storage = new S3Storage({ bucket, prefix: uniqueName('p'), client, probe: false })
    await storage.put('a', utf8('x'))
    expect(counts.get('PutObjectCommand')).toBe(1)
  })

  it('names the missing bucket instead of retrying', async () => {
    const storage = new S3Storage({ bucket: uniqueName('missing'), client, retryBudgetMs: 60_000 })
    const started = Date.now()
    const error = await storage.probe().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StorageConfigError)
    expect((error as Error).message).toMatch(/does not exist/)
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('reports wrong credentials as a StorageConfigError that names the IAM actions', async () => {
    const storage = new S3Storage({
      bucket,
      endpoint,
      credentials: { accessKeyId: 'nobody', secretAccessKey: 'wrong' },
      retryBudgetMs: 60_000,
    })
    const error = await storage.probe().catch((e: unknown) => e)
    await storage.close()
    expect(error).toBeInstanceOf(StorageConfigError)
    expect((error as Error).message).toMatch(/s3:PutObject/)
  })
})
