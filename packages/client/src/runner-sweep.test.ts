// Runner records of processes that ended without closing their runtime do not pile up in
// `runners/`: the next runtime that writes its own deletes those on this host whose process is
// gone, and those of any host expired more than ten leases ago, and leaves live ones alone.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Runtime, type Storage, step, storeKeys } from '@wf/core'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { folderStorage } from './test-support/harness.js'

const fixture = fileURLToPath(new URL('./test-support/fixtures/run-and-exit.mjs', import.meta.url))
const thrice = step('rs-thrice', (n: number) => n * 3)

let dir: string
let storage: Storage
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wf-runner-sweep-'))
  storage = await folderStorage(dir)
})
afterEach(async () => {
  await storage.close?.()
  rmSync(dir, { recursive: true, force: true })
})

async function runnerIds(): Promise<string[]> {
  const { keys } = await storage.list(storeKeys.runnersPrefix)
  return keys.map((key) => key.slice(storeKeys.runnersPrefix.length))
}

async function putRunner(runnerId: string, host: string, pid: number, leaseExpiresAt: number): Promise<void> {
  const record = { v: 1, runner: { host, pid, runnerId }, leaseExpiresAt, updatedAt: leaseExpiresAt - 1000 }
  await storage.put(storeKeys.runner(runnerId), new TextEncoder().encode(JSON.stringify(record)))
}

it('a runtime deletes the runner records of processes that are gone, and keeps live and recent ones', {
  timeout: 60_000,
}, async () => {
  const uri = `${pathToFileURL(dir).href}?durability=none`
  for (let i = 0; i < 4; i++) execFileSync(process.execPath, [fixture, uri, `rx-${i}`])
  // Each child deletes what the ones before left, if it gets to before it exits: at least the
  // last one's record is there.
  expect((await runnerIds()).length).toBeGreaterThanOrEqual(1)
  const now = Date.now()
  await putRunner('otherhostlongago', 'another-host', 1, now - 3_600_000)
  await putRunner('otherhostrecent', 'another-host', 1, now - 1000)
  await putRunner('alivehere', hostname(), process.pid, now - 1000)

  const runtime = new Runtime(storage, { leaseTtlMs: 10_000, heartbeatMs: 1000 })
  await expect(runtime.run(thrice(3), { workflowId: 'rs-now' })).resolves.toBe(9)
  await vi.waitFor(async () => expect((await runnerIds()).length).toBeLessThanOrEqual(3), { timeout: 10_000 })
  expect(new Set(await runnerIds())).toEqual(
    new Set([runtime.runner.runnerId, 'otherhostrecent', 'alivehere']),
  )
  await runtime.close()
  expect(new Set(await runnerIds())).toEqual(new Set(['otherhostrecent', 'alivehere']))
})
