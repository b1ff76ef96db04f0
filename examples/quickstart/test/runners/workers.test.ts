// Two worker processes (createWorker) share one folder storage and ten submitted workflows; one is
// killed with SIGKILL mid-run and the survivor finishes everything. Leases are short (1,000 ms,
// heartbeat 200 ms) but on one host the dead pid makes the killed worker's workflows RESUMABLE at
// once. Every part logs "<pid> <workflowId> <stepId> <startMs> <endMs>" when it ends.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Runtime } from '@wf/core'
import { expect, it, vi } from 'vitest'
import { logLines, submitJobs, worker } from './helpers.js'

const WORKFLOWS = 10

it('a surviving worker finishes every workflow of a worker killed mid-run, and no workflow ever has two runners at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wf-workers-'))
  const storage = join(dir, 'data')
  const log = join(dir, 'steps.log')
  const runtime = new Runtime(storage)
  const store = await runtime.store()
  try {
    // Submitted by a child process: step fingerprints are taken from the steps' source text, which
    // differs when this test process (transformed by vitest) imports the same module.
    await submitJobs(storage, WORKFLOWS)
    const ids = Array.from({ length: WORKFLOWS }, (_, n) => `job-${n}`)
    const env = { WF_TEST_LOG: log }
    const doomed = worker(storage, env)
    const survivor = worker(storage, env)
    await Promise.all([doomed.ready, survivor.ready])
    // Kill one once both have run steps and it holds a workflow (its record names it as owner).
    const heldBy = async (pid: number) => {
      const held: string[] = []
      for (const id of ids) {
        if ((await store.requireWorkflow(id)).record.owner?.pid === pid) held.push(id)
      }
      return held
    }
    let heldAtKill: string[] = []
    await vi.waitFor(
      async () => {
        const pids = new Set(logLines(log).map(([pid]) => Number(pid)))
        expect(pids.has(doomed.pid) && pids.has(survivor.pid), 'both workers to run steps').toBe(true)
        heldAtKill = await heldBy(doomed.pid)
        expect(heldAtKill.length, 'the doomed worker to hold a workflow').toBeGreaterThan(0)
      },
      { timeout: 30_000, interval: 10 },
    )
    doomed.proc.kill('SIGKILL')
    const killedAt = (await doomed.exited).at
    // The survivor takes over what the dead worker held (RESUMABLE at once on this host: its pid
    // is gone) and finishes every workflow.
    const outputs = await Promise.all(ids.map((id) => runtime.waitForResult(id, 50)))
    expect(outputs).toEqual(Array.from({ length: WORKFLOWS }, (_, n) => 30 * n + 3))
    survivor.proc.kill('SIGTERM')
    expect((await survivor.exited).code).toBe(0)
    expect(survivor.stderr()).toBe('')

    const lines = logLines(log).map(([pid, workflowId, stepId, start, end]) => ({
      pid: Number(pid),
      workflowId: workflowId as string,
      stepId: stepId as string,
      start: Number(start),
      end: Number(end),
    }))
    const doomedLines = lines.filter((l) => l.pid === doomed.pid)
    expect(doomedLines.length).toBeGreaterThan(0)
    expect(doomedLines.every((l) => l.end <= killedAt)).toBe(true)
    for (let n = 0; n < WORKFLOWS; n++) {
      const workflowId = `job-${n}`
      const mine = lines.filter((l) => l.workflowId === workflowId)
      // No two processes drove one workflow at the same time: their step intervals never overlap.
      for (const a of mine) {
        for (const b of mine) {
          if (a.pid === b.pid) continue
          expect(a.end <= b.start || b.end <= a.start, `${workflowId}: ${a.pid} and ${b.pid} overlap`).toBe(
            true,
          )
        }
      }
      // Four steps, each committed once; a step runs twice only when the killed worker ran it and
      // died before committing it.
      const committed = await store.listStepIds(workflowId)
      expect(committed.sort()).toEqual(['rw.join', 'rw.part', 'rw.part_1', 'rw.part_2'])
      const runs = new Map<string, number[]>()
      for (const l of mine) runs.set(l.stepId, [...(runs.get(l.stepId) ?? []), l.pid])
      for (const [stepId, pids] of runs) {
        if (pids.length > 1) expect(pids, `${workflowId}/${stepId}`).toEqual([doomed.pid, survivor.pid])
      }
      expect((await store.requireWorkflow(workflowId)).record.status).toBe('SUCCESSFUL')
    }
  } finally {
    await (await runtime.storage()).close?.()
    rmSync(dir, { recursive: true, force: true })
  }
}, 120_000)
