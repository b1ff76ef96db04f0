// One measurement of bench/worker.mjs in a process of its own (so peak RSS is the scenario's):
// resolves to its RESULT line, parsed. Used by `pnpm bench` (scripts/bench.mjs), bench/ab.mjs and
// bench/durable.mjs.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const workerScript = join(dirname(fileURLToPath(import.meta.url)), 'worker.mjs')

/**
 * Runs `node [execArgv] script <job as JSON>` and resolves once it ended with what it printed and
 * its `RESULT <json>` line parsed (`result`: undefined when it printed none); killed with SIGKILL
 * after `timeoutMs`. `echo` copies its stderr (progress lines) to ours as it comes. The bench's
 * workers and the peers' (bench/peers/) all report this way.
 */
export function runForResult(script, job, { execArgv = [], echo = false, timeoutMs } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...execArgv, script, JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stderr.on('data', (chunk) => {
      stderr += chunk
      if (echo) process.stderr.write(chunk)
    })
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '))
      const result = line === undefined ? undefined : JSON.parse(line.slice('RESULT '.length))
      resolvePromise({ code, signal, stdout, stderr, result })
    })
  })
}

/** Runs `job` in a worker process; `echo` copies its stderr (its progress lines) to ours. */
export async function runWorker(job, { execArgv = [], echo = false } = {}) {
  const { code, stderr, result } = await runForResult(workerScript, job, { execArgv, echo })
  if (code === 0 && result !== undefined) return result
  const why = stderr.match(/^(\w*Error\b.*)$/m)?.[1] ?? stderr.slice(-300)
  throw new Error(`worker exited with ${code}: ${why}`)
}
