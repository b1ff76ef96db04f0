// Pipelined checkpoints (issue #26), the lost-commit rule: when a step's checkpoint loses its
// create-if-absent to another runner's (as after a lease takeover), the value every later step
// uses is the committed one. With pipelining on, the non-deterministic step's successor starts on
// this runner's value while its checkpoint is in flight; the other runner's commit then wins, so
// that successor must be discarded and run again on the committed value. Another runner's commit
// at that exact moment cannot be produced on demand, so an interceptor writes it (the winner's
// record: this runner's with another token) just before this runner's put reaches the storage.

import { randomUUID } from 'node:crypto'
import { MemoryStorage, Runtime, storeKeys } from '@wf/core'
import { interceptStorage } from '@wf/core/testing'
import { describe, expect, it } from 'vitest'
import { WorkflowClient } from './client.js'
import {
  hooks,
  MIDDLE,
  NONDET,
  type PipelineValue,
  pipeline,
} from './test-support/fixtures/pipeline-steps.mjs'
import { CARRY_TOKEN, pipelineOptions, pipeliningAvailable } from './test-support/pipeline.js'

const pipelining = pipeliningAvailable()
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/
/** The first consumer of the non-deterministic step's value. */
const CONSUMER = MIDDLE[0] as string

describe.each([
  { mode: 'off', on: false },
  { mode: 'on', on: true },
])('a checkpoint that loses its commit to another runner, pipelining $mode', ({ mode, on }) => {
  it.skipIf(on && !pipelining)(
    on
      ? 'the successor that ran on the losing value runs again on the committed one, and the output carries it'
      : 'the successors run on the committed value only, and the output carries it',
    async () => {
      const workflowId = `lost-commit-${mode}`
      const inner = new MemoryStorage()
      const winner = randomUUID()
      const starts: string[] = []
      let consumerStarted: () => void = () => {}
      const consumerStart = new Promise<void>((resolve) => {
        consumerStarted = resolve
      })
      let lost = ''
      /** Whether the consumer started while the checkpoint of its input was in flight. */
      let overlapped = false
      const storage = interceptStorage(inner, {
        put: async (next, key, data, condition) => {
          if (key === storeKeys.step(workflowId, NONDET)) {
            const text = Buffer.from(data).toString('utf8')
            lost = UUID.exec(text)?.[0] ?? ''
            if (on) {
              // Pipelined: the consumer starts on this value while the checkpoint is in flight.
              const late = setTimeout(() => consumerStarted(), 3000)
              await consumerStart
              clearTimeout(late)
              overlapped = starts.includes(CONSUMER)
            }
            // The other runner's commit of the same step lands first.
            await inner.put(key, Buffer.from(text.replaceAll(lost, winner)), { ifAbsent: true })
          }
          return next(key, data, condition)
        },
      })
      hooks.onStart = (id) => {
        starts.push(id)
        if (id === CONSUMER) consumerStarted()
      }
      hooks.storage = storage
      hooks.workflowId = workflowId
      hooks.strictMissing = []
      const runtime = new Runtime(storage, pipelineOptions(on))
      try {
        const output = await runtime.run(pipeline(3), { workflowId })
        expect(lost).toMatch(UUID)
        if (on)
          expect(overlapped, `${CONSUMER} did not start while ${NONDET}'s checkpoint was in flight`).toBe(
            true,
          )
        expect(output.token).toBe(winner)
        const client = new WorkflowClient({ runtime })
        for (const id of CARRY_TOKEN.slice(0, -1)) {
          expect((await client.getOutput<PipelineValue>(workflowId, { stepId: id })).token, id).toBe(winner)
        }
        // Ran on the losing value (pipelined) and again on the committed one; else once.
        expect(starts.filter((id) => id === CONSUMER)).toHaveLength(on ? 2 : 1)
        expect(starts.filter((id) => id === NONDET)).toHaveLength(1)
        expect(hooks.strictMissing).toEqual([])
      } finally {
        hooks.onStart = () => {}
        await runtime.close()
      }
    },
    20_000,
  )
})
