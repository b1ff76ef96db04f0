// Runs the built example as a real process (which runs the order in a child process and kills it
// during its sleep) on a fresh folder, and checks from its output that the resume ran only the
// charge, and from the storage that both orders ended as printed.

import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WorkflowClient } from '@wf/client'
import { expect, it } from 'vitest'

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js')

it('resumes an order whose process was killed in its sleep without running its committed steps again, and skips the review of a small order', async () => {
  const storage = mkdtempSync(join(tmpdir(), 'wf-durable-order-test-'))
  try {
    const run = spawnSync(process.execPath, [main], {
      env: { ...process.env, WF_STORAGE: storage },
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
    const out = run.stdout
    const killed = /SIGKILL its process \(pid (\d+)\)/.exec(out)?.[1] as string
    const resumer = /this process \(pid (\d+)\) resumes it/.exec(out)?.[1] as string
    expect(killed).toBeDefined()
    expect(resumer).toBeDefined()
    const steps = (pid: string) =>
      [...out.matchAll(new RegExp(`^ {3}\\[pid ${pid}\\] (step \\w+|body)`, 'gm'))].map((m) => m[1])
    // Side by side, the reservations finish in any order: compare them as a set.
    const first = steps(killed)
    expect(first.slice(0, 2)).toEqual(['body', 'step loadOrder'])
    expect(first.slice(2, 5)).toEqual(['step reserve', 'step reserve', 'step reserve'])
    expect(first.slice(5)).toEqual(['step review'])
    // The resume: the body again, then only the charge; then the small order, without review.
    expect(steps(resumer)).toEqual([
      'body',
      'step charge',
      'body',
      'step loadOrder',
      'step reserve',
      'step charge',
    ])
    expect(out).toContain('order-o-42 ended SUCCESSFUL')

    const client = new WorkflowClient({ storage })
    try {
      expect(await client.getOutput('order-o-42')).toEqual({
        orderId: 'o-42',
        charged: 1250,
        reservations: ['res-desk', 'res-chair', 'res-lamp'],
        reviewed: true,
      })
      expect(await client.getOutput('order-o-7')).toEqual({
        orderId: 'o-7',
        charged: 6,
        reservations: ['res-pen'],
        reviewed: false,
      })
    } finally {
      await client.close()
    }
  } finally {
    rmSync(storage, { recursive: true, force: true })
  }
}, 90_000)
