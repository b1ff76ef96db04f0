// The whole-store survey `wf doctor` runs and the key reading its hints use, on a memory storage
// with keys written directly: ids come from records, markers and start batches alike.

import { describe, expect, it } from 'vitest'
import { CorruptRecordError } from '../errors.js'
import { storeKeys } from '../model/records.js'
import { MemoryStorage } from '../storage/memory-storage.js'
import { surveyedKeys, surveyStore, workflowIdOfKey } from './check.js'
import { WorkflowStore } from './store.js'

const utf8 = (text: string) => new TextEncoder().encode(text)

describe('surveyStore', () => {
  it('finds every id named by a key, a marker or a start batch, with the keys of each', async () => {
    const storage = new MemoryStorage()
    const store = new WorkflowStore(storage)
    await storage.put(storeKeys.step('a', 's1'), utf8('{}'))
    await storage.put(storeKeys.index('FAILED', 'a'), new Uint8Array())
    await storage.put(storeKeys.index('PENDING', 'b'), new Uint8Array())
    await store.writeStartBatch('r1.1', { v: 1, runnerId: 'r1', createdAt: 5, workflowIds: ['a', 'c'] })
    await storage.put(storeKeys.startBatch('r2.1'), utf8('{"v":2}'))
    const unreadable: CorruptRecordError[] = []
    const survey = await surveyStore(store, (error) => unreadable.push(error))
    expect(survey.workflowIds).toEqual(['a', 'b', 'c'])
    expect(survey.batches).toEqual([
      {
        name: 'r1.1',
        key: storeKeys.startBatch('r1.1'),
        runnerId: 'r1',
        createdAt: 5,
        workflowIds: ['a', 'c'],
      },
    ])
    expect(unreadable.map((e) => e.key)).toEqual([storeKeys.startBatch('r2.1')])
    expect(surveyedKeys(survey, 'a')).toEqual([
      storeKeys.step('a', 's1'),
      storeKeys.index('FAILED', 'a'),
      storeKeys.startBatch('r1.1'),
    ])
    expect(surveyedKeys(survey, 'b')).toEqual([storeKeys.index('PENDING', 'b')])
    expect(surveyedKeys(survey, 'nobody')).toEqual([])
  })

  it('stops when the callback throws for an unreadable start batch', async () => {
    const store = new WorkflowStore(new MemoryStorage())
    await store.storage.put(storeKeys.startBatch('r.1'), utf8('not json'))
    await expect(
      surveyStore(store, (error) => {
        throw error
      }),
    ).rejects.toBeInstanceOf(CorruptRecordError)
  })
})

describe('workflowIdOfKey', () => {
  it('names the workflow of a key under workflows/<id>/ and nothing for other keys', () => {
    expect(workflowIdOfKey(storeKeys.workflow('w-1'))).toBe('w-1')
    expect(workflowIdOfKey(storeKeys.step('w-1', 'a~b'))).toBe('w-1')
    expect(workflowIdOfKey(storeKeys.startBatch('r.1'))).toBeUndefined()
    expect(workflowIdOfKey(storeKeys.index('FAILED', 'w-1'))).toBeUndefined()
    expect(workflowIdOfKey('workflows/')).toBeUndefined()
  })
})
