// Large step results on the folder (issue #26 part 3): bytes stored as bytes in a blob file and
// read back by a resume in a storage opened again, with fsync and with the journal.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Runtime, step } from '@wf/core'
import { afterAll, describe, expect, it } from 'vitest'
import { createFileSystemStorage } from './index.js'

const MB = 1_000_000
const roots: string[] = []
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true })
})

interface Large {
  bytes: Uint8Array
  buffer: Buffer
  floats: Float32Array
  text: string
}

let healthy = false
const produce = step(
  'fs-large.produce',
  (): Large => ({
    bytes: Uint8Array.from({ length: MB }, (_, i) => (i * 13) % 256),
    buffer: Buffer.alloc(300_000, 'buffer'),
    floats: new Float32Array(50_000).fill(1.5),
    text: 'ß'.repeat(200_000),
  }),
)
const consume = step(
  'fs-large.consume',
  (value: Large) => {
    if (!healthy) throw new Error('fails until the test resumes it')
    return [
      value.bytes.byteLength,
      value.bytes[MB - 1],
      Buffer.isBuffer(value.buffer) && value.buffer.subarray(0, 6).toString(),
      value.floats instanceof Float32Array && value.floats[49_999],
      value.text.length,
    ]
  },
  { maxRetries: 0 },
)

describe.each(['fsync', 'journal'] as const)('large results on the folder (%s)', (durability) => {
  it('stores bytes raw in a blob file and reads them back on resume after reopening', async () => {
    const root = await mkdtemp(join(tmpdir(), 'wf-fs-large-'))
    roots.push(root)
    const first = await createFileSystemStorage({ root, durability })
    healthy = false
    await expect(new Runtime(first).run(consume(produce()), { workflowId: 'large' })).rejects.toThrow()
    // produce's blob: 1 MB + 300 KB + 200 KB + 400 KB of raw bytes, not 1.33 × that of base64.
    const { keys } = await first.list('workflows/large/blobs/')
    expect(keys).toHaveLength(1)
    const blob = await first.get(keys[0] as string)
    const raw = MB + 300_000 + 200_000 + 400_000
    expect(blob?.data.byteLength).toBeGreaterThan(raw)
    expect(blob?.data.byteLength).toBeLessThan(raw + 2000)
    await first.close()

    healthy = true
    const again = await createFileSystemStorage({ root, durability })
    await expect(new Runtime(again).resume('large')).resolves.toEqual([
      MB,
      ((MB - 1) * 13) % 256,
      'buffer',
      1.5,
      200_000,
    ])
    await again.close()
  })
})
