// Test support for the `wf` command as a real process: the built binary run with arguments in a
// folder (a fixture application, where the storage packages resolve as in a real app), and the
// fixture scripts that fill a storage the way an application would.

import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
/** The built `wf` binary. */
export const bin = join(here, '../../bin/wf.js')
/** The fixture scripts and step modules. */
export const fixtures = join(here, 'fixtures')

/** What a run of `wf` printed, and its exit code. */
export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs `wf args` in `cwd`, without colour and without a `WF_STORAGE` from the environment the
 * tests run in (`env` may set one). Resolves with the exit code, never rejects.
 */
export function runWf(
  args: string[],
  options: { cwd: string; env?: Record<string, string | undefined>; timeout?: number },
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      {
        cwd: options.cwd,
        env: { ...process.env, NO_COLOR: '', WF_STORAGE: '', ...options.env },
        timeout: options.timeout,
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr })
      },
    )
  })
}

/** Runs a fixture script (`fixtures/<script>`) with `args`; rejects when it fails. */
export function runFixture(script: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(fixtures, script), ...args], (error, stdout, stderr) =>
      error ? reject(error) : resolve({ code: 0, stdout, stderr }),
    )
  })
}
