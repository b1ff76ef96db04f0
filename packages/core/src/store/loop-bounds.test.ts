// Every loop that pages or retries against the storage ends: a listing whose `next` does not move
// forward fails with StorageContractError instead of paging for ever, and a compare-and-swap that
// never settles gives up with StorageUnavailableError.

import { expect, it } from 'vitest'
import {
  ConditionFailedError,
  type ListOptions,
  type ListPage,
  MemoryStorage,
  type PutCondition,
  Runtime,
  StorageContractError,
  StorageUnavailableError,
  step,
} from '../index.js'

/** A storage whose listings under `prefix` always say there is more, from the same place. */
class StuckListing extends MemoryStorage {
  stuck = ''
  lists = 0
  override async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    if (!this.stuck || !prefix.startsWith(this.stuck)) return super.list(prefix, options)
    this.lists++
    return { keys: [`${prefix}a`], next: `${prefix}a` }
  }
}

/** A storage on which every compare-and-swap loses, as if another writer always got there first. */
class AlwaysLoses extends MemoryStorage {
  losing = false
  puts = 0
  override async put(key: string, data: Uint8Array, condition?: PutCondition): Promise<{ version: string }> {
    if (this.losing && condition && 'ifVersion' in condition) {
      this.puts++
      throw new ConditionFailedError(key)
    }
    return super.put(key, data, condition)
  }
}

const once = step('lb.once', (n: number) => n + 1)

it('a resume whose step listing never moves forward fails with StorageContractError', async () => {
  const storage = new StuckListing()
  const runtime = new Runtime(storage)
  const handle = await runtime.submit(once(1), { workflowId: 'stuck' })
  storage.stuck = 'workflows/stuck/steps/'
  await expect(runtime.resume(handle.workflowId)).rejects.toBeInstanceOf(StorageContractError)
  expect(storage.lists).toBe(2)
})

it('the sweep of runner records stops on a listing that never moves forward', async () => {
  const storage = new StuckListing()
  const runtime = new Runtime(storage)
  storage.stuck = 'runners/'
  const store = await runtime.store()
  await expect(store.sweepRunners('me', Date.now(), 1000)).rejects.toBeInstanceOf(StorageContractError)
})

it('taking an id out of a start batch gives up when its compare-and-swap never settles', async () => {
  const storage = new AlwaysLoses()
  const store = await new Runtime(storage).store()
  await store.writeStartBatch('r1.1', {
    v: 1,
    runnerId: 'r1',
    createdAt: Date.now(),
    workflowIds: ['a', 'b'],
  })
  storage.losing = true
  const error = await store.removeFromStartBatch('r1.1', 'a').catch((e: unknown) => e)
  expect(error).toBeInstanceOf(StorageUnavailableError)
  expect((error as Error).message).toMatch(/start batch "r1.1"/)
  expect(storage.puts).toBe(256)
})
