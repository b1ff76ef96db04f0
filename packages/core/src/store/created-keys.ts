// The keys of the creation-time index (see created-index.ts), apart from the listing and the
// repair so that store.ts can name them without importing what imports it.

import type { WorkflowRecord } from '../model/records.js'

export const CREATED_PREFIX = 'created/'
/** Creation times are inverted against this (the largest 13-digit number: year 2286). */
export const INVERT = 9_999_999_999_999
const DIGITS = 13

/** The inverted, zero-padded creation time of a key: newest sorts first. */
export function invertedTime(createdAt: number): string {
  const ms = Math.min(INVERT, Math.max(0, Math.floor(createdAt)))
  return String(INVERT - ms).padStart(DIGITS, '0')
}

/** The creation-time index key of a workflow created at `createdAt` (ms since the epoch). */
export function createdKey(createdAt: number, workflowId: string): string {
  return `${CREATED_PREFIX}${invertedTime(createdAt)}-${workflowId}`
}

/** The creation-time index key a record should have. */
export function createdKeyOf(record: WorkflowRecord): string {
  return createdKey(record.createdAt, record.workflowId)
}

/** A workflow as the creation-time index lists it. */
export interface CreatedEntry {
  key: string
  workflowId: string
  /** Its creation time, ms since the epoch, as the key says. */
  createdAt: number
}

/** The entry a key stands for, or `undefined` for a key of another shape. */
export function parseCreatedKey(key: string): CreatedEntry | undefined {
  if (!key.startsWith(CREATED_PREFIX) || key[CREATED_PREFIX.length + DIGITS] !== '-') return undefined
  const digits = key.slice(CREATED_PREFIX.length, CREATED_PREFIX.length + DIGITS)
  if (!/^\d{13}$/.test(digits)) return undefined
  const workflowId = key.slice(CREATED_PREFIX.length + DIGITS + 1)
  if (workflowId === '') return undefined
  return { key, workflowId, createdAt: INVERT - Number(digits) }
}
