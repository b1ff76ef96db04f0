// wf quickstart: runs a workflow with a fan-out and a continuation, then runs a second one in a
// child process, kills it with SIGKILL part-way through, and resumes it in a fresh process. It
// prints which steps ran in which process, and checks that no committed step ran again.
//
//   npx -y pnpm@10.34.9 install && npx -y pnpm@10.34.9 example

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultStoragePath, getRuntime } from '@wf/core'
import { planReport } from './pipeline.js'

const here = dirname(fileURLToPath(import.meta.url))
const logDir = mkdtempSync(join(tmpdir(), 'wf-quickstart-'))
const log = join(logDir, 'executions.log')
process.env.QUICKSTART_LOG = log
const runId = Date.now().toString(36)

function executions(): { pid: number; stepId: string }[] {
  if (!existsSync(log)) return []
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [pid, stepId] = line.split(' ')
      return { pid: Number(pid), stepId: stepId as string }
    })
}

function child(command: 'run' | 'resume', workflowId: string) {
  const proc = spawn(process.execPath, [join(here, 'child.js'), command, workflowId], {
    // The children use the same storage as this process (and this process already said where it is).
    env: { ...process.env, WF_STORAGE: process.env.WF_STORAGE ?? defaultStoragePath() },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  // Listen from the start: a child that exits early must not leave us waiting for an 'exit' already gone.
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  return Object.assign(proc, { exited })
}

// 1. A workflow in this process, on the default storage (a folder under the OS temp dir, or WF_STORAGE).
const first = `quickstart-${runId}-a`
console.log(`\n1. running workflow ${first} in this process (pid ${process.pid})`)
const output = await planReport('2026-11-01', 4).run({ workflowId: first })
console.log('   output:', output)
console.log(`   ${executions().length} step executions`)

// 2. A second workflow in a child process, killed with SIGKILL part-way through.
const second = `quickstart-${runId}-b`
const before = executions().length
console.log(`\n2. running workflow ${second} in a child process, and killing it with SIGKILL mid-run`)
const victim = child('run', second)
const runtime = getRuntime()
const store = await runtime.store()
// Kill it once some of its steps are committed and others are still running.
while ((await store.listStepIds(second).catch(() => [])).length < 7)
  await new Promise((r) => setTimeout(r, 10))
victim.kill('SIGKILL')
await victim.exited
const stored = await store.requireWorkflow(second)
const committed = new Set(await store.listStepIds(second))
console.log(
  `   killed pid ${victim.pid}; status now ${runtime.deriveStatus(stored.record)}; ${committed.size} steps committed`,
)

// 3. A fresh process resumes it.
console.log('\n3. resuming it in a fresh process')
const resumer = child('resume', second)
let resumed = ''
resumer.stdout.on('data', (chunk) => {
  resumed += chunk
})
const code = await resumer.exited
if (code !== 0) throw new Error(`the resuming process failed with exit code ${String(code)}`)
console.log('   output:', JSON.parse(resumed))

// 4. Who ran what.
const runs = executions().slice(before)
const byPid = new Map<number, string[]>()
for (const { pid, stepId } of runs) byPid.set(pid, [...(byPid.get(pid) ?? []), stepId])
console.log('\n4. step executions of the second workflow, by process')
const short = (ids: string[]) =>
  ids.map((id) => id.replace('quickstart.planReport~quickstart.', '')).join(', ')
for (const [pid, steps] of byPid) {
  const who = pid === victim.pid ? 'killed' : pid === resumer.pid ? 'resumer' : 'other'
  console.log(`   pid ${pid} (${who}): ${short(steps)}`)
}
const rerun = (byPid.get(resumer.pid as number) ?? []).filter((id) => committed.has(id))
const inFlight = (byPid.get(resumer.pid as number) ?? []).filter(
  (id) => !committed.has(id) && (byPid.get(victim.pid as number) ?? []).includes(id),
)
if (rerun.length > 0) throw new Error(`committed steps ran again: ${rerun.join(', ')}`)
console.log(`\n   no committed step ran twice (${committed.size} committed before the kill were reused).`)
if (inFlight.length > 0) {
  console.log(
    `   ran again because they were in flight, never committed, when the process died: ${short(inFlight)}`,
  )
}
console.log(`\nworkflow data: ${(await runtime.storage()).constructor.name} (set WF_STORAGE to choose where)`)
rmSync(logDir, { recursive: true, force: true })
