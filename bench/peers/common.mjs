// What the peers of the benchmark (DBOS, Restate) share: installing pinned npm packages into a cache
// folder outside the workspace, a free local port for their servers, running one worker process per
// scenario and reading its RESULT line, and a worker's warm-up and measured runs.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { runForResult } from '../run-worker.mjs'

/** A worker that has not printed its result by then is stuck: (a) takes seconds, not minutes. */
export const WORKER_TIMEOUT_MS = 10 * 60_000

/**
 * `npm install --no-save` of `specs` (`name@version`) into `prefix`, with `extraArgs`; throws with
 * npm's stderr when npm fails. The caller checks afterwards that what it needs is there.
 */
export function npmInstall(prefix, name, specs, extraArgs = []) {
  mkdirSync(prefix, { recursive: true })
  // --prefix without a package.json of its own would make npm walk up to the workspace's: an
  // empty one pins the install to this folder.
  if (!existsSync(`${prefix}/package.json`))
    writeFileSync(`${prefix}/package.json`, `{ "name": "${name}", "private": true }\n`)
  const npm = spawnSync(
    'npm',
    [
      'install',
      '--no-save',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      ...extraArgs,
      '--prefix',
      prefix,
      ...specs,
    ],
    { cwd: prefix, encoding: 'utf8' },
  )
  if (npm.status !== 0)
    throw new Error(
      `npm could not install ${specs.join(' and ')} into ${prefix} (exit ${npm.status}): ${(npm.stderr || npm.error?.message || '').trim().slice(-2000)}`,
    )
}

/** A TCP port free on 127.0.0.1 right now (a server binds it a moment later: its start retries). */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolvePort(port))
    })
  })
}

/**
 * Runs `node [nodeArgs] script <job as JSON>` and resolves to its `RESULT <json>` line, parsed;
 * rejects with the end of its stderr when it fails or outlives WORKER_TIMEOUT_MS.
 */
export async function runPeerWorker(script, job, nodeArgs = []) {
  const name = script
    .split('/')
    .pop()
    .replace(/\.mjs$/, '')
  const { code, signal, stdout, stderr, result } = await runForResult(script, job, {
    execArgv: nodeArgs,
    timeoutMs: WORKER_TIMEOUT_MS,
  })
  if (code === 0 && result !== undefined) {
    if (stderr.trim()) process.stderr.write(stderr) // the peer's warnings, if any
    return result
  }
  const why =
    signal === 'SIGKILL' ? `killed after ${WORKER_TIMEOUT_MS / 60_000} min` : `exit ${code ?? signal}`
  throw new Error(
    `${name} ${job.scenario} failed (${why}): ${stderr.trim().slice(-1500) || stdout.slice(-500)}`,
  )
}

/**
 * A worker's measurement: `warmUp` runs of `run(tag)`, then `measured` timed ones; resolves to
 * `{ ms, runs }`, `ms` their median.
 */
export async function measureRuns(run, warmUp, measured) {
  const timed = async (tag) => {
    const t = performance.now()
    await run(tag)
    return performance.now() - t
  }
  for (let i = 0; i < warmUp; i++) await timed(`-warm${i + 1}`)
  const runs = []
  for (let i = 0; i < measured; i++) runs.push(await timed(`-${i + 1}`))
  const sorted = [...runs].sort((x, y) => x - y)
  return { ms: sorted[sorted.length >> 1], runs }
}
