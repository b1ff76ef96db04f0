// Records a listing could not read: reported beside the workflows it could (`errors`), so that
// one corrupt record never hides the others. Only unreadable records are reported; any other
// failure (the storage unreachable) still fails the listing, which could not be trusted.

import { CorruptRecordError } from '@wf/core'
import type { UnreadableWorkflow } from './types.js'

/** A record that cannot be read, as listings report it; other errors (storage down) are thrown. */
export function unreadable(error: unknown, workflowId?: string): UnreadableWorkflow {
  if (!(error instanceof CorruptRecordError)) throw error
  const entry: UnreadableWorkflow = { key: error.key, code: error.code, message: error.message }
  return workflowId === undefined ? entry : { workflowId, ...entry }
}

/** An array of workflows with the unreadable ones in a non-enumerable `errors` (see `WorkflowList`). */
export function withErrors<T>(
  items: T[],
  errors: UnreadableWorkflow[],
): T[] & { readonly errors: UnreadableWorkflow[] } {
  return Object.defineProperty(items, 'errors', { value: errors, enumerable: false }) as T[] & {
    readonly errors: UnreadableWorkflow[]
  }
}
