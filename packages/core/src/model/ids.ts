// Rules for what users give: workflow ids and step names become parts of storage keys, and
// metadata is stored as JSON, so they are checked here, before anything is written, with errors
// that say what is wrong and where.

import { randomBytes } from 'node:crypto'
import { InvalidOptionsError, InvalidStepNameError, InvalidWorkflowIdError } from '../errors.js'

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

/** Throws `InvalidOptionsError` unless `name` is a valid event name (the step-name rules). */
export function validateEventName(name: unknown, where: string): asserts name is string {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > MAX_STEP_NAME_LENGTH ||
    !STEP_NAME.test(name)
  ) {
    throw new InvalidOptionsError(
      `${where}: an event name has 1 to ${MAX_STEP_NAME_LENGTH} letters, digits, "_", ".", ":" and "-", starting with a letter, digit or "_", got ${JSON.stringify(name) ?? String(name)}`,
    )
  }
}

/** A new random workflow id: time-ordered, so listings show recent workflows last. */
export function newWorkflowId(): string {
  return `wf-${Date.now().toString(36).padStart(9, '0')}-${randomBytes(6).toString('hex')}`
}

/** Where `key` of an object at `path` is: `path.key`, or `path["odd key"]`. */
function member(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`
}

/** What is wrong with `value` as JSON, at `path`, or `undefined` when it is JSON through and through. */
function jsonProblem(value: unknown, path: string, open: Set<object>): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined
  if (typeof value === 'number') {
    return Number.isFinite(value) ? undefined : `${path} is ${String(value)}, which JSON cannot hold`
  }
  if (typeof value !== 'object') {
    const what = typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`
    return `${path} is ${what}, which JSON cannot hold`
  }
  if (open.has(value)) return `${path} refers back to an object that contains it (a cycle)`
  const isArray = Array.isArray(value)
  const proto = Object.getPrototypeOf(value)
  if (!isArray && proto !== Object.prototype && proto !== null) {
    const name = (proto?.constructor as { name?: string } | undefined)?.name || 'an unnamed class'
    return `${path} is an instance of ${name}, not a plain object (turn it into strings, numbers, arrays and plain objects)`
  }
  open.add(value)
  try {
    if (isArray) {
      for (let i = 0; i < value.length; i++) {
        const problem = jsonProblem(value[i], `${path}[${i}]`, open)
        if (problem) return problem
      }
      return undefined
    }
    if (Object.getOwnPropertySymbols(value).length > 0)
      return `${path} has symbol keys, which JSON cannot hold`
    for (const [key, item] of Object.entries(value)) {
      const problem = jsonProblem(item, member(path, key), open)
      if (problem) return problem
    }
    return undefined
  } finally {
    open.delete(value)
  }
}

/**
 * Throws `InvalidOptionsError` unless `metadata` is a plain JSON object: nested plain objects and
 * arrays of strings, finite numbers, booleans and null (as Ray Workflows requires), naming the
 * path of the first value that is not (`metadata.owner.since is an instance of Date, …`).
 * `where` says whose metadata it is.
 */
export function validateMetadata(
  metadata: unknown,
  where: string,
): asserts metadata is { [key: string]: unknown } {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new InvalidOptionsError(`${where}: metadata must be a plain JSON object`)
  }
  const problem = jsonProblem(metadata, 'metadata', new Set())
  if (problem) throw new InvalidOptionsError(`${where}: metadata must be JSON: ${problem}`)
}
