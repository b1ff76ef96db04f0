// Large step results on S3 (issue #26 part 3): bytes stored as bytes in a blob object, sent as one
// sized stream, and read back by a resume through a storage opened again.
import { Runtime, step } from '@wf/core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import {
  countCommands,
  credentials,
  describeS3,
  endpoint,
  freshBucket,
  uniqueName,
} from './__tests__/s3-env.js'
import { S3Storage } from './s3-storage.js'

const MB = 1_000_000

interface Large {
  bytes: Uint8Array
  buffer: Buffer
  text: string
}

let healthy = false
const produce = step(
  's3-large.produce',
  (): Large => ({
    bytes: Uint8Array.from({ length: 2 * MB }, (_, i) => (i * 13) % 256),
    buffer: Buffer.alloc(300_000, 'buffer'),
    text: 'ß'.repeat(200_000),
  }),
)
const consume = step(
  's3-large.consume',
  (value: Large) => {
    if (!healthy) throw new Error('fails until the test resumes it')
    return [
      value.bytes.byteLength,
      value.bytes[2 * MB - 1],
      Buffer.isBuffer(value.buffer) && value.buffer.subarray(0, 6).toString(),
      value.text.length,
    ]
  },
  { maxRetries: 0 },
)

describeS3('large results on S3', () => {
  let bucket = ''
  let remove: () => Promise<void> = async () => {}
  beforeAll(async () => {
    ;({ bucket, remove } = await freshBucket('large'))
  })
  afterAll(async () => {
    await remove()
  })

  it('stores bytes raw in a blob object and reads them back on resume', { timeout: 60_000 }, async () => {
    const prefix = uniqueName('large')
    const first = new S3Storage({ bucket, prefix, endpoint, credentials })
    healthy = false
    await expect(new Runtime(first).run(consume(produce()), { workflowId: 'large' })).rejects.toThrow()
    const { keys } = await first.list('workflows/large/blobs/')
    expect(keys).toHaveLength(1)
    const blob = await first.get(keys[0] as string)
    // 2 MB + 300 KB + 400 KB of raw bytes, not 1.33 × that of base64.
    const raw = 2 * MB + 300_000 + 400_000
    expect(blob?.data.byteLength).toBeGreaterThan(raw)
    expect(blob?.data.byteLength).toBeLessThan(raw + 2000)
    await first.close()

    healthy = true
    const again = new S3Storage({ bucket, prefix, endpoint, credentials })
    await expect(new Runtime(again).resume('large')).resolves.toEqual([
      2 * MB,
      ((2 * MB - 1) * 13) % 256,
      'buffer',
      200_000,
    ])
    await again.close()
  })

  it('writes an unconditional value of 256 KiB or more with one streamed PUT, and reads back the same bytes', {
    timeout: 60_000,
  }, async () => {
    // A client of its own (SDK retries off): a client passed in gets one buffer instead.
    const storage = new S3Storage({ bucket, prefix: uniqueName('stream'), endpoint, credentials })
    const { client } = storage
    const counts = countCommands(client)
    // The signed request as sent: a streamed body is signed without a SHA-256 of 3 MB.
    const payloadHashes: unknown[] = []
    client.middlewareStack.add(
      (next) => (args) => {
        const { headers } = args.request as { headers?: Record<string, string> }
        if (headers?.['content-type'] === 'application/octet-stream')
          payloadHashes.push(headers['x-amz-content-sha256'])
        return next(args)
      },
      { step: 'deserialize' },
    )
    // From 256 KiB on (a blob of a 1 MB result too), up to the multipart limit.
    for (const size of [300_000, 3 * MB + 1]) {
      const value = Uint8Array.from({ length: size }, (_, i) => (i * 31) % 251)
      const { version } = await storage.put(`blob-${size}`, value)
      const back = await storage.get(`blob-${size}`)
      expect(back?.version).toBe(version)
      expect(Buffer.from(back?.data as Uint8Array).equals(Buffer.from(value))).toBe(true)
    }
    expect(counts.get('PutObjectCommand')).toBe(2)
    expect(counts.get('CreateMultipartUploadCommand')).toBeUndefined()
    expect(payloadHashes).toEqual(['UNSIGNED-PAYLOAD', 'UNSIGNED-PAYLOAD'])
    await storage.close()
  })
})
