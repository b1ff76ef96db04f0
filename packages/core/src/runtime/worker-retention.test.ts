// Workers' retention: two workers on one storage run one retention pass per interval between
// them (claimed by compare-and-swap on the `retention` record), in bounded shares per poll, and
// delete only the statuses and ages they were given.

import { describe, expect, it } from 'vitest'
import {
  createWorker,
  InvalidOptionsError,
  MemoryStorage,
  type RetentionEvent,
  Runtime,
  step,
  storeKeys,
  type WorkflowRecord,
} from '../index.js'

const DAY = 86_400_000
const one = step('wret.one', (n: number) => n)

describe('worker retention', () => {
  it('two workers run one pass per interval between them, and delete only what the policy names', async () => {
    const storage = new MemoryStorage()
    const runtime = new Runtime(storage)
    await runtime.run(one(1), { workflowId: 'tmpl' })
    const store = await runtime.store()
    const { record } = await store.requireWorkflow('tmpl')
    const endedAt = Date.now() - 10 * DAY
    // 250 old SUCCESSFUL ones (more than a poll's share), 5 old FAILED ones (not in the policy).
    for (let i = 0; i < 255; i++) {
      const copy: WorkflowRecord = {
        ...record,
        workflowId: `old-${i}`,
        status: i < 250 ? 'SUCCESSFUL' : 'FAILED',
        endedAt,
        updatedAt: endedAt,
      }
      delete copy.startBatch
      await store.createWorkflow(copy)
    }
    const starts: Array<{ worker: number; at: number }> = []
    const ends: RetentionEvent[] = []
    const intervalMs = 300
    const workers = [0, 1].map((n) =>
      createWorker({
        storage,
        pollIntervalMs: 5,
        handleSignals: false,
        retention: { SUCCESSFUL: '7d', CANCELED: '1d' },
        retentionIntervalMs: intervalMs,
        onRetention: (event) => {
          if (event.phase === 'start') starts.push({ worker: n, at: event.startedAt })
          if (event.phase === 'end') ends.push(event)
        },
      }),
    )
    // About four intervals, in real time (short).
    await new Promise((resolve) => setTimeout(resolve, 4 * intervalMs + 150))
    await Promise.all(workers.map((w) => w.stop()))

    expect(starts.length).toBeGreaterThanOrEqual(2)
    expect(starts.length).toBeLessThanOrEqual(5)
    const times = starts.map((s) => s.at).sort((a, b) => a - b)
    for (let i = 1; i < times.length; i++)
      expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(intervalMs)
    // The first pass deleted the 250 over several polls; later ones found nothing.
    expect(ends[0]?.workflows).toBe(250)
    expect(ends.slice(1).every((e) => e.workflows === 0)).toBe(true)
    const left = (await storage.list(storeKeys.workflowsPrefix)).keys
    expect(left.filter((k) => k.startsWith('workflows/old-')).length).toBe(5)
    expect((await store.requireWorkflow('tmpl')).record.status).toBe('SUCCESSFUL')
  })

  it('refuses a policy for a status that is not ended, and a bad duration', () => {
    expect(() => createWorker({ retention: { RUNNING: '1d' } as never, handleSignals: false })).toThrow(
      InvalidOptionsError,
    )
    expect(() => createWorker({ retention: { SUCCESSFUL: 'soon' }, handleSignals: false })).toThrow(
      /retention.SUCCESSFUL/,
    )
    expect(() =>
      createWorker({ retention: { SUCCESSFUL: '1d' }, retentionIntervalMs: 0, handleSignals: false }),
    ).toThrow(InvalidOptionsError)
  })
})
