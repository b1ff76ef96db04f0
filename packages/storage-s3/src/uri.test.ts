// s3:// URIs (what core's init() and WF_STORAGE pass to fromUri) and option checking: every
// mistake a user can make gets a StorageConfigError that says what to change. No server needed.

import { StorageConfigError } from '@wf/core'
import { describe, expect, it } from 'vitest'
import { testClient } from './__tests__/s3-env.js'
import { createS3Storage, fromUri, parseS3Uri, S3Storage } from './index.js'

describe('parseS3Uri', () => {
  it('reads the bucket, the prefix and every query parameter', () => {
    expect(
      parseS3Uri(
        's3://my-bucket/some/prefix?region=eu-west-1&endpoint=http://127.0.0.1:7480&forcePathStyle=true&probe=false&retryBudgetMs=5000&socketTimeoutMs=2000',
      ),
    ).toEqual({
      bucket: 'my-bucket',
      prefix: '/some/prefix',
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:7480',
      forcePathStyle: true,
      probe: false,
      retryBudgetMs: 5000,
      socketTimeoutMs: 2000,
    })
  })

  it('accepts a bare bucket, a trailing slash and a %-escaped prefix', () => {
    expect(parseS3Uri('s3://b1')).toEqual({ bucket: 'b1', prefix: '' })
    expect(parseS3Uri('s3://b1/')).toEqual({ bucket: 'b1', prefix: '/' })
    expect(parseS3Uri('s3://b1/with%20space/')).toEqual({ bucket: 'b1', prefix: '/with space/' })
  })

  it.each([
    ['http://bucket/prefix', /must start with s3:\/\//],
    ['s3://', /bucket name is missing|not a valid URL/],
    ['s3:///prefix', /bucket name is missing/],
    ['s3://key:secret@bucket/p', /credentials do not belong in the URI/],
    ['s3://bucket:9000/p', /port belongs in the endpoint/],
    ['s3://bucket/p?regoin=us-east-1', /unknown parameter "regoin" \(known: region, endpoint/],
    ['s3://bucket/p?forcePathStyle=yes', /forcePathStyle must be true or false/],
    ['s3://bucket/p?retryBudgetMs=soon', /retryBudgetMs must be a whole number/],
    ['s3://bucket/p%zz', /broken %-escape/],
    ['s3://bucket/p#frag', /#fragment/],
  ])('rejects %s with a StorageConfigError that says what to fix', (uri, message) => {
    const error = (() => {
      try {
        parseS3Uri(uri)
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(StorageConfigError)
    expect((error as Error).message).toMatch(message)
    expect((error as Error).message).toMatch(/s3:\/\/my-bucket\/wf\/prod/)
  })

  it('never echoes credentials written into a URI', () => {
    expect(() => parseS3Uri('s3://AKIAEXAMPLE:topsecret@bucket/p')).toThrow(/s3:\/\/\*\*\*@bucket/)
    expect(() => parseS3Uri('s3://AKIAEXAMPLE:topsecret@bucket/p')).not.toThrow(/topsecret/)
  })
})

describe('fromUri', () => {
  it('opens an S3Storage on the bucket and normalised prefix, without sending anything', async () => {
    const storage = await fromUri('s3://my-bucket/wf/prod/?endpoint=http://127.0.0.1:1&probe=false')
    expect(storage).toBeInstanceOf(S3Storage)
    expect(storage.bucket).toBe('my-bucket')
    expect(storage.prefix).toBe('wf/prod/')
    expect(await storage.client.config.region()).toBe('us-east-1')
    expect(await storage.client.config.forcePathStyle).toBe(true)
    await storage.close()
  })

  it.each([
    ['s3://my-bucket/p?endpoint=ftp://host', /"endpoint" must be an http:\/\/ or https:\/\/ URL/],
    ['s3://my-bucket/p?endpoint=not a url', /"endpoint" must be an http/],
    ['s3://my-bucket/p?region=us east', /"region" must be a region name/],
    ['s3://my-bucket/a/../b', /not a valid path|"\.\." segments/],
    ['s3://b/p', /not a bucket name/],
  ])('rejects %s with a StorageConfigError', async (uri, message) => {
    await expect(fromUri(uri)).rejects.toThrow(message)
    await expect(fromUri(uri)).rejects.toBeInstanceOf(StorageConfigError)
  })
})

describe('createS3Storage options', () => {
  const fails = (options: Parameters<typeof createS3Storage>[0], message: RegExp) => {
    expect(() => createS3Storage(options)).toThrow(StorageConfigError)
    expect(() => createS3Storage(options)).toThrow(message)
  }

  it('requires a bucket', () => {
    fails({} as Parameters<typeof createS3Storage>[0], /"bucket" option is required/)
    fails({ bucket: 'bucket/with/prefix' }, /put folders in "prefix"/)
  })

  it('refuses a client together with client settings', () => {
    const client = testClient()
    fails(
      { bucket: 'bkt', client, region: 'eu-west-1' },
      /either "client" or client settings, not both \(region\)/,
    )
    client.destroy()
  })

  it('checks numbers and booleans', () => {
    fails({ bucket: 'bkt', retryBudgetMs: -1 }, /"retryBudgetMs" must be a whole number/)
    fails(
      { bucket: 'bkt', maxSinglePutBytes: 6 * 1024 ** 3 },
      /"maxSinglePutBytes" must be a whole number of bytes from 1 to 5 GiB/,
    )
    fails({ bucket: 'bkt', probe: 'no' as unknown as boolean }, /"probe" must be true or false/)
  })

  it('refuses prefixes that would break keys or the 1024-byte S3 limit', () => {
    fails({ bucket: 'bkt', prefix: 'a//b' }, /not a valid path/)
    fails({ bucket: 'bkt', prefix: 'x'.repeat(200) }, /longer than 124 bytes/)
  })

  it('normalises the prefix to end with one slash, and the root to ""', () => {
    expect(
      createS3Storage({ bucket: 'bkt', prefix: '/wf/prod//', endpoint: 'http://127.0.0.1:1' }).prefix,
    ).toBe('wf/prod/')
    expect(createS3Storage({ bucket: 'bkt', prefix: '/', endpoint: 'http://127.0.0.1:1' }).prefix).toBe('')
  })

  it('keeps a client it was given open on close()', async () => {
    const client = testClient()
    const storage = createS3Storage({ bucket: 'bkt', client })
    await storage.close()
    expect(storage.client).toBe(client)
    await expect(storage.get('k')).rejects.toThrow(/closed/)
    client.destroy()
  })
})
