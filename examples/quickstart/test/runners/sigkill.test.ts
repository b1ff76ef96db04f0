// One runner process after another drives a 50-step workflow (a fan-out of 30, a continuation of
// 18, a final step) on the folder storage; each is killed with SIGKILL at a random moment, 30 times,
// and a last one finishes. Every step logs "<pid> <stepId>" when it starts.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Runtime } from '@wf/core'
import { expect, it } from 'vitest'
import { type Child, lastJson, logLines, runner, sleep } from './helpers.js'

const KILLS = 30
// 2 × (Σ i² for i < 30, plus 18 increments): see fixtures/steps.mjs.
const FIFTY_OUTPUT = 2 * (8555 + 18)

it(`never re-runs a committed step across ${KILLS} SIGKILLs of a 50-step workflow with a fan-out and a continuation`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wf-sigkill-'))
  const storage = join(dir, 'data')
  const log = join(dir, 'steps.log')
  const workflowId = 'fifty'
  const runtime = new Runtime(storage)
  const store = await runtime.store()
  // For each runner process: the steps committed before it started.
  const committedBefore = new Map<number, Set<string>>()
  const spawnRunner = async (): Promise<Child> => {
    const before = new Set(await store.listStepIds(workflowId).catch(() => []))
    const child = runner('fifty', storage, workflowId, { WF_TEST_LOG: log })
    committedBefore.set(child.pid, before)
    return child
  }
  try {
    const progress: number[] = []
    for (let kill = 0; kill < KILLS; kill++) {
      const child = await spawnRunner()
      await child.ready
      // Random moments from "storage open" on: resume loading, steps running, commits.
      await sleep(Math.random() * 150)
      child.proc.kill('SIGKILL')
      const { signal } = await child.exited
      // Killed, or it had already finished (the workflow was done).
      const finished = signal !== 'SIGKILL' && child.stdout().includes(`{"output":${FIFTY_OUTPUT}}`)
      expect(
        signal === 'SIGKILL' || finished,
        `runner ${child.pid}: ${child.stdout()} ${child.stderr()}`,
      ).toBe(true)
      progress.push((await store.listStepIds(workflowId).catch(() => [])).length)
    }
    const last = await spawnRunner()
    const { code } = await last.exited
    expect(last.stderr()).toBe('')
    expect(code).toBe(0)
    expect(lastJson(last)).toEqual({ output: FIFTY_OUTPUT })
    // The kills landed all along the run, not only before the first step or after the last one.
    expect(
      progress.filter((n) => n > 0 && n < 50).length,
      `committed after each kill: ${progress}`,
    ).toBeGreaterThanOrEqual(5)

    const runs = logLines(log)
    for (const [pid, stepId] of runs) {
      const before = committedBefore.get(Number(pid))
      expect(before, `unknown runner ${pid}`).toBeDefined()
      expect(before?.has(stepId as string), `${stepId} ran again in ${pid} after it was committed`).toBe(
        false,
      )
    }
    // Each step committed once (one record per step id), and every committed step ran.
    const committed = await store.listStepIds(workflowId)
    expect(committed).toHaveLength(50)
    expect(new Set(runs.map(([, stepId]) => stepId))).toEqual(new Set(committed))
    const { record } = await store.requireWorkflow(workflowId)
    expect(record.status).toBe('SUCCESSFUL')
    // One run per process that got as far as taking the workflow over (a kill can land before).
    expect(record.runs).toBeGreaterThan(KILLS / 2)
    expect(record.runs).toBeLessThanOrEqual(KILLS + 1)
  } finally {
    await (await runtime.storage()).close?.()
    rmSync(dir, { recursive: true, force: true })
  }
}, 120_000)
