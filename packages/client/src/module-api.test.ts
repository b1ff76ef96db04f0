// The module functions, Ray's style: bound to the process-wide runtime that `init()` sets, and
// following a later `init()` to another storage.

import { init, MemoryStorage, step, WorkflowNotFoundError } from '@wf/core'
import { describe, expect, it } from 'vitest'
import * as wf from './index.js'
import {
  cancel,
  deleteWorkflow,
  getMetadata,
  getOutput,
  getStatus,
  listAll,
  resume,
  resumeAll,
} from './index.js'

const triple = step('ma-triple', (n: number) => n * 3)

describe('module functions', () => {
  it('manage workflows of the runtime set by init()', async () => {
    await init({ storage: new MemoryStorage() })
    expect(await triple(2).run({ workflowId: 'one' })).toBe(6)
    expect(await getStatus('one')).toBe('SUCCESSFUL')
    expect(await listAll()).toEqual([{ workflowId: 'one', status: 'SUCCESSFUL' }])
    expect(await getOutput<number>('one')).toBe(6)
    expect(await resume<number>('one')).toBe(6)
    expect(await resumeAll()).toEqual([])
    expect(await getMetadata('one')).toMatchObject({ status: 'SUCCESSFUL' })
    expect(await getMetadata('one', { stepId: 'ma-triple' })).toMatchObject({ status: 'SUCCESSFUL' })
    await cancel('one')
    await deleteWorkflow('one')
    await expect(getStatus('one')).rejects.toBeInstanceOf(WorkflowNotFoundError)
  })

  it('export delete under its Ray name', async () => {
    await init({ storage: new MemoryStorage() })
    await triple(1).run({ workflowId: 'two' })
    expect(wf.delete).toBe(deleteWorkflow)
    await wf.delete('two')
    expect(await wf.listAll()).toEqual([])
  })

  it('follow a later init() to another storage', async () => {
    await init({ storage: new MemoryStorage() })
    await triple(1).run({ workflowId: 'first-store' })
    await init({ storage: 'memory://module-api-other' })
    expect(await listAll()).toEqual([])
    await expect(getStatus('first-store')).rejects.toBeInstanceOf(WorkflowNotFoundError)
  })
})
