// Pipelined checkpoints (issue #26) under SIGKILL: a child process runs the workflow of
// fixtures/pipeline-steps.mjs and is killed at a random moment of its run, then a new process runs
// it again (resuming it) until it ends; on a folder in journal and in fsync mode, and on the S3
// gateway when WF_S3_ENDPOINT is set. What storage held at the kill must be in causal order (every
// committed record's inputs committed), the resume must start no step committed by then, and run
// again at most the steps that were in flight (bounded by `maxCheckpointsInFlight` and the
// graph's width); the output is the clean run's and every value carries the committed token; the
// strict step found its inputs durable. Step starts are counted per process from an append-only
// side file, which a SIGKILL cannot take back.

import { readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { WorkflowClient } from './client.js'
import { killAll, spawnChild, stopChild } from './test-support/child-process.js'
import {
  NONDET,
  type PipelineValue,
  ROOT,
  STEP_IDS,
  STRICT,
} from './test-support/fixtures/pipeline-steps.mjs'
import {
  CARRY_TOKEN,
  causalViolations,
  committedSteps,
  IN_FLIGHT,
  pipeliningAvailable,
  readState,
  WIDTH,
} from './test-support/pipeline.js'
import { openFolderPlace, openS3Place, type Place, s3, warnIfS3Skipped } from './test-support/places.js'
import { atScale } from './test-support/scale.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const childScript = join(here, 'test-support/fixtures/pipeline-child.mjs')
const pipelining = pipeliningAvailable()

interface Backend {
  name: string
  available: boolean
  /** Rounds with pipelining on, and off (the baseline that holds without the feature). */
  rounds: { on: number; off: number }
  parallel: number
  open(): Promise<Place>
}

const folder = (durability: 'journal' | 'fsync'): Backend => ({
  name: `folder (${durability})`,
  available: true,
  rounds: { on: atScale(30, 6), off: atScale(3, 2) },
  parallel: 2,
  open: () => openFolderPlace(`wf-pipe-kill-${durability}-`, { durability }),
})

const bucket: Backend = {
  name: 'S3',
  available: s3.available,
  rounds: { on: atScale(10, 3), off: atScale(2, 1) },
  parallel: 5,
  open: () => openS3Place('wf-pipe'),
}

warnIfS3Skipped('pipeline-processes.test.ts')

/** A child's run that threw: its error's code and message, as it printed them. */
class RunError extends Error {
  constructor(
    printed: string,
    readonly code: string,
    readonly pid: number | undefined,
  ) {
    super(`the child's run threw: ${printed}`)
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs `round(0)` … `round(count - 1)`, at most `parallel` of them at once. */
async function rounds(count: number, parallel: number, round: (n: number) => Promise<void>): Promise<void> {
  let next = 0
  const lane = async () => {
    while (next < count) await round(next++)
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane))
}

afterEach(killAll)

describe.each([folder('journal'), folder('fsync'), bucket])(
  'the pipelined workflow SIGKILLed at random moments, on $name',
  (backend) => {
    let place: Place
    let work: string
    let client: WorkflowClient

    afterAll(async () => {
      if (!client) return
      await client.close()
      await place.close()
      await rm(work, { recursive: true, force: true })
    })

    async function setUp(): Promise<void> {
      if (client) return
      place = await backend.open()
      work = await mkdtemp(join(tmpdir(), 'wf-pipe-kill-work-'))
      client = new WorkflowClient({ storage: place.storage })
    }

    const env = (round: string) => ({
      PIPE_STARTS: join(work, `${round}.starts`),
      PIPE_STRICT: join(work, `${round}.strict`),
      PIPE_WORKFLOW_ID: round,
      ...s3.childEnv,
    })

    /** Runs the workflow `workflowId` in a child to its end: its output and how long the run took. */
    async function runChild(
      workflowId: string,
      mode: 'on' | 'off',
      killAt?: { starts: number; thenMs: number },
    ): Promise<{ output?: PipelineValue; ms?: number; pid: number }> {
      const child = spawnChild([childScript, place.uri, workflowId, mode, String(IN_FLIGHT)], {
        env: env(workflowId),
      })
      await child.line('started', 60_000)
      const done = child.line(/^(output|error) /, 60_000).then((line) => {
        const [word, json, ms] = line.split(' ')
        if (word === 'error') throw new RunError(line.slice('error '.length), json as string, child.proc.pid)
        return { output: JSON.parse(json as string) as PipelineValue, ms: Number(ms) }
      })
      if (killAt === undefined) return { ...(await done), pid: child.proc.pid as number }
      let ended = false
      done.then(
        () => {
          ended = true
        },
        () => {
          ended = true
        },
      )
      // Once the child started `killAt.starts` steps (or ended), and a random moment more.
      const startsFile = env(workflowId).PIPE_STARTS
      while (!ended && readFileSync(startsFile, 'utf8').split('\n').length <= killAt.starts) await pause(1)
      await pause(killAt.thenMs)
      await stopChild(child)
      const printed = child.lines().find((line) => line.startsWith('output '))
      return printed ? { ...(await done), pid: child.proc.pid as number } : { pid: child.proc.pid as number }
    }

    for (const mode of ['on', 'off'] as const) {
      const count = backend.rounds[mode]
      it.skipIf(!backend.available || (mode === 'on' && !pipelining))(
        `pipelining ${mode}: ${count} runs killed at random moments end with the clean output, re-running no committed step and at most the checkpoints in flight`,
        async () => {
          await setUp()
          const clean = await runChild(`clean-${mode}`, mode)
          const stepMs = (clean.ms ?? 0) / STEP_IDS.length
          const failures: string[] = []
          /** Rounds killed with some of the steps committed but not all: the crashes that test something. */
          let midway = 0
          const round = async (n: number) => {
            const workflowId = `kill-${mode}-${n}`
            const where = `round ${n}`
            writeFileSync(env(workflowId).PIPE_STARTS, '')
            writeFileSync(env(workflowId).PIPE_STRICT, '')
            // A random moment of the run: after a random number of step starts, and up to the
            // time a step takes on average more.
            const killAt = {
              starts: Math.floor(Math.random() * STEP_IDS.length),
              thenMs: Math.random() * stepMs,
            }
            const killed = await runChild(workflowId, mode, killAt)
            const atKill = await readState(place.storage, workflowId)
            const committed = committedSteps(atKill, workflowId)
            if (committed.size > 0 && !committed.has(ROOT)) midway++
            for (const v of causalViolations(committed, atKill, workflowId))
              failures.push(`${where}: at the kill, ${v}`)
            // Resumed until it ends. On S3 a PUT the killed process sent may still land after the
            // resume read the storage: the resume's commit of that step then loses, and a pipelined
            // run whose input lost its commit stops (WF_LEASE_LOST); the next resume goes on.
            const resumePids: number[] = []
            let resumed: Awaited<ReturnType<typeof runChild>> | undefined
            for (let attempt = 0; resumed === undefined; attempt++) {
              try {
                resumed = await runChild(workflowId, mode)
                resumePids.push(resumed.pid)
              } catch (error) {
                if (!(error instanceof RunError) || error.code !== 'WF_LEASE_LOST' || attempt === 4)
                  throw error
                resumePids.push(error.pid ?? -1)
              }
            }
            const output = resumed.output as PipelineValue
            if (output.n !== clean.output?.n)
              failures.push(`${where}: output n ${output.n}, clean ${clean.output?.n}`)
            const drawn = (await client.getOutput<PipelineValue>(workflowId, { stepId: NONDET })).token
            if (output.token !== drawn)
              failures.push(`${where}: output token ${output.token}, ${NONDET} drew ${drawn}`)
            for (const id of CARRY_TOKEN.slice(0, -1)) {
              const { token } = await client.getOutput<PipelineValue>(workflowId, { stepId: id })
              if (token !== drawn)
                failures.push(`${where}: ${id} committed token ${token}, ${NONDET} drew ${drawn}`)
            }
            const starts = readFileSync(env(workflowId).PIPE_STARTS, 'utf8')
              .split('\n')
              .map((line) => line.split(' '))
              .filter((fields) => fields.length === 2)
            const before = new Set(starts.filter(([, pid]) => Number(pid) === killed.pid).map(([id]) => id))
            const after = starts
              .filter(([, pid]) => resumePids.includes(Number(pid)))
              .map(([id]) => id as string)
            const again = after.filter((id) => committed.has(id))
            if (again.length > 0)
              failures.push(`${where}: steps committed before the kill ran again: ${again}`)
            const rerun = [...new Set(after.filter((id) => before.has(id)))]
            if (rerun.length > IN_FLIGHT + WIDTH) {
              failures.push(
                `${where}: ${rerun.length} steps ran again (${rerun}), more than ${IN_FLIGHT} + ${WIDTH}`,
              )
            }
            const strict = readFileSync(env(workflowId).PIPE_STRICT, 'utf8').trim()
            if (strict) failures.push(`${where}: ${STRICT} started with ${strict.split('\n').join(', ')}`)
          }
          await rounds(count, backend.parallel, round)
          // A kill before the first commit or after the last tests little. With few rounds (one on
          // S3 in a reduced run) every kill may fall there: a few more rounds until one fell midway.
          for (let n = count; midway === 0 && n < count + 5; n++) await round(n)
          expect(failures).toEqual([])
          expect(midway).toBeGreaterThan(0)
        },
        170_000,
      )
    }
  },
)
