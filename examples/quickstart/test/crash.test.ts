// Crash test on the folder storage: a runner is killed with SIGKILL at random moments and a new
// process resumes each time. Every step body logs its execution, so the test can check that no
// step whose result was committed before a kill ever ran again, and that the output is right.

import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Runtime } from '@wf/core'
import { expect, it } from 'vitest'

const child = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crash-child.mjs')
// sum of i² for i < 20, then 15 increments
const EXPECTED = 2470 + 15

it('never re-runs a committed step across 12 SIGKILLs at random moments, and finishes with the right output', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wf-crash-'))
  const storage = join(dir, 'data')
  const log = join(dir, 'executions.log')
  const workflowId = 'crash-1'
  const runtime = new Runtime(storage)
  const store = await runtime.store()
  const committedBefore = new Map<number, Set<string>>() // pid of a process → steps committed before it started
  const start = () => {
    const proc = spawn(process.execPath, [child, storage, workflowId, log], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    // Listen from the start: a child that exits before it is killed must not leave us waiting.
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
    return Object.assign(proc, { exited })
  }
  try {
    for (let kill = 0; kill < 12; kill++) {
      const before = new Set(await store.listStepIds(workflowId).catch(() => []))
      const proc = start()
      committedBefore.set(proc.pid as number, before)
      await new Promise((resolve) => setTimeout(resolve, 40 + Math.random() * 250))
      proc.kill('SIGKILL')
      await proc.exited
    }
    const before = new Set(await store.listStepIds(workflowId))
    const last = start()
    committedBefore.set(last.pid as number, before)
    let out = ''
    let err = ''
    last.stdout.on('data', (chunk) => (out += chunk))
    last.stderr.on('data', (chunk) => (err += chunk))
    const code = await last.exited
    expect(err).toBe('')
    expect(code).toBe(0)
    expect(JSON.parse(out)).toBe(EXPECTED)

    const runs = readFileSync(log, 'utf8').trim().split('\n')
    for (const line of runs) {
      const [pid, stepId] = line.split(' ') as [string, string]
      const committed = committedBefore.get(Number(pid))
      expect(committed, `unknown runner ${pid}`).toBeDefined()
      expect(committed?.has(stepId), `${stepId} ran again in ${pid} after it was committed`).toBe(false)
    }
    // Every step ran at least once and is committed exactly once (one record per step id).
    const finalSteps = await store.listStepIds(workflowId)
    expect(finalSteps).toHaveLength(1 + 20 + 15)
    expect(new Set(runs.map((line) => line.split(' ')[1])).size).toBe(finalSteps.length)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 120_000)
