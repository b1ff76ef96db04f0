// Large step results with byte parts (issue #26 part 3): bytes stored as bytes, long strings as
// their UTF-8, read back on resume; blobs written before (format 1) stay readable.
import { readFileSync } from 'node:fs'
import { describe, expect, it, vi } from 'vitest'
import {
  type Codec,
  CorruptRecordError,
  createCodec,
  EncodedParts,
  MemoryStorage,
  Runtime,
  step,
  storeKeys,
} from '../index.js'
import { stagedStorage } from '../test-support/staged-storage.js'

const MB = 1_000_000

/** A value with every kind of byte part, and small ones that stay in the text. */
function binaryValue() {
  const bytes = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256)
  const floats = new Float64Array(70_000).map((_, i) => i / 3)
  floats[1] = -0
  return {
    bytes,
    again: bytes, // the same array twice: one part, one array back
    buffer: Buffer.alloc(200_000, 'wf'),
    small: Buffer.from('a small Buffer, from the shared pool'),
    floats,
    arrayBuffer: new Uint8Array(100_000).fill(9).buffer,
    text: `${'é'.repeat(50_000)}${'x'.repeat(50_000)}"\\\n`,
    view: new Uint16Array(new Uint8Array(200_000).fill(1).buffer, 2, 1000),
  }
}
type BinaryValue = ReturnType<typeof binaryValue>

function expectSameBinary(back: BinaryValue, value: BinaryValue): void {
  expect(back.bytes).toBeInstanceOf(Uint8Array)
  expect(Buffer.from(back.bytes).equals(Buffer.from(value.bytes))).toBe(true)
  expect(back.again).toBe(back.bytes)
  expect(Buffer.isBuffer(back.buffer)).toBe(true)
  expect(back.buffer.equals(value.buffer)).toBe(true)
  expect(Buffer.isBuffer(back.small)).toBe(true)
  expect(back.small.toString()).toBe(value.small.toString())
  expect(back.floats).toBeInstanceOf(Float64Array)
  expect(back.floats).toEqual(value.floats)
  expect(Object.is(back.floats[1], -0)).toBe(true)
  expect(back.arrayBuffer).toBeInstanceOf(ArrayBuffer)
  expect(new Uint8Array(back.arrayBuffer)).toEqual(new Uint8Array(value.arrayBuffer))
  expect(back.text).toBe(value.text)
  expect(back.view).toBeInstanceOf(Uint16Array)
  expect(Array.from(back.view)).toEqual(Array.from(value.view))
}

/** Blob keys of a workflow and their sizes. */
async function blobs(storage: MemoryStorage, workflowId: string): Promise<Map<string, Uint8Array>> {
  const found = new Map<string, Uint8Array>()
  for (const key of (await storage.list(`workflows/${workflowId}/blobs/`)).keys) {
    found.set(key, (await storage.get(key))?.data as Uint8Array)
  }
  return found
}

let healthy = false
const produce = step('large.produce', () => binaryValue())
const consume = step(
  'large.consume',
  (value: BinaryValue) => {
    if (!healthy) throw new Error('fails until the test resumes it')
    return value
  },
  { maxRetries: 0 },
)
const megabyte = step('large.megabyte', () => new Uint8Array(MB).fill(42))
const sizeOf = step('large.sizeOf', (bytes: Uint8Array) => bytes.byteLength)
const longText = step('large.longText', (n: number) => 'ü'.repeat(n))
const lengthOf = step('large.lengthOf', (text: string) => text.length)

describe('large results with byte parts', () => {
  it('stores 1 MB of bytes as about 1 MB, not the 1.33 MB of base64', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await expect(runtime.run(sizeOf(megabyte()), { workflowId: 'mb' })).resolves.toBe(MB)
    const stored = [...(await blobs(storage, 'mb')).values()]
    expect(stored).toHaveLength(1)
    expect(stored[0]?.byteLength).toBeGreaterThanOrEqual(MB)
    expect(stored[0]?.byteLength).toBeLessThan(MB + 1000)
    // The record names a format-2 blob and says v 2, which earlier versions refuse.
    const record = await (await runtime.store()).readStep('mb', 'large.megabyte')
    expect(record?.v).toBe(2)
    expect(record?.output).toMatchObject({ format: 2 })
  })

  it('writes the record naming a blob once the blob is accepted, not durable, on a storage with putStaged', async () => {
    // A storage like the folder journal: a write is accepted at once and made durable in order
    // (a write accepted before another is durable no later than it). Here durability holds from
    // the blob's write on, until the test lets it go.
    const log: string[] = []
    const queue: (() => void)[] = []
    let holding = false
    const drain = () => {
      while (!holding && queue.length > 0) queue.shift()?.()
    }
    const kindOf = (key: string) => key.split('/')[2] ?? key
    const storage = stagedStorage((key) => {
      log.push(`accepted ${kindOf(key)}`)
      if (kindOf(key) === 'blobs') holding = true
      return new Promise<void>((resolve) => {
        queue.push(() => {
          log.push(`durable ${kindOf(key)}`)
          resolve()
        })
        drain()
      })
    })
    const big = step('large.staged', () => 'x'.repeat(MB))
    const after = step('large.after', (text: string) => text.length)
    const run = new Runtime(storage).run(after(big()), { workflowId: 'staged' })
    // The step's record is written while its blob is not durable yet …
    await vi.waitFor(() => expect(log).toContain('accepted steps'))
    expect(log).toContain('accepted blobs')
    expect(log).not.toContain('durable blobs')
    holding = false
    drain()
    await expect(run).resolves.toBe(MB)
    // … and is durable after it.
    expect(log.indexOf('durable blobs')).toBeGreaterThanOrEqual(0)
    expect(log.indexOf('durable blobs')).toBeLessThan(log.indexOf('durable steps'))
  })

  it('stores a long string as its UTF-8, without JSON escaping', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await expect(runtime.run(lengthOf(longText(400_000)), { workflowId: 'text' })).resolves.toBe(400_000)
    const stored = [...(await blobs(storage, 'text')).values()]
    expect(stored).toHaveLength(1)
    // 'ü' is 2 bytes of UTF-8 (JSON text would be the same here, but 6 bytes escaped as \u00fc).
    expect(stored[0]?.byteLength).toBeLessThan(800_000 + 1000)
    expect(
      Buffer.from(stored[0] as Uint8Array)
        .subarray(0, 10)
        .toString('latin1'),
    ).toBe('wf-blob/2\n')
  })

  it('stores ASCII and non-ASCII long strings as their exact UTF-8 and reads them back', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    // All ASCII (the Latin-1 fast path), Latin-1 but not ASCII, and one astral character at the end.
    const texts = ['a'.repeat(100_000), 'ÿ'.repeat(100_000), `${'b'.repeat(100_000)}😀`]
    const pair = step('large.texts', () => texts)
    const count = step('large.count', (back: string[]) => back.length)
    await expect(runtime.run(count(pair()), { workflowId: 'texts' })).resolves.toBe(3)
    const store = await runtime.store()
    const record = await store.readStep('texts', 'large.texts')
    const back = await store.loadValue('texts', record?.output ?? { inline: '' }, runtime.codec)
    expect((back as string[]).map((t, i) => t === texts[i])).toEqual([true, true, true])
    const stored = [...(await blobs(storage, 'texts')).values()]
    expect(stored).toHaveLength(1)
    const utf8 = texts.reduce((n, t) => n + Buffer.byteLength(t), 0)
    expect(stored[0]?.byteLength).toBeGreaterThan(utf8)
    expect(stored[0]?.byteLength).toBeLessThan(utf8 + 500)
    expect(Buffer.from(stored[0] as Uint8Array).includes(Buffer.from(`${'b'.repeat(10)}😀`))).toBe(true)
  })

  it('reads Buffer, typed arrays, ArrayBuffer and long strings back on resume', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    healthy = false
    await expect(runtime.run(consume(produce()), { workflowId: 'resumed' })).rejects.toThrow()
    healthy = true
    // A new runtime, as after a restart: produce's result comes back from its blob only.
    const back = await new Runtime(storage).resume<BinaryValue>('resumed')
    expectSameBinary(back, binaryValue())
    const stored = [...(await blobs(storage, 'resumed')).values()]
    // produce's blob holds its parts as raw bytes (consume, the root, is in the workflow record).
    // bytes, buffer, floats, arrayBuffer, text (50,000 × 2 + 50,003 bytes), the view's own 2,000 bytes.
    const total = 300_000 + 200_000 + 560_000 + 100_000 + 150_003 + 2_000
    expect(stored.some((b) => b.byteLength > total && b.byteLength < total + 2000)).toBe(true)
  })

  it('reads a step result stored in a blob by wf before byte parts (format 1)', async () => {
    // Written by the code before byte parts: fixture.bytes committed as a format-1 blob, the root failed.
    const fixture = JSON.parse(
      readFileSync(new URL('../test-support/fixtures/blob-format-1.json', import.meta.url), 'utf8'),
    ) as Record<string, string>
    const storage = new MemoryStorage()
    for (const [key, base64] of Object.entries(fixture)) await storage.put(key, Buffer.from(base64, 'base64'))
    step('fixture.bytes', () => {
      throw new Error('committed before: never runs again')
    })
    step('fixture.check', (value: { bytes: Uint8Array; buffer: Buffer; text: string }) => [
      Array.from(value.bytes.subarray(0, 3)),
      value.bytes.byteLength,
      Buffer.isBuffer(value.buffer) && value.buffer.toString(),
      value.text.length,
    ])
    await expect(new Runtime(storage).resume('format-1')).resolves.toEqual([
      [0, 1, 2],
      3000,
      'a Buffer written before byte parts',
      1000,
    ])
  })

  it('refuses a blob of a later format with an error that says to upgrade', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await runtime.run(sizeOf(megabyte()), { workflowId: 'later' })
    const [key, data] = [...(await blobs(storage, 'later'))][0] as [string, Uint8Array]
    const later = Buffer.from(data)
    later.write('3', 'wf-blob/'.length, 'latin1')
    await storage.put(key, later)
    const store = await runtime.store()
    const record = await store.readStep('later', 'large.megabyte')
    const reading = store.loadValue('later', record?.output ?? { inline: '' }, runtime.codec)
    await expect(reading).rejects.toBeInstanceOf(CorruptRecordError)
    await expect(reading).rejects.toThrow(
      /format "3", which this version of wf cannot read .*upgrade @wf\/core/,
    )
  })

  it('stores text with base64 under a codec without encodeParts, and reads it back', async () => {
    const storage = new MemoryStorage()
    const inner = createCodec()
    const codec: Codec = { encode: (v) => inner.encode(v), decode: (t) => inner.decode(t) }
    const runtime = new Runtime(storage, { codec })
    await expect(runtime.run(sizeOf(megabyte()), { workflowId: 'text-codec' })).resolves.toBe(MB)
    const stored = [...(await blobs(storage, 'text-codec')).values()]
    expect(stored[0]?.byteLength).toBeGreaterThan(1.3 * MB)
    const record = await (await runtime.store()).readStep('text-codec', 'large.megabyte')
    expect(record?.v).toBe(1)
    expect(record?.output).not.toHaveProperty('format')
  })

  it('keeps small strings and bytes in the text, so small results stay inline', async () => {
    const codec = createCodec()
    expect(typeof codec.encodeParts?.(new Uint8Array(1000))).toBe('string')
    expect(typeof codec.encodeParts?.('x'.repeat(1000))).toBe('string')
    const encoded = codec.encodeParts?.(['x'.repeat(70_000), new Uint8Array(70_000)])
    expect(encoded).toBeInstanceOf(EncodedParts)
    // The string stays a string (written into the blob as its UTF-8), the bytes a view of them.
    const [text, bytes] = (encoded as EncodedParts).parts
    expect(text).toBe('x'.repeat(70_000))
    expect((bytes as Uint8Array).byteLength).toBe(70_000)
    expect(storeKeys.blob('w', 'b')).toBe('workflows/w/blobs/b')
  })
})
