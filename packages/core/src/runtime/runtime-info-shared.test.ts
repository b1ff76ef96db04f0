// The runtime info a record carries is the process's, shared by every workflow it submits: a
// workflow whose graph is stored apart carries its steps' fingerprints in a copy, never in the
// shared object (which then leaked into every later record of the process).
import { describe, expect, it } from 'vitest'
import { MemoryStorage, Runtime, step } from '../index.js'
import type { WorkflowRecord } from '../model/records.js'

async function record(storage: MemoryStorage, workflowId: string): Promise<WorkflowRecord> {
  const found = await storage.get(`workflows/${workflowId}/workflow`)
  if (!found) throw new Error(`no record for ${workflowId}`)
  return JSON.parse(Buffer.from(found.data).toString('utf8')) as WorkflowRecord
}

describe('the runtime info of records', () => {
  it('gives a large graph its fingerprints without changing what later small ones carry', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    const label = step('runtime-info-shared.label', (text: string) => text.length)
    const join = step('runtime-info-shared.join', (...counts: number[]) => counts.length)
    // Large arguments: the graph is stored apart, and the record carries the fingerprints.
    const large = join(...Array.from({ length: 40 }, (_, i) => label(`${i}:${'x'.repeat(1000)}`)))
    expect(await runtime.run(large, { workflowId: 'large' })).toBe(40)
    expect(await runtime.run(label('small'), { workflowId: 'small' })).toBe(5)
    const big = await record(storage, 'large')
    expect(typeof big.graph).toBe('string')
    expect(big.runtime?.steps).toMatchObject({ 'runtime-info-shared.label': expect.any(String) })
    const small = await record(storage, 'small')
    expect(typeof small.graph).toBe('object')
    expect(small.runtime?.steps).toBeUndefined()
    await runtime.close()
  })
})
