// The helpers that turn records into what is stored: the ended index's day (kept from one call to
// the next) and a workflow record's JSON (built from cached parts), each the same as the plain way.

import { describe, expect, it } from 'vitest'
import { endedDay, type RuntimeInfo, recordJson, type WorkflowRecord } from './records.js'
import type { StoredGraph } from './stored-graph.js'

const DAY = 86_400_000

describe('endedDay', () => {
  it("names each time's own UTC day, whichever day was asked for before", () => {
    const monday = Date.UTC(2026, 11, 7)
    const times = [
      monday,
      monday + DAY - 1,
      monday + DAY,
      monday - 1,
      monday + 12 * 3_600_000,
      Date.UTC(1969, 11, 31, 23, 59, 59, 999),
      monday + 400 * DAY,
      monday,
    ]
    for (const at of times) expect(endedDay(at)).toBe(new Date(at).toISOString().slice(0, 10))
  })

  it('throws for a time that is no date, also right after a day it knows', () => {
    endedDay(Date.UTC(2026, 11, 7))
    expect(() => endedDay(Number.NaN)).toThrow(RangeError)
    expect(() => endedDay(9e15)).toThrow(RangeError)
    expect(() => endedDay(9e15)).toThrow(RangeError)
    expect(endedDay(Date.UTC(2026, 11, 7, 5))).toBe('2026-12-07')
  })
})

describe('recordJson', () => {
  const graph = { v: 1, root: 'a', nodes: [] } as unknown as StoredGraph
  const runtime = { node: 'v22.0.0', platform: 'linux', arch: 'x64' } as unknown as RuntimeInfo
  const base = {
    v: 1,
    workflowId: 'w',
    status: 'RUNNING',
    createdAt: 1,
    updatedAt: 2,
    metadata: { owner: 'me' },
    rootStepId: 'a',
  } as unknown as WorkflowRecord

  it('stores what JSON.stringify would, with or without a runtime and an inline graph', () => {
    for (const record of [
      base,
      { ...base, runtime },
      { ...base, graph },
      { ...base, runtime, graph },
      { ...base, graph: 'nonce-1' },
      { ...base, runtime, graph: 'nonce-1' },
    ]) {
      expect(JSON.parse(recordJson(record))).toEqual(JSON.parse(JSON.stringify(record)))
    }
  })

  it('writes a record with nothing but a runtime and a graph as valid JSON', () => {
    const bare = { runtime, graph } as unknown as WorkflowRecord
    expect(JSON.parse(recordJson(bare))).toEqual({ runtime, graph })
  })
})
