// Every core error class has its code in WF_ERROR_CODES, and the renamed classes keep their old names.
import { describe, expect, it } from 'vitest'
import * as core from './index.js'
import {
  InternalError,
  IsolateExitedError,
  WF_ERROR_CODES,
  WfError,
  WorkflowCanceledError,
  WorkflowCancelledError,
  WorkflowCodeChangedError,
} from './index.js'

describe('errors', () => {
  it('exports every class of the code table from @wf/core, each a WfError', () => {
    for (const name of Object.keys(WF_ERROR_CODES)) {
      const Class = (core as Record<string, unknown>)[name]
      expect(typeof Class, name).toBe('function')
      expect((Class as { prototype: unknown }).prototype, name).toBeInstanceOf(WfError)
    }
  })

  it('gives each error the code the table names for its class', () => {
    const errors: WfError[] = [
      new WorkflowCanceledError('w'),
      new IsolateExitedError('s', 's', 'thread', { code: 1, signal: null }),
      new WorkflowCodeChangedError('w', [{ what: 'step:s', before: 'a', after: 'b' }]),
      new InternalError('broken'),
      new core.NotInStepError(),
      new core.StepAbortedError(),
    ]
    for (const error of errors) {
      expect(error.code).toBe(WF_ERROR_CODES[error.name as keyof typeof WF_ERROR_CODES])
    }
  })

  it('keeps WorkflowCancelledError as the same class as WorkflowCanceledError', () => {
    expect(WorkflowCancelledError).toBe(WorkflowCanceledError)
    const error: WorkflowCancelledError = new WorkflowCancelledError('w')
    expect(error).toBeInstanceOf(WorkflowCanceledError)
    expect(error.code).toBe('WF_CANCELED')
  })
})
