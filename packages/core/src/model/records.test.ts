// recordJson writes a workflow record as JSON from cached pieces (the inline graph, the shared
// runtime info): what it writes parses to the record itself, whichever pieces it has.
import { describe, expect, it } from 'vitest'
import { recordJson, type WorkflowRecord } from './records.js'

const base: WorkflowRecord = {
  v: 1,
  workflowId: 'w',
  status: 'SUCCESSFUL',
  createdAt: 1,
  updatedAt: 2,
  metadata: { who: 'me' },
  graph: 'g-1',
  rootStepId: 'root',
  runs: 1,
  output: { inline: `["${'x'.repeat(10_000)}"]` },
}
const runtime = { node: 'v20', platform: 'linux', arch: 'x64', wfPackages: { '@wf/core': '0.0.0' } }
const graph = {
  v: 1 as const,
  root: 'root',
  nodes: [{ id: 'root', name: 'a', options: {}, args: '[[]]', refs: [] }],
}

describe('recordJson', () => {
  it.each([
    ['a graph stored apart, no runtime info', base],
    ['the runtime info', { ...base, runtime }],
    ['an inline graph', { ...base, graph }],
    ['an inline graph and the runtime info', { ...base, graph, runtime }],
  ] as [string, WorkflowRecord][])('writes a record with %s as JSON that parses back to it', (_, record) => {
    const text = recordJson(record)
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(record)))
    expect(text.length).toBe(JSON.stringify(record).length)
  })

  it('writes a record with only the runtime info and the graph without a stray comma', () => {
    const bare = { runtime, graph } as unknown as WorkflowRecord
    expect(JSON.parse(recordJson(bare))).toEqual({ runtime, graph })
  })
})
