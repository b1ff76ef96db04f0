// S3-specific behaviour beyond the shared contract: multipart for big unconditional values, the
// single-PUT limit for conditional ones, object layout (prefix, header, keys
// stored as given), batches.

import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import {
  ConditionFailedError,
  CorruptRecordError,
  compareKeys,
  InvalidKeyError,
  StorageConfigError,
} from '@wf/core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { countCommands, describeS3, freshBucket, testClient, uniqueName } from './__tests__/s3-env.js'
import { decodeListedName, fitsInXml } from './s3-keys.js'
import { S3Storage } from './s3-storage.js'

const utf8 = (s: string) => new TextEncoder().encode(s)
const MiB = 1024 * 1024

function pattern(size: number, seed: number): Uint8Array {
  const data = new Uint8Array(size)
  for (let i = 0; i < size; i++) data[i] = (i * 31 + seed) & 0xff
  return data
}

describe('listed S3 object names', () => {
  it('are decoded from EncodingType=url as AWS (space as "+") and RGW (space as %20) send them', () => {
    expect(decodeListedName('w%2Fa+b%2Bc%20d', 'url')).toBe('w/a b+c d')
    expect(decodeListedName('w%2F%EF%BF%BF%F0%9F%98%80%25', 'url')).toBe('w/\uffff😀%')
  })

  it('are taken as they are from a server that ignored EncodingType', () => {
    expect(decodeListedName('w/a+b%20', undefined)).toBe('w/a+b%20')
  })

  it('go into DeleteObjects bodies unless they hold U+FFFE or U+FFFF, which XML 1.0 cannot carry', () => {
    for (const key of ['a/b', 'w/\ue000', 'w/\ufffd', 'w/😀', 'w/\u{10FFFF}', `w/q'"<&>`]) {
      expect(fitsInXml(key)).toBe(true)
    }
    expect(fitsInXml('w/\ufffe')).toBe(false)
    expect(fitsInXml('w/a\uffff')).toBe(false)
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

    it('stores each key as its object name, as given, and lists them in UTF-8 byte order', async () => {
      const storage = new S3Storage({ bucket, prefix, client })
      // Around the old UTF-16 escaping: U+E000–U+FFFF, U+FFFE/U+FFFF (not XML), above U+FFFF.
      const keys = ['w/a', 'w/\ue000', 'w/\uff61', 'w/\ufffe', 'w/\uffff', 'w/😀', 'w/\u{10FFFF}', 'w/a b+c%']
      for (const key of keys) await storage.put(key, utf8(key))
      const raw = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/w/` }))
      const names = (raw.Contents ?? []).map((o) => o.Key)
      expect(new Set(names)).toEqual(new Set(keys.map((key) => `${prefix}/${key}`)))
      const sorted = [...keys].sort(compareKeys)
      expect((await storage.list('w/')).keys).toEqual(sorted)
      // `after` in the contract's order: JavaScript's < would put the emoji before U+FF61.
      expect((await storage.list('w/', { after: 'w/\uff61' })).keys).toEqual(
        sorted.filter((key) => compareKeys(key, 'w/\uff61') > 0),
      )
      expect((await storage.list('w/\uff61', { after: 'w/😀' })).keys).toEqual([])
      for (const key of keys) expect(Buffer.from((await storage.get(key))?.data ?? []).toString()).toBe(key)
      // U+FFFE/U+FFFF cannot go in a DeleteObjects body: deleteMany still removes every key.
      await storage.deleteMany(keys)
      expect(await storage.list('')).toEqual({ keys: [] })
    })

    it('fits the longest key under the longest prefix in an S3 object name', async () => {
      const longPrefix = `${prefix}/${'p'.repeat(123 - prefix.length - 1)}`
      const storage = new S3Storage({ bucket, prefix: longPrefix, client, probe: false })
      const key = '\uff61'.repeat(300) // 900 bytes, MAX_KEY_BYTES
      await storage.put(key, utf8('x'))
      expect((await storage.list('')).keys).toEqual([key])
      expect(Buffer.from((await storage.get(key))?.data ?? []).toString()).toBe('x')
    })

    it('reserves the probe folder and hides it from listings', async () => {
      const storage = new S3Storage({ bucket, prefix, client, probe: false })
      await expect(storage.put('.wf-s3-probe/x', utf8('x'))).rejects.toBeInstanceOf(InvalidKeyError)
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/.wf-s3-probe/left-over`, Body: utf8('x') }),
      )
      await storage.put('.wf-s3-probe-not', utf8('x'))
      expect((await storage.list('')).keys).toEqual(['.wf-s3-probe-not'])
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
