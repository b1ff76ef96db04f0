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

  it('rejects every operation with StorageUnavailableError after the retry budget, cause attached', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`
    const storage = new S3Storage({ bucket: 'bkt', endpoint, credentials, retryBudgetMs: 300 })
    const started = Date.now()
    // The probe is what meets the closed port first.
    const error = await storage.get('k').catch((e: unknown) => e)
    const elapsed = Date.now() - started
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect((error as StorageUnavailableError).code).toBe('WF_STORAGE_UNAVAILABLE')
    expect((error as Error).message).toMatch(/ECONNREFUSED/)
    expect((error as Error).message).toMatch(/retryBudgetMs/)
    expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' })
    expect(elapsed).toBeGreaterThanOrEqual(300)
    expect(elapsed).toBeLessThan(3_000)
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
