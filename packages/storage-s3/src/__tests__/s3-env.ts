// Shared by the S3 test files: the gateway scripts/test.mjs (or a developer) points the tests at
// through WF_S3_* variables, a fresh bucket per file, and fault injection into a real S3Client.

import { randomBytes } from 'node:crypto'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3'
import { describe, it } from 'vitest'

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'

export const endpoint = process.env.WF_S3_ENDPOINT || undefined
const required = process.env.WF_S3_REQUIRED === '1'
export const credentials = {
  accessKeyId: process.env.WF_S3_ACCESS_KEY_ID || 'S3RVER',
  secretAccessKey: process.env.WF_S3_SECRET_ACCESS_KEY || 'S3RVER',
}

let warned = false
/**
 * `describe` for suites that need the real S3 server: skipped with a loud notice when no
 * WF_S3_ENDPOINT is set, and a failing test instead when WF_S3_REQUIRED=1 (CI).
 */
export function describeS3(name: string, body: () => void): void {
  if (endpoint !== undefined) {
    describe(name, body)
    return
  }
  if (required) {
    describe(name, () => {
      it('has an S3 endpoint to test against', () => {
        throw new Error(
          'WF_S3_REQUIRED=1 but no S3 endpoint was configured: set WF_S3_ENDPOINT (scripts/test.mjs starts a Ceph gateway itself)',
        )
      })
    })
    return
  }
  if (!warned) {
    warned = true
    const bar = '!'.repeat(100)
    console.warn(
      `\n${bar}\n@wf/storage-s3: NO S3 ENDPOINT, the S3 suites are SKIPPED. Start a gateway (scripts/s3/start-ceph-rgw.sh DIR 7480)\nand set WF_S3_ENDPOINT=http://127.0.0.1:7480 WF_S3_ACCESS_KEY_ID=S3RVER WF_S3_SECRET_ACCESS_KEY=S3RVER\n${bar}\n`,
    )
  }
  describe.skip(name, body)
}

/** A client configured like the ones S3Storage builds (no SDK retries, checksums only when required). */
export function testClient(overrides: { maxAttempts?: number } = {}): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint: endpoint ?? 'http://127.0.0.1:1',
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: overrides.maxAttempts ?? 1,
  })
}

export function uniqueName(label: string): string {
  return `wf-${label}-${randomBytes(4).toString('hex')}`
}

/** Creates a fresh bucket; the returned function empties and removes it. */
export async function freshBucket(label: string): Promise<{ bucket: string; remove: () => Promise<void> }> {
  const client = testClient({ maxAttempts: 3 })
  const bucket = uniqueName(label)
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  return {
    bucket,
    async remove() {
      await emptyPrefix(client, bucket, '')
      await client.send(new DeleteBucketCommand({ Bucket: bucket }))
      client.destroy()
    },
  }
}

export async function emptyPrefix(client: S3Client, bucket: string, prefix: string): Promise<void> {
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))
    const objects = (page.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ Key: o.Key }]))
    if (objects.length === 0) return
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }))
  }
}

/** An error shaped like the SDK's for an HTTP answer (what S3Storage branches on). */
export function httpError(status: number, attempts = 1, name = 'InternalError'): Error {
  return Object.assign(new Error(`injected HTTP ${status}`), {
    name,
    $metadata: { httpStatusCode: status, attempts },
  })
}

/** An error shaped like a dropped connection (no HTTP status). */
export function networkError(): Error {
  return Object.assign(new Error('socket hang up (injected)'), { code: 'ECONNRESET' })
}

/** What to do with one matching command attempt. */
export type InjectedAction =
  | { kind: 'pass' }
  // Send the request for real, then report this error instead of the answer.
  | { kind: 'failAfter'; error: Error; before?: () => Promise<void> }
  // Do not send it; report this error.
  | { kind: 'failBefore'; error: Error; before?: () => Promise<void> }

/** Called for each matching command with its input and its 1-based call number. */
export type Injection = (input: Record<string, unknown>, attempt: number) => InjectedAction

/**
 * Adds a middleware to a real client that lets a test fail chosen commands before or after they
 * reach the server: the way to make a real gateway "answer 500 after writing".
 */
export function inject(client: S3Client, commandName: string, decide: Injection): { calls: number } {
  const state = { calls: 0 }
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== commandName) return next(args)
      state.calls++
      const action = decide(args.input as Record<string, unknown>, state.calls)
      if (action.kind === 'pass') return next(args)
      await action.before?.()
      if (action.kind === 'failAfter') await next(args)
      throw action.error
    },
    { step: 'initialize', name: `wf-test-inject-${commandName}-${randomBytes(3).toString('hex')}` },
  )
  return state
}

/** Counts the commands a client sends, by name. */
export function countCommands(client: S3Client): Map<string, number> {
  const counts = new Map<string, number>()
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown'
      counts.set(name, (counts.get(name) ?? 0) + 1)
      return next(args)
    },
    { step: 'initialize', name: `wf-test-count-${randomBytes(3).toString('hex')}` },
  )
  return counts
}
