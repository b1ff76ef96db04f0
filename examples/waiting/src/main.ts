// wf waiting example: an order that waits for an approval sent by another process and then sleeps,
// parked in the storage while it waits (no process holds it), run by a worker process; then a
// schedule fired every second by a worker, two ticks. It prints what happens, step by step.
//
//   npx -y pnpm@10.34.9 --filter @wf/example-waiting... build && node examples/waiting/dist/main.js

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as pause } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { WorkflowClient, type WorkflowMetadata } from '@wf/client'
import { getRuntime } from '@wf/core'
import { order, type Shipped } from './order.js'

const here = dirname(fileURLToPath(import.meta.url))
// A fresh folder unless WF_STORAGE names one: every process below uses the same.
const storage = process.env.WF_STORAGE ?? mkdtempSync(join(tmpdir(), 'wf-waiting-'))
process.env.WF_STORAGE = storage
const client = new WorkflowClient({ storage })
const runId = Date.now().toString(36)
const clock = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)} UTC`

/** A child process running one of this example's scripts; its stdout lines go to `onLine`. */
function child(script: string, args: string[], onLine: (line: string) => void) {
  const proc = spawn(process.execPath, [join(here, script), ...args], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let buffer = ''
  proc.stdout.setEncoding('utf8')
  proc.stdout.on('data', (chunk: string) => {
    buffer += chunk
    for (let newline = buffer.indexOf('\n'); newline !== -1; newline = buffer.indexOf('\n')) {
      onLine(buffer.slice(0, newline))
      buffer = buffer.slice(newline + 1)
    }
  })
  // Listen from the start: a child that exits early must not leave us waiting for an 'exit' already gone.
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  return Object.assign(proc, { exited })
}

function worker(args: string[], onLine: (line: string) => void = () => {}) {
  return child('worker.js', args, (line) => {
    console.log(`   [worker] ${line}`)
    onLine(line)
  })
}

/** Polls the workflow's metadata until `test` holds (each read is a few files on the folder). */
async function until(workflowId: string, test: (meta: WorkflowMetadata) => boolean) {
  for (;;) {
    const meta = await client.getMetadata(workflowId)
    if (test(meta)) return meta
    await pause(50)
  }
}

async function stop(proc: ChildProcess & { exited: Promise<number | null> }) {
  proc.kill('SIGTERM')
  const code = await proc.exited
  if (code !== 0) throw new Error(`a child process exited with code ${String(code)}`)
}

const children: ChildProcess[] = []
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
})

// 1. A worker process, and an order submitted for it.
console.log(`storage: ${storage}`)
console.log('\n1. starting a worker process, and submitting an order for it')
const orders = worker([])
children.push(orders)
const orderId = `order-${runId}`
await getRuntime().submit(order(orderId, 3), { workflowId: orderId })
console.log(`   submitted ${orderId}`)

// 2. Reserved, it waits for the event `approved`: parked, held by no process.
const waiting = await until(orderId, (m) => m.waitingFor?.events !== undefined)
console.log(
  `\n2. ${orderId} is ${waiting.status}, parked: no process holds it (runner: ${waiting.runner ? 'yes' : 'none'})`,
)
console.log(
  `   waiting for event(s) ${waiting.waitingFor?.events?.join(', ')} in step(s) ${waiting.waitingFor?.steps.join(', ')}`,
)
if (waiting.waitingFor?.until !== undefined)
  console.log(`   it gives up at ${clock(waiting.waitingFor.until)} (the timeout of one hour)`)

// 3. Another process approves it.
console.log('\n3. another process sends the approval')
const approver = child('approve.js', [orderId, 'ana'], (line) => console.log(`   [approve] ${line}`))
if ((await approver.exited) !== 0) throw new Error('the approving process failed')
// Parked again while it sleeps (or, on a machine too busy to look within the sleep, already ended).
const sleeping = await until(
  orderId,
  (m) => (m.waitingFor !== undefined && m.waitingFor.events === undefined) || m.status === 'SUCCESSFUL',
)
if (sleeping.waitingFor)
  console.log(
    `   ${orderId} took the event and is parked again, sleeping until ${clock(sleeping.waitingFor.until ?? 0)} (${sleeping.waitingFor.steps.join(', ')})`,
  )
else console.log(`   ${orderId} took the event, slept and ended before this process looked`)
for (const event of await client.listEvents(orderId))
  console.log(
    `   event #${event.seq} ${event.name}, sent at ${clock(event.sentAt)}, taken by ${event.takenBy ?? '(nobody yet)'}`,
  )

// 4. The worker wakes it when the sleep is over, and it ships.
const shipped = await client.getOutput<Shipped>(orderId, { pollIntervalMs: 100 })
console.log(`\n4. woken by the worker, ${orderId} ended ${await client.getStatus(orderId)}:`)
console.log(`   ${JSON.stringify(shipped)}`)
await stop(orders)

// 5. A schedule: a worker that imports heartbeat.js fires it every second.
console.log("\n5. a worker that imports heartbeat.js fires schedule('heartbeat', { every: '1s' }): two ticks")
// The runs the worker finished, in order: a tick is reported fired once decided, a moment before its
// run is stored, so this waits for the worker to say each run ended.
const ran: string[] = []
let twoRan!: () => void
const twoTicks = new Promise<void>((resolve) => {
  twoRan = resolve
})
const ticking = worker(['--schedules'], (line) => {
  const match = /^(heartbeat@\S+) SUCCESSFUL$/.exec(line)
  if (match?.[1] && ran.push(match[1]) === 2) twoRan()
})
children.push(ticking)
await twoTicks
// Pause it, so no worker fires it again (its ticks are recorded as skipped until it is resumed).
await client.pauseSchedule('heartbeat')
console.log('   paused it')
for (const runId of ran.slice(0, 2))
  console.log(`   ${runId}: ${JSON.stringify(await client.getOutput(runId))}`)
await stop(ticking)
for (const s of await client.listSchedules()) {
  console.log(
    `   schedule ${s.scheduleId}: ${s.description}, ${s.paused ? 'paused' : 'active'}, last run ${s.lastRun ?? '-'}, next tick ${s.nextTick === undefined ? '-' : clock(s.nextTick)}, ${s.skipped.length} skipped`,
  )
}

await client.close()
console.log(`\nworkflow data: ${storage}`)
