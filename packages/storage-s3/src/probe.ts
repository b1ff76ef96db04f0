// The startup probe: five small requests on a throwaway key that prove the server enforces
// conditional PUTs. A server that silently ignores If-None-Match / If-Match would let two runners
// own one lease and commit one step twice; better to refuse it loudly on first use.

import { ConditionFailedError, type PutCondition, StorageConfigError } from '@wf/core'

export interface ProbeTarget {
  bucket: string
  /** A fresh key under the storage's prefix, unique to this probe. */
  key: string
  /** A single-part PUT with settling of ambiguous outcomes, as `S3Storage.put` does it. */
  put(key: string, data: Uint8Array, condition?: PutCondition): Promise<{ version: string }>
  remove(key: string): Promise<void>
}

const HOW_TO_FIX =
  'wf needs an S3 server that enforces If-None-Match: * and If-Match on PutObject (AWS S3 since 2024, Ceph RGW, MinIO). Use such a server, or pass probe: false only if you know it does'

function refuse(target: ProbeTarget, what: string): StorageConfigError {
  return new StorageConfigError(
    `S3 storage refused: the server behind bucket "${target.bucket}" ${what}. ${HOW_TO_FIX}`,
  )
}

/** Resolves when the server enforces both conditions; rejects with `StorageConfigError` when not. */
export async function runProbe(target: ProbeTarget): Promise<void> {
  const body = new TextEncoder().encode('wf conditional-write probe')
  let created = false
  try {
    let first: { version: string }
    try {
      first = await target.put(target.key, body, { ifAbsent: true })
      created = true
    } catch (error) {
      if (error instanceof ConditionFailedError)
        throw refuse(target, 'refused to create a new key with If-None-Match: *')
      throw error
    }
    if (await succeeds(() => target.put(target.key, body, { ifAbsent: true }))) {
      throw refuse(target, 'ignores If-None-Match: * (a second create of the same key succeeded)')
    }
    if (
      await succeeds(() => target.put(target.key, body, { ifVersion: 'ffffffffffffffffffffffffffffffff' }))
    ) {
      throw refuse(target, 'ignores If-Match (a compare-and-swap with a wrong ETag succeeded)')
    }
    if (!(await succeeds(() => target.put(target.key, body, { ifVersion: first.version })))) {
      throw refuse(target, 'rejects If-Match with the very ETag it returned (does it want it quoted?)')
    }
  } catch (error) {
    if (error instanceof StorageConfigError && !error.message.startsWith('S3 storage refused')) {
      throw new StorageConfigError(
        `S3 storage: the startup probe of bucket "${target.bucket}" failed: ${error.message}`,
        {
          cause: error,
        },
      )
    }
    throw error
  } finally {
    // Best effort: list() hides probe keys anyway, and a leftover one is harmless.
    if (created) await target.remove(target.key).catch(() => undefined)
  }
}

async function succeeds(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write()
    return true
  } catch (error) {
    if (error instanceof ConditionFailedError) return false
    throw error
  }
}
