// wf durable-order example: an order workflow written as a durable function (src/order.ts). A first
// process runs it and is killed (SIGKILL) while the order sleeps; this process resumes it: the body
// runs again from the top, every call committed before the crash returns its stored value without
// running, and only the charge runs. Then a small order, which skips the review, in this process.
//
//   npx -y pnpm@10.34.9 --filter @wf/example-durable-order... build && node examples/durable-order/dist/main.js

import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as pause } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { WorkflowClient, type WorkflowMetadata } from '@wf/client'
import { getRuntime } from '@wf/core'
import { processOrder, type Receipt } from './order.js'

const here = dirname(fileURLToPath(import.meta.url))
// A fresh folder unless WF_STORAGE names one: the child process uses the same.
const storage = process.env.WF_STORAGE ?? mkdtempSync(join(tmpdir(), 'wf-durable-order-'))
process.env.WF_STORAGE = storage
const client = new WorkflowClient({ storage })
const clock = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)} UTC`

/** Polls the workflow's metadata until `test` holds. */
async function until(workflowId: string, test: (meta: WorkflowMetadata | undefined) => boolean) {
  for (;;) {
    const meta = await client.getMetadata(workflowId).catch(() => undefined)
    if (test(meta)) return meta as WorkflowMetadata
    await pause(50)
  }
}

console.log(`storage: ${storage}`)

// 1. Another process runs order o-42 until it sleeps, and is killed there.
const workflowId = 'order-o-42'
console.log(
  `\n1. a process runs ${workflowId}: load, reserve 3 items side by side, review (over 1000), sleep`,
)
const first = spawn(process.execPath, [join(here, 'run-order.js'), 'o-42'], {
  env: process.env,
  stdio: ['ignore', 'inherit', 'inherit'],
})
const gone = new Promise((resolve) => first.once('exit', resolve))
const sleeping = await until(workflowId, (m) => m?.waitingFor?.until !== undefined)
console.log(
  `   it sleeps until ${clock(sleeping.waitingFor?.until ?? 0)}: SIGKILL its process (pid ${first.pid})`,
)
first.kill('SIGKILL')
await gone
console.log(`   ${workflowId} is ${await client.getStatus(workflowId)}: stored, held by no process`)

// 2. This process resumes it: the body runs from the top, the committed calls are replayed.
console.log(`\n2. this process (pid ${process.pid}) resumes it: only the charge runs`)
const receipt = await getRuntime().resume<Receipt>(workflowId)
console.log(`   ${workflowId} ended ${await client.getStatus(workflowId)}: ${JSON.stringify(receipt)}`)

// 3. A small order: the `if` skips the review.
console.log('\n3. a small order, o-7, in this process: no review')
const small = await processOrder('o-7').run({ workflowId: 'order-o-7' })
console.log(`   order-o-7: ${JSON.stringify(small)}`)

await client.close()
console.log(`\nworkflow data: ${storage}`)
