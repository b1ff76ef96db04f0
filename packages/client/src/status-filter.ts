// Checks a status filter given by a user (a string, an array, a Set…) and turns it into a set,
// with an error that lists the valid statuses.

import { InvalidOptionsError, WORKFLOW_STATUSES, type WorkflowStatus } from '@wf/core'
import type { StatusFilter } from './types.js'

function isStatus(value: unknown): value is WorkflowStatus {
  return typeof value === 'string' && (WORKFLOW_STATUSES as readonly string[]).includes(value)
}

/** The statuses a filter lets through; `undefined` means every status. */
export function parseStatusFilter(filter: StatusFilter | undefined | null): Set<WorkflowStatus> | undefined {
  if (filter === undefined || filter === null) return undefined
  const valid = WORKFLOW_STATUSES.join(', ')
  if (typeof filter === 'string') {
    if (!isStatus(filter)) throw new InvalidOptionsError(`unknown status "${filter}": use one of ${valid}`)
    return new Set([filter])
  }
  if (typeof (filter as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new InvalidOptionsError(`a status filter is a status or an iterable of statuses (${valid})`)
  }
  const out = new Set<WorkflowStatus>()
  for (const status of filter as Iterable<unknown>) {
    if (!isStatus(status)) {
      throw new InvalidOptionsError(`unknown status ${JSON.stringify(status)}: use one of ${valid}`)
    }
    out.add(status)
  }
  return out
}
