// @wf/core/testing: the storage conformance suite, which every backend in this repository runs and a
// third-party plugin runs in its own tests with one call, so "implements Storage" means one thing;
// and interceptStorage, a storage in front of another that counts, holds back or fails calls.

import { afterEach, beforeEach, describe } from 'vitest'
import type { Storage } from '../storage/storage.js'
import { describeConcurrency } from './contract-concurrency.js'
import { describeList } from './contract-list.js'
import { describeValues } from './contract-values.js'
import type { ContractContext } from './support.js'

export { type InterceptedMethod, interceptStorage, type StorageHooks } from './intercept.js'

/** Options of `describeStorageContract`. The defaults are the contract; lower them only for a slow medium. */
export interface StorageContractOptions {
  /** Timeout of each test and of each `createStorage` / cleanup call, in milliseconds. Default 60 000. */
  timeoutMs?: number
  /** Size of the large-value round trip, in bytes. Default 8 MiB + 1 byte (past common 8 MiB part sizes). */
  largeValueBytes?: number
  /** How many keys the pagination test writes and lists back. Default 2 500. */
  keyCount?: number
  /**
   * Called after each test, before `close()`, with that test's storage: delete what the test
   * wrote when the medium outlives the storage object (a bucket, a database).
   */
  cleanup?: (storage: Storage) => void | Promise<void>
}

/** 8 MiB + 1 byte: one byte past the part size multipart uploads and many buffers default to. */
export const DEFAULT_LARGE_VALUE_BYTES = 8 * 1024 * 1024 + 1
/** Enough keys for pagination to cross S3's 1 000-key pages twice. */
export const DEFAULT_KEY_COUNT = 2_500
export const DEFAULT_TIMEOUT_MS = 60_000

/**
 * Registers the storage conformance suite with vitest: round trips of binary, empty and large
 * values, versions, atomic puts under concurrent readers, create-if-absent and compare-and-swap
 * raced by 50 parallel writers, `list` order, `after`, `limit` and pagination over thousands of
 * keys, prefixes that are keys themselves, unusual characters in keys, `delete`, `deleteMany`
 * when present, and the key rules (`InvalidKeyError`).
 *
 * Call it at the top level of a test file. Each test gets its own storage from `createStorage`,
 * which must be empty (for a shared medium, give each call a fresh prefix, bucket or directory);
 * after the test, `options.cleanup` and then `close()` are called on it.
 *
 * Errors are recognised by class or by their stable `code` (`WF_CONDITION_FAILED`,
 * `WF_INVALID_KEY`), so a backend built against another copy of `@wf/core` passes too.
 *
 * @param name - Shown in the suite's title: `storage contract: <name>`.
 * @param createStorage - Returns a fresh, empty storage; called before every test.
 * @param options - Timeouts and sizes for slow media, and a cleanup hook.
 *
 * @example
 * ```ts
 * // my-storage.test.ts
 * import { describeStorageContract } from '@wf/core/testing'
 * import { mkdtemp, rm } from 'node:fs/promises'
 * import { tmpdir } from 'node:os'
 * import { join } from 'node:path'
 * import { MyStorage } from './my-storage.js'
 *
 * describeStorageContract(
 *   'MyStorage',
 *   async () => new MyStorage(await mkdtemp(join(tmpdir(), 'my-storage-'))),
 *   { cleanup: (storage) => rm((storage as MyStorage).dir, { recursive: true, force: true }) },
 * )
 * ```
 */
export function describeStorageContract(
  name: string,
  createStorage: () => Storage | Promise<Storage>,
  options: StorageContractOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  let current: Storage | undefined
  const ctx: ContractContext = {
    storage() {
      if (current === undefined) throw new Error('createStorage() did not give this test a storage')
      return current
    },
    timeoutMs,
    largeValueBytes: options.largeValueBytes ?? DEFAULT_LARGE_VALUE_BYTES,
    keyCount: options.keyCount ?? DEFAULT_KEY_COUNT,
  }

  describe(`storage contract: ${name}`, () => {
    beforeEach(async () => {
      current = await createStorage()
    }, timeoutMs)

    afterEach(async () => {
      const storage = current
      current = undefined
      if (storage === undefined) return
      try {
        await options.cleanup?.(storage)
      } finally {
        await storage.close?.()
      }
    }, timeoutMs)

    describeValues(ctx)
    describeConcurrency(ctx)
    describeList(ctx)
  })
}
