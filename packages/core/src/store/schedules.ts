// Schedule records (`schedules/<id>`): read, created once, changed by compare-and-swap.

import { CorruptRecordError } from '../errors.js'
import {
  type DeclarationRecord,
  parseJson,
  type ScheduleRecord,
  storeKeys,
  utf8,
  type Versioned,
} from '../model/records.js'
import type { WorkflowStore } from './store.js'

export async function readSchedule(
  store: WorkflowStore,
  scheduleId: string,
): Promise<Versioned<ScheduleRecord> | undefined> {
  const key = storeKeys.schedule(scheduleId)
  const found = await store.storage.get(key)
  if (!found) return undefined
  const record = parseJson<ScheduleRecord>(key, found.data)
  if (record?.v !== 1 || record.scheduleId !== scheduleId || typeof record.lastTick !== 'number') {
    throw new CorruptRecordError(key, 'not a schedule record written by this version of wf')
  }
  return { record, version: found.version }
}

/** Creates a schedule record (create-if-absent: `ConditionFailedError` when one exists). */
export async function createSchedule(
  store: WorkflowStore,
  record: ScheduleRecord,
): Promise<Versioned<ScheduleRecord>> {
  const { version } = await store.storage.put(
    storeKeys.schedule(record.scheduleId),
    utf8(JSON.stringify(record)),
    {
      ifAbsent: true,
    },
  )
  return { record, version }
}

/** Replaces a schedule record by compare-and-swap (`ConditionFailedError` when it changed since `previous`). */
export async function updateSchedule(
  store: WorkflowStore,
  previous: Versioned<ScheduleRecord>,
  next: ScheduleRecord,
): Promise<Versioned<ScheduleRecord>> {
  next.updatedAt = Date.now()
  const { version } = await store.storage.put(
    storeKeys.schedule(next.scheduleId),
    utf8(JSON.stringify(next)),
    {
      ifVersion: previous.version,
    },
  )
  return { record: next, version }
}

/** The ids of every schedule with a record. */
export async function listScheduleIds(store: WorkflowStore): Promise<string[]> {
  const prefix = storeKeys.schedulesPrefix
  return (await store.listAllKeys(prefix)).map((key) => key.slice(prefix.length))
}

export async function deleteSchedule(store: WorkflowStore, scheduleId: string): Promise<void> {
  await store.storage.delete(storeKeys.schedule(scheduleId))
}

/** Writes a worker's declarations (unconditional: only that worker writes it). */
export async function writeDeclaration(store: WorkflowStore, record: DeclarationRecord): Promise<void> {
  await store.storage.put(storeKeys.declaration(record.runner.runnerId), utf8(JSON.stringify(record)))
}

export async function deleteDeclaration(store: WorkflowStore, runnerId: string): Promise<void> {
  await store.storage.delete(storeKeys.declaration(runnerId))
}

/** Every worker's declarations that can be read (one listing, one read each). */
export async function readDeclarations(store: WorkflowStore): Promise<DeclarationRecord[]> {
  const out: DeclarationRecord[] = []
  for (const key of await store.listAllKeys(storeKeys.declarationsPrefix)) {
    const found = await store.storage.get(key)
    if (!found) continue
    try {
      const record = parseJson<DeclarationRecord>(key, found.data)
      if (record?.v === 1 && typeof record.schedules === 'object') out.push(record)
    } catch {
      // An unreadable declaration declares nothing.
    }
  }
  return out
}
