// Test support: the storages the dashboard's tests run on (a real folder through @wf/storage-fs,
// and a fresh bucket on the real S3 gateway when WF_S3_ENDPOINT names one, which WF_S3_REQUIRED=1
// makes a must), and a raw HTTP request (fetch cannot send a foreign Host header, which the tests
// must).

import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Storage } from '@wf/core'
import { fromUri } from '@wf/storage-fs'

export interface Backend {
  name: string
  available: boolean
  open(): Promise<{ storage: Storage; cleanup(): Promise<void> }>
}

const folder: Backend = {
  name: 'folder',
  available: true,
  open: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wf-ui-'))
    const storage = await fromUri(`${pathToFileURL(dir).href}?durability=none`)
    return {
      storage,
      cleanup: async () => {
        await storage.close?.()
        await rm(dir, { recursive: true, force: true, maxRetries: 3 })
      },
    }
  },
}

const s3Endpoint = process.env.WF_S3_ENDPOINT || undefined
// As @wf/storage-s3's suites (src/__tests__/s3-env.ts), whose helper is not importable from here
// (a test file of another package, loading the AWS SDK): CI sets WF_S3_REQUIRED=1 (scripts/test.mjs),
// and there a missing gateway fails the S3 suites instead of dropping them.
const s3Required = process.env.WF_S3_REQUIRED === '1'
const s3Credentials = {
  accessKeyId: process.env.WF_S3_ACCESS_KEY_ID || 'S3RVER',
  secretAccessKey: process.env.WF_S3_SECRET_ACCESS_KEY || 'S3RVER',
}
const s3Dist = fileURLToPath(new URL('../../../storage-s3/dist/index.js', import.meta.url))

type Sdk = {
  S3Client: new (config: object) => { send(command: unknown): Promise<unknown>; destroy(): void }
  [command: string]: unknown
}

/** A fresh bucket on the test gateway, created through @wf/storage-s3's SDK; emptied and removed after. */
const s3: Backend = {
  name: 's3',
  available: s3Endpoint !== undefined,
  open: async () => {
    if (s3Endpoint === undefined)
      throw new Error(
        'WF_S3_REQUIRED=1 but no S3 endpoint was configured: set WF_S3_ENDPOINT (scripts/test.mjs starts a Ceph gateway itself)',
      )
    process.env.AWS_ACCESS_KEY_ID = s3Credentials.accessKeyId
    process.env.AWS_SECRET_ACCESS_KEY = s3Credentials.secretAccessKey
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'
    const sdk = createRequire(s3Dist)('@aws-sdk/client-s3') as Sdk
    const command = (name: string, input: object) => new (sdk[name] as new (input: object) => unknown)(input)
    const client = new sdk.S3Client({
      endpoint: s3Endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: s3Credentials,
    })
    const bucket = `wf-ui-${Math.random().toString(36).slice(2, 10)}`
    await client.send(command('CreateBucketCommand', { Bucket: bucket }))
    const uri = `s3://${bucket}/wf?region=us-east-1&forcePathStyle=true&endpoint=${encodeURIComponent(s3Endpoint)}`
    const mod = (await import(pathToFileURL(s3Dist).href)) as { fromUri(uri: string): Promise<Storage> }
    const storage = await mod.fromUri(uri)
    return {
      storage,
      cleanup: async () => {
        await storage.close?.()
        // A run still going when the tests end (a step released at teardown) may write once more
        // after the bucket was emptied: empty it again, a few times, before giving up.
        for (let attempt = 1; ; attempt++) {
          for (;;) {
            const page = (await client.send(command('ListObjectsV2Command', { Bucket: bucket }))) as {
              Contents?: { Key: string }[]
            }
            const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }))
            if (keys.length === 0) break
            await client.send(command('DeleteObjectsCommand', { Bucket: bucket, Delete: { Objects: keys } }))
          }
          try {
            await client.send(command('DeleteBucketCommand', { Bucket: bucket }))
            break
          } catch (error) {
            if ((error as { name?: string }).name !== 'BucketNotEmpty' || attempt >= 5) throw error
            await new Promise((resolve) => setTimeout(resolve, 300))
          }
        }
        client.destroy()
      },
    }
  },
}

/**
 * The storages the API tests run on: the folder always, S3 when the gateway is configured. Without
 * one, S3 is left out with a notice, or kept when WF_S3_REQUIRED=1, so that its suite fails.
 */
export function testedBackends(file: string): Backend[] {
  if (s3.available || s3Required) return [folder, s3]
  console.warn(
    `@wf/ui ${file}: no WF_S3_ENDPOINT, the S3 cases are SKIPPED (scripts/test.mjs starts a gateway)`,
  )
  return [folder]
}
export { folder as folderBackend }

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  text: string
  /** The body read as JSON (undefined when it is not JSON); loosely typed, as tests read into it. */
  // biome-ignore lint/suspicious/noExplicitAny: a test reads any field of any response body.
  json: any
}

/** One HTTP request with exactly these headers (Host included: default `127.0.0.1:<port>`) and this body. */
export function request(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  host = '127.0.0.1',
  body?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => {
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}
