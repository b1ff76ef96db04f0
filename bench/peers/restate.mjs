// Restate measured in the same run as wf and DBOS, on the same disk: the issue's figures for Restate
// (1.7: 897, 730 and 464 µs per step for a, b, c) were taken on another day. Installs the pinned
// server and SDK on demand (outside the workspace, install-restate.mjs), and runs scenarios a-c each
// against a restate-server of its own (a new cluster in a folder of its own, so one scenario's
// invocations do not carry into the next) with a restate-worker.mjs process serving the steps.
//
// Durability: Restate's defaults for one node, spelled out in the config below. Every journal entry
// (a `ctx.run`'s result included) is appended to the log (Bifrost; on one node the log-server's
// RocksDB) and its write-ahead log is fsynced before the append is acknowledged and the step seen
// as completed (`rocksdb-disable-wal-fsync = false`); appends waiting together share one fsync, as
// wf's journal's appends do. The partitions' own RocksDB stores are rebuilt from that log after a
// crash and are not fsynced per write, as wf's journal's value files are not.
//
// Alone: `node bench/peers/restate.mjs [--quick]` prints the µs per step of a, b and c.
import { spawn } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, runPeerWorker } from './common.mjs'
import { ensureRestate } from './install-restate.mjs'

const here = dirname(fileURLToPath(import.meta.url))
/** How long a new server may take to report healthy (creating its RocksDB stores, electing leaders). */
const START_TIMEOUT_MS = 90_000

/** The server's configuration: one node on 127.0.0.1, its data in `data`, durability spelled out. */
function configFor({ data, node, ingress, admin }) {
  return [
    'cluster-name = "wf-bench"',
    'node-name = "wf-bench"',
    `base-dir = ${JSON.stringify(data)}`,
    'disable-telemetry = true',
    'listen-mode = "tcp"', // no unix sockets under base-dir (a long temp path outgrows sun_path)
    `bind-address = "127.0.0.1:${node}"`,
    `advertised-address = "http://127.0.0.1:${node}/"`,
    'log-filter = "warn"',
    'shutdown-timeout = "10s"',
    '',
    '[ingress]',
    `bind-address = "127.0.0.1:${ingress}"`,
    '',
    '[admin]',
    `bind-address = "127.0.0.1:${admin}"`,
    'disable-web-ui = true',
    '',
    // The defaults, spelled out: an append to the log is acknowledged after its WAL is fsynced, on
    // the log-server (the default "replicated" loglet, replication 1 on one node) and on the
    // "local" loglet (the other provider).
    '[bifrost]',
    'default-provider = "replicated"',
    '',
    '[bifrost.local]',
    'rocksdb-disable-wal = false',
    'rocksdb-disable-wal-fsync = false',
    '',
    '[log-server]',
    'rocksdb-disable-wal-fsync = false',
    '',
  ].join('\n')
}

/**
 * Starts `restate-server` (the binary at `binary`) with its data and log in `dir`, listening on
 * 127.0.0.1 only, on free ports. Resolves once its admin API and ingress answer, to
 * `{ admin, ingress, stop }`: base URLs, and `stop()`, which stops the server (SIGTERM, SIGKILL after
 * 20 s) and resolves once it has exited. The folder is left in place.
 */
export async function startRestate(binary, dir) {
  dir = resolve(dir)
  mkdirSync(dir, { recursive: true })
  const logFile = join(dir, 'restate.log')
  for (let attempt = 1; ; attempt++) {
    const ports = { node: await freePort(), ingress: await freePort(), admin: await freePort() }
    const config = join(dir, 'restate.toml')
    writeFileSync(config, configFor({ data: join(dir, 'data'), ...ports }))
    const log = createWriteStream(logFile, { flags: 'a' })
    const child = spawn(binary, ['--config-file', config, '--no-logo'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    })
    child.stdout.pipe(log)
    child.stderr.pipe(log)
    const exited = new Promise((resolveExit) =>
      child.once('exit', (code, signal) => resolveExit(code ?? signal)),
    )
    const onExit = () => child.kill('SIGKILL')
    process.once('exit', onExit)
    const admin = `http://127.0.0.1:${ports.admin}`
    const ingress = `http://127.0.0.1:${ports.ingress}`
    const healthy = async () => {
      for (const url of [`${admin}/health`, `${ingress}/restate/health`]) {
        const response = await fetch(url).catch(() => undefined)
        if (!response?.ok) return false
      }
      return true
    }
    const started = Date.now()
    let exitedWith
    exited.then((code) => {
      exitedWith = code
    })
    while (exitedWith === undefined && Date.now() - started < START_TIMEOUT_MS && !(await healthy()))
      await new Promise((resolveWait) => setTimeout(resolveWait, 200))
    const stop = async () => {
      process.off('exit', onExit)
      if (exitedWith === undefined) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
        await exited
        clearTimeout(timer)
      }
      log.end()
    }
    if (exitedWith === undefined && (await healthy())) return { admin, ingress, stop }
    await stop()
    const tail = readFileSync(logFile, 'utf8').slice(-2000)
    // Another process may have taken a port between freePort() and the server's bind.
    if (attempt < 3 && /Address already in use|AddrInUse/i.test(tail)) continue
    throw new Error(
      `restate-server did not become healthy (${exitedWith === undefined ? `not within ${START_TIMEOUT_MS / 1000} s` : `exit ${exitedWith}`}); its log (${logFile}) ends: ${tail}`,
    )
  }
}

/**
 * Measures Restate on scenarios `scenarios` (default a, b, c), one server and one worker process
 * each, one after the other, in new folders under `work` (left there: the caller deletes `work`).
 * Resolves to `{ version, results: { a: { ms, steps, runs }, … } }` like measureDbos, where a
 * scenario that failed is `{ error: message }`; only installing throws.
 *
 * @example
 * const restate = await measureRestate({ root, work, quick: false })
 * const usPerStep = (restate.results.a.ms * 1000) / restate.results.a.steps
 */
export async function measureRestate({ root, work, quick = false, scenarios = ['a', 'b', 'c'] }) {
  const { server, sdk, serverVersion, sdkVersion } = ensureRestate(
    join(root, 'node_modules', '.cache', 'wf-bench-peers'),
  )
  mkdirSync(work, { recursive: true })
  const version = `${serverVersion} (SDK ${sdkVersion})`
  const results = {}
  for (const scenario of scenarios) {
    let restate
    try {
      restate = await startRestate(server, mkdtempSync(join(work, `restate-${scenario}-`)))
      const { ms, steps, runs } = await runPeerWorker(join(here, 'restate-worker.mjs'), {
        scenario,
        sdk,
        admin: restate.admin,
        ingress: restate.ingress,
        quick,
        version,
      })
      results[scenario] = { ms, steps, runs }
    } catch (error) {
      results[scenario] = { error: error.message }
    } finally {
      await restate?.stop()
    }
  }
  return { version, results }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = performance.now()
  const work = mkdtempSync(join(tmpdir(), 'wf-bench-restate-'))
  try {
    const { version, results } = await measureRestate({
      root: join(here, '..', '..'),
      work,
      quick: process.argv.includes('--quick'),
    })
    console.log(
      `Restate ${version}, log fsynced per append batch, in ${((performance.now() - started) / 1000).toFixed(1)} s:`,
    )
    for (const [id, r] of Object.entries(results)) {
      if (r.error) console.log(`  ${id}: failed: ${r.error}`)
      else
        console.log(
          `  ${id}: ${((r.ms * 1000) / r.steps).toFixed(0)} µs/step (median of ${r.runs.length}: ${r.runs.map((ms) => ((ms * 1000) / r.steps).toFixed(0)).join(', ')})`,
        )
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
