// Runs the built example (dist/main.js) against a real S3 server: the gateway scripts/test.mjs
// starts, or the one WF_S3_ENDPOINT names. Skipped with a notice without one; failing instead
// when WF_S3_REQUIRED=1 (CI).

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js')
const endpoint = process.env.WF_S3_ENDPOINT || undefined
const credentials = {
  accessKeyId: process.env.WF_S3_ACCESS_KEY_ID || 'S3RVER',
  secretAccessKey: process.env.WF_S3_SECRET_ACCESS_KEY || 'S3RVER',
}

if (endpoint === undefined) {
  if (process.env.WF_S3_REQUIRED === '1') {
    it('has an S3 endpoint to run the example against', () => {
      throw new Error('WF_S3_REQUIRED=1 but WF_S3_ENDPOINT is not set (scripts/test.mjs starts a gateway)')
    })
  } else {
    console.warn('example-s3-pipeline: no WF_S3_ENDPOINT, the example test is SKIPPED')
    it.skip('runs the example against a real S3 server (set WF_S3_ENDPOINT)', () => {})
  }
} else {
  describe('the s3-pipeline example', () => {
    const client = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials,
      maxAttempts: 3,
    })
    const bucket = `wf-example-${randomBytes(4).toString('hex')}`

    beforeAll(async () => {
      await client.send(new CreateBucketCommand({ Bucket: bucket }))
    })
    afterAll(async () => {
      for (;;) {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }))
        const objects = (page.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ Key: o.Key }]))
        if (objects.length === 0) break
        await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects } }))
      }
      await client.send(new DeleteBucketCommand({ Bucket: bucket }))
      client.destroy()
    })

    // The example reads credentials from the SDK's chain, like an application on AWS would.
    const example = (args: string[]) =>
      run(process.execPath, [main, ...args], {
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          WF_STORAGE: `s3://${bucket}/reports?endpoint=${endpoint}`,
        },
        timeout: 60_000,
      })

    it('runs the fan-out and continuation on S3, then returns the stored output without running a step', {
      timeout: 120_000,
    }, async () => {
      const args = ['--days', '6', '--first-day', '2026-12-30', '--workflow-id', 'year-end']
      const first = await example(args)
      expect(first.stdout).toContain('output: {"days":6,"rows":26,"total":992}')
      // planReport, report, and fetchDay + clean for each of the 6 days.
      expect(first.stdout).toContain('14 step records in the bucket under workflows/year-end/steps/')
      expect(first.stdout).toContain('14 steps ran in this process')
      const listed = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: 'reports/workflows/year-end/steps/' }),
      )
      expect(listed.Contents).toHaveLength(14)

      const again = await example(args)
      expect(again.stdout).toContain('output: {"days":6,"rows":26,"total":992}')
      expect(again.stdout).toContain('0 steps ran in this process')
    })
  })
}
