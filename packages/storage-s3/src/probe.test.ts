// The startup probe against a real gateway and against doubles that ignore conditions: a real
// client whose middleware strips If-None-Match or If-Match before the request is signed and sent.

import type { S3Client } from '@aws-sdk/client-s3'
import { StorageConfigError } from '@wf/core'
import { afterAll, beforeAll, beforeEach, expect, it, onTestFinished, vi } from 'vitest'
import {
  countCommands,
  credentials,
  describeS3,
  endpoint,
  freshBucket,
  testClient,
  uniqueName,
} from './__tests__/s3-env.js'
import { S3Storage } from './s3-storage.js'
import { fromUri } from './uri.js'

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

  it('never writes for reads: get and list on a fresh storage send no PUT and no DELETE', async () => {
    const counts = countCommands(client)
    const storage = new S3Storage({ bucket, prefix: uniqueName('p'), client })
    expect(await storage.get('a')).toBeUndefined()
    expect(await storage.list('')).toEqual({ keys: [] })
    expect(await storage.list('workflows/', { limit: 10 })).toEqual({ keys: [] })
    expect([...counts.keys()].sort()).toEqual(['GetObjectCommand', 'ListObjectsV2Command'])
  })

  it('the same through a storage URI (what `wf list` opens)', async () => {
    const prefix = uniqueName('p')
    vi.stubEnv('AWS_ACCESS_KEY_ID', credentials.accessKeyId)
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey)
    onTestFinished(() => {
      vi.unstubAllEnvs()
    })
    const storage = await fromUri(
      `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint as string)}`,
    )
    const counts = countCommands(storage.client)
    expect(await storage.get('workflows/x/workflow')).toBeUndefined()
    expect(await storage.list('')).toEqual({ keys: [] })
    expect(counts.get('PutObjectCommand')).toBeUndefined()
    await storage.close()
  })

  it('runs once, before the first conditional write, and leaves no probe key behind', async () => {
    const counts = countCommands(client)
    const storage = new S3Storage({ bucket, prefix: uniqueName('p'), client })
    await Promise.all([storage.get('a'), storage.put('b', utf8('x')), storage.list('')])
    // Neither a read nor an unconditional write needs the server to enforce conditions.
    expect(counts.get('PutObjectCommand')).toBe(1)
    await Promise.all([
      storage.put('c', utf8('y'), { ifAbsent: true }),
      storage.put('d', utf8('z'), { ifAbsent: true }),
    ])
    await storage.put('c', utf8('y2'), { ifVersion: (await storage.get('c'))?.version as string })
    // Four probe PUTs, then the four puts of the test.
    expect(counts.get('PutObjectCommand')).toBe(8)
    expect(counts.get('DeleteObjectCommand')).toBe(1)
    expect(await storage.list('')).toEqual({ keys: ['b', 'c', 'd'] })
  })

  it('refuses a server that ignores If-None-Match, before the first conditional write, with StorageConfigError', async () => {
    ignoreHeader(client, 'if-none-match')
    const storage = new S3Storage({ bucket, prefix: uniqueName('p'), client })
    expect(await storage.get('a')).toBeUndefined()
    const error = await storage.put('a', utf8('x'), { ifAbsent: true }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StorageConfigError)
    expect((error as Error).message).toMatch(/ignores If-None-Match/)
    expect((error as Error).message).toMatch(/probe: false/)
    // Remembered: every later conditional write is refused the same way, and nothing was written.
    await expect(storage.put('a', utf8('x'), { ifVersion: 'v' })).rejects.toBeInstanceOf(StorageConfigError)
    expect(await storage.get('a')).toBeUndefined()
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
