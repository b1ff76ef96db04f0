import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js')

it('runs a workflow, survives SIGKILL of a second one, and resumes it without re-running committed steps', () => {
  const storage = mkdtempSync(join(tmpdir(), 'wf-quickstart-test-'))
  try {
    const run = spawnSync(process.execPath, [main], {
      env: { ...process.env, WF_STORAGE: storage, QUICKSTART_STEP_DELAY_MS: '60' },
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(run.stderr).not.toMatch(/Error/)
    expect(run.status).toBe(0)
    expect(run.stdout).toContain('output: { days: 4, rows: 19, total: 887 }')
    expect(run.stdout).toMatch(/status now RESUMABLE; [1-9]\d* steps committed/)
    expect(run.stdout).toContain('output: { days: 8, rows: 36, total: 1632 }')
    expect(run.stdout).toContain('no committed step ran twice')
  } finally {
    rmSync(storage, { recursive: true, force: true })
  }
})
