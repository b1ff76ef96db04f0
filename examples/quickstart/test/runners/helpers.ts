// Shared by the runner tests: spawning runner and worker processes (fixtures/*.mjs, which import
// @wf/core as an application would), waiting for what they print, and reading their logs.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures')

export interface Child {
  proc: ChildProcessWithoutNullStreams
  pid: number
  stdout(): string
  stderr(): string
  /** Resolves once the child printed "ready" (its storage is open). */
  ready: Promise<void>
  /** Resolves when the child has exited, with its code (null when killed by a signal) and when. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

function start(script: string, args: string[], env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [join(fixtures, script), ...args], { env: { ...process.env, ...env } })
  let out = ''
  let err = ''
  let onReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => {
    onReady = resolve
  })
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    if (out.includes('ready\n')) onReady()
  })
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  )
  // A child that dies before "ready" must not leave a test waiting forever.
  void exited.then(onReady)
  return { proc, pid: proc.pid as number, stdout: () => out, stderr: () => err, ready, exited }
}

/** A runner process for one workflow: `scenario` is fifty, pause or cancel (see fixtures/runner.mjs). */
export function runner(
  scenario: string,
  storage: string,
  workflowId: string,
  env: Record<string, string>,
): Child {
  return start('runner.mjs', [scenario, storage, workflowId], env)
}

/** A runner process that passes for one on another machine, running `count` workflows far-0… (fixtures/elsewhere.mjs). */
export function runnerElsewhere(storage: string, count: number, env: Record<string, string>): Child {
  return start('elsewhere.mjs', [storage, String(count)], env)
}

/** A worker process (createWorker) on `storage`. */
export function worker(storage: string, env: Record<string, string>): Child {
  return start('worker.mjs', [storage], env)
}

/** Submits `count` workflows job-0… as PENDING from a child process (the application's code). */
export async function submitJobs(storage: string, count: number): Promise<void> {
  const child = start('submit.mjs', [storage, String(count)], {})
  const { code } = await child.exited
  if (code !== 0 || !child.stdout().includes('submitted')) throw new Error(`submit failed: ${child.stderr()}`)
}

/** The last JSON line a runner printed: `{ output }` or `{ error: { code, … } }`. */
export function lastJson(child: Child): { output?: unknown; error?: { code?: string; message: string } } {
  const line = child.stdout().trim().split('\n').pop() ?? ''
  try {
    return JSON.parse(line)
  } catch {
    throw new Error(`no JSON result from ${child.pid}; stdout: ${child.stdout()}\nstderr: ${child.stderr()}`)
  }
}

/** The log's lines, split on spaces. */
export function logLines(log: string): string[][] {
  if (!existsSync(log)) return []
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' '))
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
