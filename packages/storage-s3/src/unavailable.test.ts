// A server that is down or keeps throttling: calls retry with backoff for retryBudgetMs, then
// reject with StorageUnavailableError carrying the last error. Uses real sockets, no S3 needed.

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { StorageUnavailableError } from '@wf/core'
import { afterEach, describe, expect, it } from 'vitest'
import './__tests__/s3-env.js'
import { S3Storage } from './s3-storage.js'

const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
const utf8 = (s: string) => new TextEncoder().encode(s)

async function listen(
  handler: Parameters<typeof createServer>[1],
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as AddressInfo).port }
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const { server, port } = await listen(() => {})
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('a server that is down', () => {
  const servers: Server[] = []
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('rejects with StorageUnavailableError after the retry budget when it is shorter than 2 s, cause attached', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`
    const storage = new S3Storage({ bucket: 'bkt', endpoint, credentials, retryBudgetMs: 300 })
    const started = Date.now()
    const error = await storage.get('k').catch((e: unknown) => e)
    const elapsed = Date.now() - started
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect((error as StorageUnavailableError).code).toBe('WF_STORAGE_UNAVAILABLE')
    expect((error as Error).message).toContain(`cannot reach the S3 endpoint ${endpoint}: connection refused`)
    expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' })
    expect(elapsed).toBeGreaterThanOrEqual(300)
    expect(elapsed).toBeLessThan(3_000)
    await storage.close()
  })

  it('a refused connection fails within about 2 s with "cannot reach the S3 endpoint …: connection refused", reads and conditional writes alike', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`
    // The default retryBudgetMs (20 s): a server that never answered is not an outage to ride out.
    const storage = new S3Storage({ bucket: 'bkt', endpoint, credentials })
    for (const call of [
      () => storage.get('k'),
      () => storage.list(''),
      // With the probe on: its first PUT meets the closed port.
      () => storage.put('k', utf8('v'), { ifAbsent: true }),
    ]) {
      const started = Date.now()
      const error = (await call().catch((e: unknown) => e)) as Error
      const elapsed = Date.now() - started
      expect(error).toBeInstanceOf(StorageUnavailableError)
      expect(error.message).toContain(
        `cannot reach the S3 endpoint ${endpoint}: connection refused (ECONNREFUSED`,
      )
      expect(error.message).toContain('nothing was written')
      // Nothing reached the server: no "may or may not".
      expect(error.message).not.toMatch(/may or may not/)
      expect(error.cause).toMatchObject({ code: 'ECONNREFUSED' })
      expect(elapsed).toBeGreaterThanOrEqual(1_500)
      expect(elapsed).toBeLessThan(3_000)
    }
    await storage.close()
  }, 20_000)

  it('an unknown host fails the same way, naming it', async () => {
    const endpoint = 'http://wf-no-such-host.invalid:7480'
    const storage = new S3Storage({ bucket: 'bkt', endpoint, credentials })
    const started = Date.now()
    const error = (await storage.list('').catch((e: unknown) => e)) as Error
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect(error.message).toMatch(
      /cannot reach the S3 endpoint http:\/\/wf-no-such-host\.invalid:7480: .*DNS lookup failed/,
    )
    expect(Date.now() - started).toBeLessThan(5_000)
    await storage.close()
  })

  it('once the endpoint has answered, a refused connection is an outage: retried for the whole retryBudgetMs and said once on stderr', async () => {
    const { server, port } = await listen((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/xml' })
      res.end('<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>')
    })
    const storage = new S3Storage({
      bucket: 'bkt',
      endpoint: `http://127.0.0.1:${port}`,
      credentials,
      retryBudgetMs: 2_600,
      probe: false,
    })
    expect(await storage.get('k')).toBeUndefined()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    const warnings: Error[] = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on('warning', onWarning)
    try {
      const started = Date.now()
      const [a, b] = await Promise.all([
        storage.get('k').then(
          () => undefined,
          (e: unknown) => e as Error,
        ),
        storage.list('').then(
          () => undefined,
          (e: unknown) => e as Error,
        ),
      ])
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_600)
      for (const error of [a, b]) {
        expect(error).toBeInstanceOf(StorageUnavailableError)
        // (A kept-alive socket may fail first with ECONNRESET, which may have reached the server.)
        expect(error?.message).toMatch(/ECONNREFUSED/)
        expect(error?.message).toMatch(/raise retryBudgetMs/)
      }
    } finally {
      process.off('warning', onWarning)
    }
    const ours = warnings.filter((w) => (w as { code?: string }).code === 'WF_S3_RETRYING')
    expect(ours).toHaveLength(1)
    expect(ours[0]?.message).toMatch(/has been failing for \d+\.\d s .*ECONNREFUSED.*retrying for up to/)
    await storage.close()
  })

  it('a conditional write that may have reached the server says so ("may or may not have happened")', async () => {
    const { server, port } = await listen((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/xml' })
      res.end('<?xml version="1.0"?><Error><Code>ServiceUnavailable</Code></Error>')
    })
    servers.push(server)
    const storage = new S3Storage({
      bucket: 'bkt',
      endpoint: `http://127.0.0.1:${port}`,
      credentials,
      retryBudgetMs: 300,
      probe: false,
    })
    const error = (await storage.put('k', utf8('v'), { ifAbsent: true }).catch((e: unknown) => e)) as Error
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect(error.message).toMatch(/the conditional write may or may not have happened/)
    await storage.close()
  })

  it('a listing whose server hands back the continuation token it was sent ends with StorageUnavailableError', async () => {
    let requests = 0
    const { server, port } = await listen((_req, res) => {
      requests++
      res.writeHead(200, { 'content-type': 'application/xml' })
      res.end(
        '<?xml version="1.0"?><ListBucketResult><Name>bkt</Name><IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken><EncodingType>url</EncodingType><Contents><Key>a</Key></Contents></ListBucketResult>',
      )
    })
    servers.push(server)
    const storage = new S3Storage({
      bucket: 'bkt',
      endpoint: `http://127.0.0.1:${port}`,
      credentials,
      probe: false,
    })
    const error = (await storage.list('').catch((e: unknown) => e)) as Error
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect(error.message).toMatch(/does not advance/)
    expect(requests).toBe(2)
    await storage.close()
  })

  it('rejects put, list, delete and deleteMany the same way when the probe is off', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`
    const storage = new S3Storage({ bucket: 'bkt', endpoint, credentials, retryBudgetMs: 200, probe: false })
    for (const call of [
      () => storage.put('k', utf8('v')),
      () => storage.put('k', utf8('v'), { ifAbsent: true }),
      () => storage.list(''),
      () => storage.delete('k'),
      () => storage.deleteMany(['k', 'l']),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(StorageUnavailableError)
    }
    await storage.close()
  })

  it('retries a server that answers 503 SlowDown with backoff, then gives up', async () => {
    let requests = 0
    const { server, port } = await listen((_req, res) => {
      requests++
      res.writeHead(503, { 'content-type': 'application/xml' })
      res.end(
        '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
      )
    })
    servers.push(server)
    const storage = new S3Storage({
      bucket: 'bkt',
      endpoint: `http://127.0.0.1:${port}`,
      credentials,
      retryBudgetMs: 600,
      probe: false,
    })
    const error = await storage.get('k').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect((error as Error).message).toMatch(/HTTP 503/)
    expect((error as Error).message).toMatch(/SlowDown/)
    // Backoff, not a busy loop: a handful of attempts in 600 ms.
    expect(requests).toBeGreaterThan(2)
    expect(requests).toBeLessThan(20)
    await storage.close()
  })

  it('times out a server that accepts the connection and never answers', async () => {
    const { server, port } = await listen(() => {
      // Never respond.
    })
    servers.push(server)
    const storage = new S3Storage({
      bucket: 'bkt',
      endpoint: `http://127.0.0.1:${port}`,
      credentials,
      retryBudgetMs: 100,
      socketTimeoutMs: 300,
      probe: false,
    })
    const started = Date.now()
    await expect(storage.get('k')).rejects.toBeInstanceOf(StorageUnavailableError)
    expect(Date.now() - started).toBeLessThan(5_000)
    await storage.close()
  })
})
