// Test support: "a place" for the process tests, that is one storage the child processes open by
// URI and the test opens too. On a real folder (@wf/storage-fs) or, when WF_S3_ENDPOINT is set and
// @wf/storage-s3 is built, on a bucket of its own on the S3 gateway. @wf/client does not depend on
// @wf/storage-s3: its dist and its AWS SDK are loaded from that package's folder.

import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Storage } from '@wf/core'
import { fromUri } from '@wf/storage-fs'

const storageS3Dir = fileURLToPath(new URL('../../../storage-s3', import.meta.url))
const storageS3Dist = join(storageS3Dir, 'dist/index.js')
const endpoint = process.env.WF_S3_ENDPOINT || undefined
const accessKeyId = process.env.WF_S3_ACCESS_KEY_ID || 'S3RVER'
const secretAccessKey = process.env.WF_S3_SECRET_ACCESS_KEY || 'S3RVER'

/** The S3 gateway the tests use, from the environment (the credentials default to S3rver's). */
export const s3 = {
  endpoint,
  accessKeyId,
  secretAccessKey,
  /** Whether the S3 cases run: a gateway is named and @wf/storage-s3 is built. */
  available: endpoint !== undefined && existsSync(storageS3Dist),
  /** What a child process needs in its environment to open an `s3://` URI on the gateway. */
  childEnv: {
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  },
  /** @wf/storage-s3's folder, for a test app's node_modules. */
  packageDir: storageS3Dir,
}

/** Says once, for the test file `file`, that its S3 cases are skipped (when they are). */
export function warnIfS3Skipped(file: string): void {
  if (!s3.available)
    console.warn(`${file}: no WF_S3_ENDPOINT (or no storage-s3 build): the S3 cases are skipped`)
}

/** A storage as the child processes open it (`uri`) and as the test opened it (`storage`). */
export interface Place {
  /** What the child processes (or `wf --storage`) are given. */
  uri: string
  /** The same storage, opened in this process. */
  storage: Storage
  /** Closes `storage` and removes what the place made (a folder; a bucket is left, see openS3Place). */
  close(): Promise<void>
}

/** A place in a new folder: its `uri` is a file URL with `?durability=` (default 'none'). */
export async function openFolderPlace(
  prefix: string,
  options: { durability?: 'none' | 'journal' | 'fsync'; parent?: string } = {},
): Promise<Place & { dir: string }> {
  const dir = await mkdtemp(join(options.parent ?? tmpdir(), prefix))
  const uri = `${pathToFileURL(dir).href}?durability=${options.durability ?? 'none'}`
  const storage = await fromUri(uri)
  return {
    uri,
    storage,
    dir,
    async close() {
      await storage.close?.()
      await rm(dir, { recursive: true, force: true, maxRetries: 3 })
    },
  }
}

/** The few parts of `@aws-sdk/client-s3` used here. */
interface S3Sdk {
  S3Client: new (
    config: object,
  ) => { send(command: object): Promise<{ Contents?: { Key?: string }[] }>; destroy(): void }
  CreateBucketCommand: new (input: object) => object
  ListObjectsV2Command: new (input: object) => object
  DeleteObjectsCommand: new (input: object) => object
  DeleteBucketCommand: new (input: object) => object
}

/** The parts of @wf/storage-s3's dist the tests use. */
export interface StorageS3Module {
  fromUri(uri: string): Promise<Storage>
  S3Storage: new (options: {
    bucket: string
    prefix: string
    endpoint: string
    credentials: { accessKeyId: string; secretAccessKey: string }
  }) => Storage
}

/** @wf/storage-s3's dist (check `s3.available` first). */
export async function importStorageS3(): Promise<StorageS3Module> {
  return (await import(pathToFileURL(storageS3Dist).href)) as StorageS3Module
}

/** Sets this process's AWS credentials to the gateway's (the SDK and `fromUri` read them). */
function useS3Credentials(): void {
  Object.assign(process.env, s3.childEnv)
}

function s3Client(): { sdk: S3Sdk; client: InstanceType<S3Sdk['S3Client']> } {
  useS3Credentials()
  const sdk = createRequire(join(storageS3Dir, 'package.json'))('@aws-sdk/client-s3') as S3Sdk
  const client = new sdk.S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  })
  return { sdk, client }
}

/** A new bucket on the gateway, named `<prefix>-<random>`, and how to remove it with all its keys. */
export async function createS3Bucket(prefix: string): Promise<{ bucket: string; remove(): Promise<void> }> {
  const bucket = `${prefix}-${randomBytes(4).toString('hex')}`
  const { sdk, client } = s3Client()
  try {
    await client.send(new sdk.CreateBucketCommand({ Bucket: bucket }))
  } finally {
    client.destroy()
  }
  return {
    bucket,
    async remove() {
      const { sdk, client } = s3Client()
      try {
        for (;;) {
          const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }))
          const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key as string }))
          if (keys.length === 0) break
          await client.send(new sdk.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }))
        }
        await client.send(new sdk.DeleteBucketCommand({ Bucket: bucket }))
      } finally {
        client.destroy()
      }
    },
  }
}

/**
 * A place in a new bucket named `<prefix>-<random>` (keys under `keys`, default 'p'), opened through
 * @wf/storage-s3's `fromUri`. `close` closes the storage and, with `removeBucket`, removes the
 * bucket; without it the bucket is left to the gateway's test space (its keys are tiny).
 */
export async function openS3Place(
  prefix: string,
  options: { keys?: string; removeBucket?: boolean } = {},
): Promise<Place & { bucket: string }> {
  const { bucket, remove } = await createS3Bucket(prefix)
  const uri = `s3://${bucket}/${options.keys ?? 'p'}?region=us-east-1&endpoint=${encodeURIComponent(s3.endpoint as string)}&forcePathStyle=true`
  // fromUri takes the credentials from the SDK's chain (the environment), as an application's would.
  const storage = await (await importStorageS3()).fromUri(uri)
  return {
    uri,
    storage,
    bucket,
    async close() {
      await storage.close?.()
      if (options.removeBucket) await remove()
    },
  }
}
