// A worker process: runs the workflows submitted to the storage (WF_STORAGE), wakes the parked ones
// when they are due, and, with --schedules, fires the heartbeat schedule. It prints one line per
// thing it does; SIGTERM stops it gracefully.
//
//   WF_STORAGE=./workflow_data node dist/worker.js [--schedules]

import { createWorker } from '@wf/core'
import './order.js' // registers the order's steps

const withSchedules = process.argv.includes('--schedules')
if (withSchedules) await import('./heartbeat.js') // declares the schedule, so this worker fires it

const worker = createWorker({
  pollIntervalMs: 100,
  // Let a waiting workflow go at once (the default waits a minute): no process holds it while it waits.
  parkAfterMs: 0,
  onTake: (workflowId) => console.log(`took ${workflowId}`),
  // PARKED: it waits (for an event, or a sleep longer than parkAfterMs) and is stored, held by no one.
  onWorkflow: ({ workflowId, outcome, error }) =>
    console.log(
      outcome === 'PARKED'
        ? `parked ${workflowId}`
        : `${workflowId} ${outcome}${outcome === 'ERROR' || outcome === 'FAILED' ? `: ${String(error)}` : ''}`,
    ),
  onSchedule: ({ outcome, runId, scheduleId, tick }) =>
    console.log(`${outcome.toLowerCase()} ${runId ?? `${scheduleId} tick ${new Date(tick).toISOString()}`}`),
})
console.log(`ready (pid ${process.pid}${withSchedules ? ', firing schedules' : ''})`)
await worker.stopped
await worker.runtime.close()
