// Rules for the names users give: workflow ids and step names become parts of storage keys, so
// they are checked here, before anything is written, with errors that say what is wrong.

import { randomBytes } from 'node:crypto'
import { InvalidStepNameError, InvalidWorkflowIdError } from '../errors.js'

/** Longest workflow id accepted, in characters. */
export const MAX_WORKFLOW_ID_LENGTH = 200
/** Longest step name accepted, in characters. */
export const MAX_STEP_NAME_LENGTH = 100

const STEP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/

/** Throws `InvalidWorkflowIdError` unless `id` can name a workflow (1–200 printable characters, no `/` or `\`, not `.` or `..`). */
export function validateWorkflowId(id: unknown): asserts id is string {
  if (typeof id !== 'string') throw new InvalidWorkflowIdError(id, 'a workflow id must be a string')
  if (id.length === 0) throw new InvalidWorkflowIdError(id, 'a workflow id cannot be empty')
  if (id.length > MAX_WORKFLOW_ID_LENGTH) {
    throw new InvalidWorkflowIdError(id, `a workflow id is at most ${MAX_WORKFLOW_ID_LENGTH} characters`)
  }
  if (id === '.' || id === '..') throw new InvalidWorkflowIdError(id, '"." and ".." are not workflow ids')
  if (id.includes('/') || id.includes('\\')) {
    throw new InvalidWorkflowIdError(id, 'a workflow id cannot contain "/" or "\\"')
  }
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i)
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
      throw new InvalidWorkflowIdError(
        id,
        'a workflow id cannot contain control characters (NUL, newline, …)',
      )
    }
  }
  if (id.trim() !== id)
    throw new InvalidWorkflowIdError(id, 'a workflow id cannot start or end with whitespace')
}

/** Throws `InvalidStepNameError` unless `name` is 1–100 of `A-Z a-z 0-9 _ . : -`, not starting with `.`, `:` or `-`. */
export function validateStepName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new InvalidStepNameError(name, 'a step name must be a string')
  if (name.length === 0 || name.length > MAX_STEP_NAME_LENGTH) {
    throw new InvalidStepNameError(name, `a step name has 1 to ${MAX_STEP_NAME_LENGTH} characters`)
  }
  if (!STEP_NAME.test(name)) {
    throw new InvalidStepNameError(
      name,
      'use letters, digits, "_", ".", ":" and "-", starting with a letter, digit or "_"',
    )
  }
}

/** A new random workflow id: time-ordered, so listings show recent workflows last. */
export function newWorkflowId(): string {
  return `wf-${Date.now().toString(36).padStart(9, '0')}-${randomBytes(6).toString('hex')}`
}
