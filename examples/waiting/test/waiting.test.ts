// Runs the built example as a real process (which starts its own worker and approver processes) on
// a fresh folder, and checks what it printed against what the storage holds afterwards.

import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WorkflowClient } from '@wf/client'
import { expect, it } from 'vitest'

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js')

it('parks an order while it waits for an approval sent by another process and while it sleeps, ships it, and fires a schedule twice', async () => {
  const storage = mkdtempSync(join(tmpdir(), 'wf-waiting-test-'))
  try {
    const run = spawnSync(process.execPath, [main], {
      env: { ...process.env, WF_STORAGE: storage },
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
    const out = run.stdout
    const orderId = /submitted (order-\S+)/.exec(out)?.[1] as string
    expect(orderId).toBeDefined()
    // Waiting for the event: parked, no runner.
    expect(out).toContain(`${orderId} is PENDING, parked: no process holds it (runner: none)`)
    expect(out).toMatch(/waiting for event\(s\) approved in step\(s\) \S+wf:receive/)
    expect(out).toContain(`[approve] sent approved to ${orderId} (event #1)`)
    // Then sleeping, parked again; the event was taken by the receiving step.
    expect(out).toMatch(/took the event and is parked again, sleeping until .+ \(\S+wf:sleep~wf:timer\)/)
    expect(out).toMatch(/event #1 approved, sent at .+, taken by \S+wf:receive/)
    expect(out).toContain(`${orderId} ended SUCCESSFUL`)
    // Two ticks, each a workflow whose output names its tick.
    const beats = [...out.matchAll(/^ {3}(heartbeat@(\S+)): "beat at (\S+)"$/gm)]
    expect(beats).toHaveLength(2)
    for (const [, , tick, beatTick] of beats) expect(beatTick).toBe(tick)
    expect(out).toMatch(/schedule heartbeat: Every second, paused, last run heartbeat@/)

    // What the storage holds agrees.
    const client = new WorkflowClient({ storage })
    try {
      expect(await client.getOutput(orderId)).toMatchObject({ orderId, items: 3, approvedBy: 'ana' })
      const events = await client.listEvents(orderId)
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({
        seq: 1,
        name: 'approved',
        takenBy: expect.stringMatching(/wf:receive$/),
      })
      for (const [, runId] of beats) expect(await client.getStatus(runId as string)).toBe('SUCCESSFUL')
      const [heartbeat] = await client.listSchedules()
      expect(heartbeat).toMatchObject({ scheduleId: 'heartbeat', paused: true, spec: { everyMs: 1000 } })
    } finally {
      await client.close()
    }
  } finally {
    rmSync(storage, { recursive: true, force: true })
  }
}, 90_000)
