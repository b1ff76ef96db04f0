// The storage conformance suite of @wf/core against a real S3 server (Ceph RGW in CI): one bucket
// for this file, a fresh prefix per test, emptied afterwards.

import { describeStorageContract } from '@wf/core/testing'
import { afterAll, beforeAll } from 'vitest'
import { describeS3, emptyPrefix, endpoint, freshBucket, testClient, uniqueName } from './__tests__/s3-env.js'
import { S3Storage } from './s3-storage.js'

describeS3('S3Storage on a real S3 server', () => {
  let bucket = ''
  let remove: () => Promise<void> = async () => {}
  const cleaner = testClient()

  beforeAll(async () => {
    ;({ bucket, remove } = await freshBucket('contract'))
  })
  afterAll(async () => {
    cleaner.destroy()
    await remove()
  })

  describeStorageContract(
    'S3Storage',
    () =>
      new S3Storage({
        bucket,
        prefix: uniqueName('t'),
        endpoint,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', ...credentialsFromEnv() },
      }),
    {
      // The default keyCount (2 500) is kept; the timeout is doubled for a loaded CI machine.
      timeoutMs: 120_000,
      cleanup: (storage) => emptyPrefix(cleaner, bucket, (storage as S3Storage).prefix),
    },
  )
})

function credentialsFromEnv(): { accessKeyId?: string; secretAccessKey?: string } {
  const { WF_S3_ACCESS_KEY_ID: accessKeyId, WF_S3_SECRET_ACCESS_KEY: secretAccessKey } = process.env
  return { ...(accessKeyId ? { accessKeyId } : {}), ...(secretAccessKey ? { secretAccessKey } : {}) }
}
