// Crash test on sqlite://: a runner is killed with SIGKILL at random moments and a new process
// resumes each time. Every step body logs its execution, so the test can check that no step whose
// result was committed before a kill ever ran again, and that the output is right.

import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Runtime } from '@wf/core'
import { expect, it } from 'vitest'
import { createSqliteStorage } from '../src/index.js'
import { fixture, packageDir, requireBuild, tempDir } from './support.js'

// sum of i² for i < 20, then 15 increments
const EXPECTED = 2470 + 15
const KILLS = 12

/** Resolves once the log shows that process `pid` has started a step. */
async function ranAStep(pid: number, log: string): Promise<void> {
  const mark = `${pid} `
  for (let i = 0; i < 1000; i++) {
    if (existsSync(log) && readFileSync(log, 'utf8').includes(mark)) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

it(`never re-runs a committed step across ${KILLS} SIGKILLs at random moments, and finishes with the right output`, async () => {
  requireBuild()
  const temp = tempDir('crash')
  const database = join(temp.dir, 'wf.db')
  const log = join(temp.dir, 'executions.log')
  const workflowId = 'crash-1'
  // The test reads the database while the children write it: WAL lets both run.
  const storage = await createSqliteStorage({ path: database })
  const store = await new Runtime(storage).store()
  const committedBefore = new Map<number, Set<string>>() // pid of a process → steps committed before it started
  // Listen for the exit at spawn: a child that fails fast must not leave the test waiting forever.
  const start = () => {
    const proc = spawn(process.execPath, [fixture('crash-child.mjs'), database, workflowId, log], {
      cwd: packageDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (chunk) => (stdout += chunk))
    proc.stderr.on('data', (chunk) => (stderr += chunk))
    const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      proc.once('close', (code) => resolve({ code, stdout, stderr })),
    )
    return { pid: proc.pid as number, kill: () => proc.kill('SIGKILL'), exit }
  }
  const kills: number[] = [] // steps committed after each kill
  try {
    for (let kill = 0; kill < KILLS; kill++) {
      const before = new Set(await store.listStepIds(workflowId))
      const proc = start()
      committedBefore.set(proc.pid, before)
      // Kill at a random moment after the child started running steps (Node's start-up alone
      // takes a few hundred ms, so a fixed delay would mostly kill processes that did nothing).
      await Promise.race([proc.exit, ranAStep(proc.pid, log)])
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 150))
      proc.kill()
      const { stderr } = await proc.exit
      expect(stderr, `runner ${kill} failed before it was killed`).toBe('')
      kills.push((await store.listStepIds(workflowId)).length)
    }
    // Some kills landed after steps were committed, so resumes had work both done and to do.
    expect(
      kills.some((committed) => committed > 0),
      `steps committed after each kill: ${kills}`,
    ).toBe(true)
    const before = new Set(await store.listStepIds(workflowId))
    const last = start()
    committedBefore.set(last.pid, before)
    const timer = setTimeout(last.kill, 60_000)
    const { code, stdout, stderr } = await last.exit
    clearTimeout(timer)
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toBe(EXPECTED)

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
    await storage.close()
    temp.remove()
  }
}, 120_000)
