// Pipelined checkpoints (issue #26) against every crash point of one run: the workflow of
// fixtures/pipeline-steps.mjs runs once with every storage write recorded in the order it became
// durable; then, for EVERY prefix of that write log, a fresh storage holding exactly those writes
// (memory, and a folder in fsync and in journal mode, written through a fresh FileSystemStorage
// and opened again by another) is resumed by a fresh runtime. Each resume must end SUCCESSFUL with
// the clean run's output, run no step whose record the prefix held, find every committed record's
// inputs committed too, and start the strict step only on durable inputs. With pipelining off this
// holds today; with it on it is what the feature promises.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryStorage, Runtime, type Storage } from '@wf/core'
import { createFileSystemStorage } from '@wf/storage-fs'
import { afterAll, describe, expect, it } from 'vitest'
import { WorkflowClient } from './client.js'
import {
  hooks,
  INPUTS,
  NONDET,
  type PipelineValue,
  pipeline,
  STEP_IDS,
  STRICT,
} from './test-support/fixtures/pipeline-steps.mjs'
import {
  applyWrites,
  CARRY_TOKEN,
  causalViolations,
  committedSteps,
  IN_FLIGHT,
  pipelineOptions,
  pipeliningAvailable,
  recordWrites,
  stateAfter,
  WIDTH,
  type Write,
} from './test-support/pipeline.js'

const pipelining = pipeliningAvailable()
const INPUT = 3
const WORKFLOW_ID = 'pipe-replay'

/** Where a prefix is replayed: `write` gets the prefix, `reopen` is what the resume runs on. */
interface Place {
  write: Storage
  reopen(): Promise<Storage>
  cleanup(): Promise<void>
}

const dirs: string[] = []
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true, maxRetries: 3 })))
})

const backends: { name: string; open(): Promise<Place> }[] = [
  {
    name: 'memory',
    open: async () => {
      const storage = new MemoryStorage()
      return { write: storage, reopen: async () => storage, cleanup: async () => {} }
    },
  },
  ...(['fsync', 'journal'] as const).map((durability) => ({
    name: `folder (${durability})`,
    open: async (): Promise<Place> => {
      const root = await mkdtemp(join(tmpdir(), `wf-pipe-${durability}-`))
      dirs.push(root)
      const write = await createFileSystemStorage({ root, durability })
      return {
        write,
        // A new storage on the folder, as a restarted process opens it.
        reopen: async () => {
          await write.close?.()
          return createFileSystemStorage({ root, durability })
        },
        cleanup: () => rm(root, { recursive: true, force: true, maxRetries: 3 }),
      }
    },
  })),
]

/** The workflow run to its end on `storage` by a fresh runtime; the ids of the steps it started. */
async function runToEnd(
  storage: Storage,
  on: boolean,
  onStart: (stepId: string) => void = () => {},
): Promise<{
  output: PipelineValue
  starts: string[]
  strictMissing: string[]
  tokens: Map<string, string>
}> {
  const starts: string[] = []
  hooks.onStart = (id) => {
    starts.push(id)
    onStart(id)
  }
  hooks.storage = storage
  hooks.workflowId = WORKFLOW_ID
  hooks.strictMissing = []
  const runtime = new Runtime(storage, pipelineOptions(on))
  try {
    const output = await runtime.run(pipeline(INPUT), { workflowId: WORKFLOW_ID })
    const client = new WorkflowClient({ runtime })
    const tokens = new Map<string, string>()
    for (const id of CARRY_TOKEN) {
      if (id === CARRY_TOKEN.at(-1)) continue // the root: its output is the workflow's
      tokens.set(id, (await client.getOutput<PipelineValue>(WORKFLOW_ID, { stepId: id })).token)
    }
    return { output, starts, strictMissing: [...hooks.strictMissing], tokens }
  } finally {
    hooks.onStart = () => {}
    await runtime.close()
  }
}

/** One run, recorded: its writes in completion order, its output, and how its steps overlapped checkpoints. */
interface Recorded {
  writes: Write[]
  output: PipelineValue
  /** Steps that started before the checkpoint of one of their inputs was durable. */
  early: string[]
  /** The most steps started whose checkpoints were not yet durable, at any step start. */
  mostUndurable: number
  /** The strict step's inputs that had no record when it started. */
  strictMissing: string[]
}

async function recordRun(on: boolean): Promise<Recorded> {
  const { storage, writes } = recordWrites(new MemoryStorage(), 3)
  const early: string[] = []
  const started: string[] = []
  let mostUndurable = 0
  const durable = () => committedSteps(stateAfter(writes), WORKFLOW_ID)
  const onStart = (id: string) => {
    const now = durable()
    if ((INPUTS[id] ?? []).some((input) => !now.has(input))) early.push(id)
    started.push(id)
    mostUndurable = Math.max(mostUndurable, started.filter((s) => !now.has(s)).length)
  }
  hooks.delayMs = 1
  try {
    const { output, strictMissing } = await runToEnd(storage, on, onStart)
    return { writes: [...writes], output, early, mostUndurable, strictMissing }
  } finally {
    hooks.delayMs = 0
  }
}

describe.each([
  { mode: 'off', on: false },
  { mode: 'on', on: true },
])('every prefix of a run’s writes, pipelining $mode', ({ on }) => {
  const skip = on && !pipelining
  let recorded: Recorded | undefined
  const record = async () => {
    if (!recorded) {
      recorded = await recordRun(on)
      // The recorded runner's lease must have run out before a fresh runtime may take over.
      await new Promise((resolve) => setTimeout(resolve, 1100))
    }
    return recorded
  }

  it.skipIf(skip)('the recorded run ends with the value every step computed from one token', async () => {
    const { writes, output } = await record()
    expect(output.n).toBeGreaterThan(0)
    expect(output.token).toMatch(/^[0-9a-f-]{36}$/)
    const state = stateAfter(writes)
    // Every step committed (the root by the final record), each once, all in causal order.
    expect([...committedSteps(state, WORKFLOW_ID)].sort()).toEqual([...STEP_IDS].sort())
    expect(STEP_IDS.length).toBeGreaterThanOrEqual(30)
    expect(causalViolations(committedSteps(state, WORKFLOW_ID), state, WORKFLOW_ID)).toEqual([])
  })

  it.skipIf(skip)(
    on
      ? 'steps started before their inputs were durable, never the strict one nor its successors, and at most maxCheckpointsInFlight (+ the fan-out) steps were not durable at once'
      : 'no step started before its inputs were durable',
    async () => {
      const { early, mostUndurable, strictMissing } = await record()
      expect(strictMissing).toEqual([])
      if (on) {
        expect(early.length).toBeGreaterThan(0)
        expect(early).not.toContain(STRICT)
        // The strict step's successors wait for its own checkpoint.
        for (const id of STEP_IDS.filter((s) => INPUTS[s]?.includes(STRICT))) expect(early).not.toContain(id)
        // The running steps (the fan-out's) and the checkpoints in flight.
        expect(mostUndurable).toBeLessThanOrEqual(IN_FLIGHT + WIDTH)
      } else {
        expect(early).toEqual([])
      }
    },
  )

  for (const backend of backends) {
    it.skipIf(skip)(
      `on ${backend.name}: a resume from each prefix ends SUCCESSFUL with the same output, re-runs no committed step, and finds committed records' inputs committed`,
      async () => {
        const { writes, output: clean } = await record()
        const failures: string[] = []
        for (let k = 0; k <= writes.length; k++) {
          const prefix = writes.slice(0, k)
          const state = stateAfter(prefix)
          const committed = committedSteps(state, WORKFLOW_ID)
          for (const v of causalViolations(committed, state, WORKFLOW_ID)) failures.push(`prefix ${k}: ${v}`)
          const place = await backend.open()
          try {
            await applyWrites(place.write, prefix)
            const storage = await place.reopen()
            const run = await runToEnd(storage, on)
            const where = `prefix ${k} of ${writes.length}`
            if (run.output.n !== clean.n)
              failures.push(`${where}: output n ${run.output.n}, clean ${clean.n}`)
            const drawn = run.tokens.get(NONDET)
            if (run.output.token !== drawn) {
              failures.push(`${where}: output token ${run.output.token}, committed ${NONDET} drew ${drawn}`)
            }
            for (const [id, token] of run.tokens) {
              if (token !== drawn)
                failures.push(`${where}: ${id} committed token ${token}, ${NONDET} drew ${drawn}`)
            }
            const again = run.starts.filter((id) => committed.has(id))
            if (again.length > 0) failures.push(`${where}: committed steps ran again: ${again.join(', ')}`)
            for (const missing of run.strictMissing)
              failures.push(`${where}: ${STRICT} started with ${missing}`)
          } finally {
            await place.cleanup()
          }
        }
        expect(failures).toEqual([])
      },
      170_000,
    )
  }
})
