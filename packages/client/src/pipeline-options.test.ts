// The options of pipelined checkpoints (issue #26): `pipelineCheckpoints` on the runtime and per
// run, `maxCheckpointsInFlight`, and their checks. Each run holds the checkpoint of the workflow's
// non-deterministic step in flight for a moment and looks at which steps started meanwhile: with
// pipelining its successors run ahead, at most `maxCheckpointsInFlight` of them; without it none.

import {
  InvalidOptionsError,
  MemoryStorage,
  type RunOptions,
  Runtime,
  type RuntimeOptions,
  storeKeys,
} from '@wf/core'
import { interceptStorage } from '@wf/core/testing'
import { describe, expect, it } from 'vitest'
import { hooks, MIDDLE, NONDET, pipeline, STEP_IDS } from './test-support/fixtures/pipeline-steps.mjs'
import { type PipelineOptions, pipeliningAvailable } from './test-support/pipeline.js'

const pipelining = pipeliningAvailable()
/** How long a checkpoint is held in flight: long enough for every step a pipelined run may start. */
const HOLD_MS = 400
let seq = 0

/**
 * Runs the workflow on a fresh runtime with `options` (and `run` per run), holding the checkpoint
 * of the non-deterministic step for `HOLD_MS`; the steps that started meanwhile.
 */
async function startedWhileHeld(
  options: PipelineOptions,
  run: { pipelineCheckpoints?: boolean } = {},
): Promise<string[]> {
  const workflowId = `held-${++seq}`
  const during: string[] = []
  let holding = false
  const storage = interceptStorage(new MemoryStorage(), {
    put: async (next, key, data, condition) => {
      if (key === storeKeys.step(workflowId, NONDET)) {
        holding = true
        await new Promise((resolve) => setTimeout(resolve, HOLD_MS))
        holding = false
      }
      return next(key, data, condition)
    },
  })
  hooks.onStart = (id) => {
    if (holding) during.push(id)
  }
  hooks.storage = undefined
  const runtime = new Runtime(storage, options as RuntimeOptions)
  try {
    const runOptions: RunOptions & { pipelineCheckpoints?: boolean } = { workflowId, ...run }
    const output = await runtime.run(pipeline(3), runOptions)
    expect(output.n).toBeGreaterThan(0)
    return during
  } finally {
    hooks.onStart = () => {}
    await runtime.close()
  }
}

describe('pipelined checkpoints: options', () => {
  it('without the option, no step starts while its input’s checkpoint is in flight', async () => {
    expect(await startedWhileHeld({})).toEqual([])
  })

  it.skipIf(!pipelining)(
    'with the runtime option, the successors start while the checkpoint is in flight',
    async () => {
      expect(await startedWhileHeld({ pipelineCheckpoints: true })).toContain(MIDDLE[0])
    },
  )

  it.skipIf(!pipelining)('the run option turns it on for one run of a runtime without it', async () => {
    expect(await startedWhileHeld({}, { pipelineCheckpoints: true })).toContain(MIDDLE[0])
  })

  it.skipIf(!pipelining)('the run option turns it off for one run of a runtime with it', async () => {
    expect(await startedWhileHeld({ pipelineCheckpoints: true }, { pipelineCheckpoints: false })).toEqual([])
  })

  it.skipIf(!pipelining)(
    'maxCheckpointsInFlight bounds how many successors run ahead of a checkpoint in flight',
    async () => {
      const one = await startedWhileHeld({ pipelineCheckpoints: true, maxCheckpointsInFlight: 1 })
      // Each successor that returns adds a checkpoint that cannot be durable before the held one.
      expect(one.length).toBeLessThanOrEqual(1)
      const three = await startedWhileHeld({ pipelineCheckpoints: true, maxCheckpointsInFlight: 3 })
      expect(three).toContain(MIDDLE[0])
      expect(three.length).toBeLessThanOrEqual(3)
      // Without a bound short of the workflow, the run goes on up to the strict step.
      const many = await startedWhileHeld({
        pipelineCheckpoints: true,
        maxCheckpointsInFlight: STEP_IDS.length,
      })
      expect(many.length).toBeGreaterThan(3)
    },
  )

  it.skipIf(!pipelining)(
    'rejects a pipelineCheckpoints that is not a boolean and a maxCheckpointsInFlight that is not a positive integer, with InvalidOptionsError',
    () => {
      const storage = new MemoryStorage()
      for (const bad of [
        { pipelineCheckpoints: 'yes' },
        { pipelineCheckpoints: 1 },
        { maxCheckpointsInFlight: 0 },
        { maxCheckpointsInFlight: -1 },
        { maxCheckpointsInFlight: 1.5 },
        { maxCheckpointsInFlight: '4' },
      ]) {
        expect(() => new Runtime(storage, bad as unknown as RuntimeOptions), JSON.stringify(bad)).toThrow(
          InvalidOptionsError,
        )
      }
    },
  )
})
