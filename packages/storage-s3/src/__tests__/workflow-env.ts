// Shared by the workflow tests on S3: spawning the report pipeline child (fixtures/report-child.mjs,
// which runs the built dist of @wf/core and @wf/storage-s3), reading its execution log, and the
// output the pipeline must give.

import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { credentials } from './s3-env.js'

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'report-child.mjs')

/** The output of the report pipeline over `days` days: day d gives d, 2d, 3d, each doubled. */
export function expectedReport(days: number): { days: number; values: number; total: number } {
  return { days, values: 3 * days, total: 6 * days * (days + 1) }
}

/** Steps of the pipeline over `days` days: planReport, report, and fetchDay + clean per day. */
export function stepCount(days: number): number {
  return 2 * days + 2
}

/** An `s3://` URI for core's init(), path-style on the test gateway. */
export function s3Uri(endpoint: string, bucket: string, prefix: string, extra = ''): string {
  return `s3://${bucket}/${prefix}?region=us-east-1&endpoint=${encodeURIComponent(endpoint)}&forcePathStyle=true${extra}`
}

export interface ReportChild {
  process: ChildProcess
  /** Resolves when the child exits, with what it printed. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>
}

/** Starts the report pipeline child: `run` a new workflow over `days` days, or `resume` one. */
export function reportChild(options: {
  command: 'run' | 'resume'
  workflowId: string
  storage: string
  log: string
  days?: number
  stepDelayMs?: number
}): ReportChild {
  const { command, workflowId, storage, log, days = 0, stepDelayMs = 50 } = options
  const child = spawn(process.execPath, [CHILD, command, workflowId, String(days)], {
    env: {
      ...process.env,
      WF_STORAGE: storage,
      WF_TEST_LOG: log,
      WF_TEST_STEP_DELAY_MS: String(stepDelayMs),
      // The URI carries no credentials: the SDK's default chain reads them from here.
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const exited = new Promise<{
    code: number | null
    signal: NodeJS.Signals | null
    stdout: string
    stderr: string
  }>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { process: child, exited }
}

/** What a child printed: its output, or the error its run rejected with. */
export type ChildResult =
  | { output: unknown; error?: undefined }
  | { output?: undefined; error: { name: string; code?: string; message: string; unavailable: boolean } }

export function parseResult(stdout: string, stderr: string): ChildResult {
  const line = stdout.trim().split('\n').pop() ?? ''
  try {
    return JSON.parse(line) as ChildResult
  } catch {
    throw new Error(`the child printed no result; stdout: ${stdout}\nstderr: ${stderr}`)
  }
}

/** The log's "<pid> <stepId>" lines: every step execution, in order. */
export function executions(log: string): { pid: number; stepId: string }[] {
  if (!existsSync(log)) return []
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [pid, stepId] = line.split(' ')
      return { pid: Number(pid), stepId: stepId ?? '' }
    })
}

/** Step ids a given process ran. */
export function ranBy(log: string, pid: number | undefined): string[] {
  return executions(log)
    .filter((e) => e.pid === pid)
    .map((e) => e.stepId)
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
