// Dependency management across real processes: a workflow submitted by one build of a program and
// resumed by another whose step code differs, under each onCodeChange policy.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Runtime } from '@wf/core'
import { afterAll, expect, it } from 'vitest'

const child = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'versioned-child.mjs')
const dir = mkdtempSync(join(tmpdir(), 'wf-code-change-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function run(args: string[], version: string): string {
  return execFileSync(process.execPath, [child, ...args], {
    env: { ...process.env, WF_STEP_VERSION: version },
    encoding: 'utf8',
    timeout: 30_000,
  })
}

it.each([
  ['error', /^ERROR WF_CODE_CHANGED .*step:versioned\.scale/m],
  ['warn', /^WARNING .*step:versioned\.scale[\s\S]*^OUTPUT 14$/m],
  ['ignore', /^OUTPUT 14$/m],
] as const)(
  'resumes a workflow whose step code changed since submission under %s',
  async (policy, expected) => {
    const storage = join(dir, policy)
    expect(run(['submit', storage, 'w', policy], '1')).toMatch(/^ERROR WF_EXECUTION_FAILED/m)
    const out = run(['resume', storage, 'w', policy], '2')
    expect(out).toMatch(expected)
    if (policy === 'ignore') expect(out).not.toContain('WARNING')
    const runtime = new Runtime(storage)
    const status = runtime.deriveStatus((await (await runtime.store()).requireWorkflow('w')).record)
    // 'error' leaves it resumable (FAILED, untouched); the others finish it with the committed scale result (7 * 2).
    expect(status).toBe(policy === 'error' ? 'FAILED' : 'SUCCESSFUL')
    if (policy === 'error') expect(run(['resume', storage, 'w', 'error'], '1')).toMatch(/^OUTPUT 14$/m)
  },
)
