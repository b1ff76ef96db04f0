// The status index as @wf/client lists it (scanStatusIndex in @wf/core/internal): markers merged
// by workflow id in key order, start batches merged in, an unreadable batch reported.
import { describe, expect, it } from 'vitest'
import { MemoryStorage, Runtime, step } from '../index.js'
import { type IndexEntry, scanStatusIndex, storeKeys } from '../internal.js'

const echo = step('index.echo', (x: number) => x)

async function all(scan: AsyncGenerator<IndexEntry>): Promise<IndexEntry[]> {
  const out: IndexEntry[] = []
  for await (const entry of scan) out.push(entry)
  return out
}

describe('scanStatusIndex', () => {
  it('lists each workflow once, in key order, with the statuses it has markers under', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    for (const id of ['b', 'a', 'c']) await runtime.run(echo(1), { workflowId: id })
    const store = await runtime.store()
    // A status change caught in flight: a second marker beside the first.
    await storage.put(storeKeys.index('FAILED', 'b'), new Uint8Array())
    expect(await all(scanStatusIndex(store, undefined, 1))).toEqual([
      { workflowId: 'a', markers: ['SUCCESSFUL'], batched: false, parked: false },
      { workflowId: 'b', markers: ['FAILED', 'SUCCESSFUL'], batched: false, parked: false },
      { workflowId: 'c', markers: ['SUCCESSFUL'], batched: false, parked: false },
    ])
    expect((await all(scanStatusIndex(store, 'a'))).map((e) => e.workflowId)).toEqual(['b', 'c'])
  })

  it('merges the ids of start batches in and reports a batch it cannot read', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    const store = await runtime.store()
    await storage.put(
      storeKeys.startBatch('one'),
      new TextEncoder().encode(
        JSON.stringify({ v: 1, runnerId: 'r', createdAt: 1, workflowIds: ['x', 'y'] }),
      ),
    )
    await storage.put(storeKeys.startBatch('two'), new TextEncoder().encode('{not json'))
    const unreadable: unknown[] = []
    const entries = await all(scanStatusIndex(store, undefined, 1000, (error) => unreadable.push(error)))
    expect(entries).toEqual([
      { workflowId: 'x', markers: [], batched: true, parked: false },
      { workflowId: 'y', markers: [], batched: true, parked: false },
    ])
    expect(unreadable).toHaveLength(1)
  })
})
