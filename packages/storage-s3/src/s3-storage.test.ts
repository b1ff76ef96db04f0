// S3-specific behaviour beyond the shared contract: multipart for big unconditional values, the
// single-PUT limit for conditional ones, object layout (prefix, header, escaped names), batches.

import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { ConditionFailedError, CorruptRecordError, InvalidKeyError, StorageConfigError } from '@wf/core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { countCommands, describeS3, freshBucket, testClient, uniqueName } from './__tests__/s3-env.js'
import { decodeKey, encodeKey } from './s3-keys.js'
import { S3Storage } from './s3-storage.js'

const utf8 = (s: string) => new TextEncoder().encode(s)
const MiB = 1024 * 1024

function pattern(size: number, seed: number): Uint8Array {
  const data = new Uint8Array(size)
  for (let i = 0; i < size; i++) data[i] = (i * 31 + seed) & 0xff
  return data
}

describe('S3 object names', () => {
  it('keep every key as it is unless it holds U+E000–U+FFFF or U+10FFFF', () => {
    for (const key of ['a/b', 'u/日本語/キー', 'u/emoji 😀', 'u/100%', '']) expect(encodeKey(key)).toBe(key)
  })

  it('sort in UTF-8 byte order exactly as the keys sort in JavaScript order, and decode back', () => {
    const keys = [
      'w/\uff61',
      'w/😀',
      'w/\ue000',
      'w/a',
      'w/\u{10FFFF}',
      'w/\uffff',
      'w/\ud7ff',
      'w/\u{10FFFF}x',
      'w/\ue000a',
    ]
    const jsOrder = [...keys].sort()
    const byteOrder = [...keys].sort((a, b) =>
      Buffer.compare(Buffer.from(encodeKey(a)), Buffer.from(encodeKey(b))),
    )
    expect(byteOrder).toEqual(jsOrder)
    for (const key of keys) expect(decodeKey(encodeKey(key))).toBe(key)
    // Prefixes stay prefixes, so S3's Prefix filter is the contract's.
    expect(encodeKey('w/\ue000a').startsWith(encodeKey('w/\ue000'))).toBe(true)
    // No U+FFFE/U+FFFF reaches S3: they cannot appear in XML listings.
    expect(encodeKey('\uffff\ufffe')).not.toMatch(/[\ufffe\uffff]/)
  })

  it('are ignored in listings when this package could not have written them', () => {
    expect(decodeKey('a\u{10FFFF}')).toBeUndefined()
    expect(decodeKey('a\u{10FFFF}z')).toBeUndefined()
  })
})

describeS3('S3Storage on a real S3 server', () => {
  let bucket: string
  let remove: () => Promise<void>
  let client: S3Client
  let prefix: string

  beforeAll(async () => {
    ;({ bucket, remove } = await freshBucket('storage'))
  })
  afterAll(async () => {
    await remove()
  })
  beforeEach(() => {
    client = testClient()
    prefix = uniqueName('p')
    return () => client.destroy()
  })

  describe('large values', () => {
    it('writes an unconditional value over maxSinglePutBytes with a multipart upload', {
      timeout: 120_000,
    }, async () => {
      const storage = new S3Storage({ bucket, prefix, client, maxSinglePutBytes: 5 * MiB })
      const counts = countCommands(client)
      const value = pattern(12 * MiB + 3, 7)
      const { version } = await storage.put('big', value)
      expect(counts.get('CreateMultipartUploadCommand')).toBe(1)
      expect(counts.get('UploadPartCommand')).toBeGreaterThanOrEqual(2)
      const read = await storage.get('big')
      expect(read?.version).toBe(version)
      expect(Buffer.compare(Buffer.from(read?.data ?? []), Buffer.from(value))).toBe(0)
      // The multipart version works for compare-and-swap like any other.
      const { version: v2 } = await storage.put('big', utf8('small'), { ifVersion: version })
      await expect(storage.put('big', utf8('stale'), { ifVersion: version })).rejects.toBeInstanceOf(
        ConditionFailedError,
      )
      expect((await storage.get('big'))?.version).toBe(v2)
    })

    it('uses multipart past the default 16 MiB single-PUT limit', { timeout: 120_000 }, async () => {
      const storage = new S3Storage({ bucket, prefix, client })
      const counts = countCommands(client)
      const value = pattern(16 * MiB + 1, 3)
      await storage.put('big', value)
      expect(counts.get('CreateMultipartUploadCommand')).toBe(1)
      const read = await storage.get('big')
      expect(read?.data.byteLength).toBe(value.byteLength)
      expect(Buffer.compare(Buffer.from(read?.data ?? []), Buffer.from(value))).toBe(0)
    })

    it('refuses a conditional put over the single-PUT limit, without writing, and says what to do', async () => {
      const storage = new S3Storage({ bucket, prefix, client, maxSinglePutBytes: MiB })
      for (const condition of [{ ifAbsent: true } as const, { ifVersion: 'abc' }]) {
        const error = await storage.put('big', new Uint8Array(MiB), condition).catch((e: unknown) => e)
        expect(error).toBeInstanceOf(StorageConfigError)
        expect((error as Error).message).toMatch(/S3 enforces conditions only on single PUTs/)
        expect((error as Error).message).toMatch(/maxSinglePutBytes/)
      }
      expect(await storage.get('big')).toBeUndefined()
    })
  })

  describe('object layout', () => {
    it('keeps keys under the prefix, each object a "wf-s3/1" header line then the value', async () => {
      const storage = new S3Storage({ bucket, prefix: `${prefix}/nested`, client })
      await storage.put('a/b', utf8('value'))
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/nested/a/b` }))
      const body = Buffer.from(await (out.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array())))
      expect(body.toString('latin1')).toMatch(/^wf-s3\/1 [0-9a-f]{32}\nvalue$/)
      // A storage on a sibling prefix sees nothing of it.
      const sibling = new S3Storage({ bucket, prefix: `${prefix}/nested-not`, client, probe: false })
      expect(await sibling.list('')).toEqual({ keys: [] })
    })

    it('reads an object someone else put there as a CorruptRecordError, not as data', async () => {
      const storage = new S3Storage({ bucket, prefix, client })
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/foreign`, Body: utf8('raw bytes') }),
      )
      await expect(storage.get('foreign')).rejects.toBeInstanceOf(CorruptRecordError)
    })

    it('reserves the probe folder and refuses keys too long for S3 once escaped', async () => {
      const storage = new S3Storage({ bucket, prefix, client, probe: false })
      await expect(storage.put('.wf-s3-probe/x', utf8('x'))).rejects.toBeInstanceOf(InvalidKeyError)
      await expect(storage.put('\uff61'.repeat(200), utf8('x'))).rejects.toThrow(/over 1024 bytes/)
    })

    it('reports rewriting identical bytes as a new version, so compare-and-swap cannot be fooled', async () => {
      const storage = new S3Storage({ bucket, prefix, client })
      const { version: v1 } = await storage.put('k', utf8('same'))
      const { version: v2 } = await storage.put('k', utf8('same'))
      expect(v2).not.toBe(v1)
      await expect(storage.put('k', utf8('x'), { ifVersion: v1 })).rejects.toBeInstanceOf(
        ConditionFailedError,
      )
    })
  })

  describe('deleteMany', () => {
    it('deletes 1 500 keys in batches of at most 1 000 and keeps the others', {
      timeout: 120_000,
    }, async () => {
      const storage = new S3Storage({ bucket, prefix, client })
      const keys = Array.from({ length: 1500 }, (_, i) => `d/${String(i).padStart(4, '0')}`)
      let next = 0
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < keys.length) await storage.put(keys[next++] as string, utf8('x'))
        }),
      )
      await storage.put('keep', utf8('x'))
      const counts = countCommands(client)
      await storage.deleteMany([...keys, 'never-written'])
      expect(counts.get('DeleteObjectsCommand')).toBe(2)
      expect(await storage.list('')).toEqual({ keys: ['keep'] })
    })
  })
})
