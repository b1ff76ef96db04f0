// Shared by the tests: temp folders, the built package the child processes import, and running a
// child process to its end.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')
export const fixture = (name: string): string => join(packageDir, 'test', 'fixtures', name)

/** Child processes import the package by name, which resolves to dist/: fail clearly when it was not built. */
export function requireBuild(): void {
  if (!existsSync(join(packageDir, 'dist', 'index.js'))) {
    throw new Error(
      'examples/storage-sqlite/dist is missing: run `npx -y pnpm@10.34.9 --filter @wf/example-storage-sqlite build` first',
    )
  }
}

/** A fresh temp folder, removed by the returned function. */
export function tempDir(label: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `wf-sqlite-${label}-`))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

export interface Exit {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `node args…` in the package folder (so '@wf/…' imports resolve as in an app) and collects its output. */
export function runNode(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  const child = spawn(process.execPath, args, {
    cwd: packageDir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => (stdout += chunk))
  child.stderr.on('data', (chunk) => (stderr += chunk))
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}
