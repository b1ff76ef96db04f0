// Pipelined checkpoints (issue #26), the lost-commit rule: when a step's checkpoint loses its
// create-if-absent to another runner's (as after a lease takeover), the value every later step
// uses is the committed one. With pipelining on, the non-deterministic step's successor starts on
// this runner's value while its checkpoint is in flight; the other runner's commit then wins, so
// that successor must be discarded and run again on the committed value. Another runner's commit
// at that exact moment cannot be produced on demand, so an interceptor writes it (the winner's
// record: this runner's with another token) just before this runner's put reaches the storage.
// Then the same race between two real runtimes: runner A stalls past its lease while its
// checkpoint of the non-deterministic step is on the way, B takes the workflow over and commits
// its own draw, A wakes: whatever A computed from its draw must not reach a record.

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

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** `runtime.resume(workflowId)`, retried while the stopped runner's lease still holds it. */
async function resumeOnceFree<T>(runtime: Runtime, workflowId: string): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await runtime.resume<T>(workflowId)
    } catch (error) {
      if ((error as { code?: string }).code !== 'WF_STILL_ACTIVE' || attempt > 100) throw error
      await pause(50)
    }
  }
}

describe.each([
  { mode: 'off', on: false },
  { mode: 'on', on: true },
])('a checkpoint that loses its commit to another runner, pipelining $mode', ({ mode, on }) => {
  it.skipIf(on && !pipelining)(
    on
      ? 'the successor that ran on the losing value runs again on the committed one (here or, if this run stops, in the resume), and the output carries it'
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
      let resumer: Runtime | undefined
      try {
        const ended = await runtime.run(pipeline(3), { workflowId }).then(
          (output) => ({ output }),
          (error: unknown) => ({ error }),
        )
        expect(lost).toMatch(UUID)
        if (on)
          expect(overlapped, `${CONSUMER} did not start while ${NONDET}'s checkpoint was in flight`).toBe(
            true,
          )
        let output: PipelineValue
        if ('output' in ended) {
          // Run on: the consumer ran on the losing value (pipelined) and again on the committed one.
          output = ended.output
          expect(starts.filter((id) => id === CONSUMER)).toHaveLength(on ? 2 : 1)
        } else {
          // Or the run stops, as a runner that another one overtook (the choice @wf/core made:
          // the runner that committed first drives the workflow), with nothing built on its
          // value committed; whoever resumes it then runs the consumer on the committed value.
          expect(on, 'only a pipelined run may stop on a lost commit').toBe(true)
          expect((ended.error as { code?: string }).code).toBe('WF_LEASE_LOST')
          await runtime.close()
          starts.length = 0
          resumer = new Runtime(inner, pipelineOptions(on))
          output = await resumeOnceFree<PipelineValue>(resumer, workflowId)
          expect(starts).toContain(CONSUMER)
          expect(starts).not.toContain(NONDET)
        }
        expect(output.token).toBe(winner)
        const client = new WorkflowClient({ runtime: resumer ?? runtime })
        for (const id of CARRY_TOKEN.slice(0, -1)) {
          expect((await client.getOutput<PipelineValue>(workflowId, { stepId: id })).token, id).toBe(winner)
        }
        expect(hooks.strictMissing).toEqual([])
      } finally {
        hooks.onStart = () => {}
        await runtime.close()
        await resumer?.close()
      }
    },
    20_000,
  )
})

/** Resolves once `condition()` holds; rejects with `what` after `timeoutMs`. */
async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await pause(5)
  }
}

describe.each([
  { mode: 'off', on: false },
  { mode: 'on', on: true },
])('two runtimes racing one workflow across a lease takeover, pipelining $mode', ({ mode, on }) => {
  it.skipIf(on && !pipelining)(
    'the stale runner’s value of the non-deterministic step loses, and no record is computed from it',
    async () => {
      const workflowId = `takeover-${mode}`
      const inner = new MemoryStorage()
      const short = { leaseTtlMs: 150, heartbeatMs: 30 }
      const key = storeKeys.step(workflowId, NONDET)
      const consumerKey = storeKeys.step(workflowId, CONSUMER)
      // Runner A stalls (every call waits) as its checkpoint of the non-deterministic step is sent:
      // a paused process, past its lease.
      let thawA: () => void = () => {}
      let frozen: Promise<void> | undefined
      let consumerStarted = false
      hooks.onStart = (id) => {
        if (id === CONSUMER) consumerStarted = true
      }
      hooks.storage = undefined
      const gate = async () => {
        if (frozen) await frozen
      }
      const storageA = interceptStorage(inner, {
        get: async (next, k) => {
          await gate()
          return next(k)
        },
        list: async (next, prefix, options) => {
          await gate()
          return next(prefix, options)
        },
        delete: async (next, k) => {
          await gate()
          return next(k)
        },
        put: async (next, k, data, condition) => {
          if (k === key && !frozen) {
            // Pipelined: A's consumer starts on A's value first.
            if (on) await until(() => consumerStarted, `${CONSUMER} starts in A`, 3000).catch(() => {})
            frozen = new Promise((resolve) => {
              thawA = resolve
            })
          }
          await gate()
          return next(k, data, condition)
        },
      })
      // Runner B holds its checkpoint of the consumer back until A has thawed.
      let releaseB: () => void = () => {}
      const bHeld = new Promise<void>((resolve) => {
        releaseB = resolve
      })
      let bHolding = false
      const storageB = interceptStorage(inner, {
        put: async (next, k, data, condition) => {
          if (k === consumerKey) {
            bHolding = true
            await bHeld
          }
          return next(k, data, condition)
        },
      })
      const a = new Runtime(storageA, { ...pipelineOptions(on), ...short })
      const b = new Runtime(storageB, { ...pipelineOptions(on), ...short })
      try {
        const runA = a.run(pipeline(3), { workflowId }).then(
          (output) => ({ output }),
          (error: unknown) => ({ error }),
        )
        await until(() => frozen !== undefined, `A sends its checkpoint of ${NONDET}`)
        // A's lease runs out; B takes the workflow over and commits its own draw.
        await pause(short.leaseTtlMs * 3)
        const runB = b.resume<PipelineValue>(workflowId)
        runB.catch(() => {})
        await until(async () => (await inner.get(key)) !== undefined && bHolding, `B commits ${NONDET}`)
        thawA()
        const endA = await runA
        releaseB()
        const output = await runB
        const client = new WorkflowClient({ runtime: b })
        const drawn = (await client.getOutput<PipelineValue>(workflowId, { stepId: NONDET })).token
        expect(output.token).toBe(drawn)
        for (const id of CARRY_TOKEN.slice(0, -1)) {
          expect((await client.getOutput<PipelineValue>(workflowId, { stepId: id })).token, id).toBe(drawn)
        }
        // A either stopped (fenced) or ended on the committed value.
        if ('output' in endA) expect(endA.output.token).toBe(drawn)
        else expect((endA.error as { code?: string }).code).toBe('WF_LEASE_LOST')
      } finally {
        thawA()
        releaseB()
        hooks.onStart = () => {}
        await a.close().catch(() => {})
        await b.close()
      }
    },
    20_000,
  )
})
