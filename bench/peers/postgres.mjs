// A throwaway PostgreSQL cluster for the peers of the benchmark (DBOS keeps its checkpoints there):
// created in a folder of the run, started for the run, stopped at its end, so the peer's figures
// come from the same disk on the same day as wf's. Durability is PostgreSQL's default (fsync,
// synchronous_commit and full_page_writes on), as in the issue's "local PostgreSQL 15 (fsync on)".
import { execFileSync, spawnSync } from 'node:child_process'
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { freePort } from './common.mjs'

const DEBIAN_BIN = '/usr/lib/postgresql/15/bin'

/** The folder holding initdb, pg_ctl and postgres: from PATH, else Debian's postgresql-15 package. */
function findBinaries() {
  const onPath = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' }).stdout.trim()
  // The programs run by path from one folder: resolve symlinks (this machine's /usr/local/bin/pg_ctl
  // links into Debian's folder) and take the folder only when initdb and postgres sit beside it.
  for (const candidate of [onPath && dirname(realPath(onPath)), DEBIAN_BIN]) {
    if (candidate && ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(candidate, b))))
      return candidate
  }
  throw new Error(
    `PostgreSQL not found (no pg_ctl/initdb/postgres on PATH nor in ${DEBIAN_BIN}): install it with ` +
      '`apt-get install postgresql-15` (Debian 12), or put its bin folder on PATH',
  )
}

function realPath(file) {
  return execFileSync('readlink', ['-f', file], { encoding: 'utf8' }).trim()
}

/**
 * How to run PostgreSQL's programs: initdb and postgres refuse to run as root, so under root they
 * run as the `postgres` user (the Debian package creates it) through runuser, or su without it.
 */
function runnerFor(dir) {
  if (process.getuid?.() !== 0) return (bin, args) => [bin, args]
  if (spawnSync('id', ['-u', 'postgres']).status !== 0)
    throw new Error(
      'running as root, and PostgreSQL refuses to run as root: no `postgres` user to run it as ' +
        '(`apt-get install postgresql-15` creates one), or run the benchmark as another user',
    )
  execFileSync('chown', ['-R', 'postgres:', dir])
  // The postgres user must reach `dir`: give "search" (o+x, not listing) to the folders above it
  // that lack it, e.g. the run's mkdtemp folder (mode 0700).
  for (let folder = dirname(dir); ; folder = dirname(folder)) {
    const { mode } = statSync(folder)
    if ((mode & 0o001) === 0) chmodSync(folder, (mode & 0o7777) | 0o001)
    if (folder === dirname(folder)) break
  }
  if (existsSync('/usr/sbin/runuser') || spawnSync('sh', ['-c', 'command -v runuser']).status === 0)
    return (bin, args) => ['runuser', ['-u', 'postgres', '--', bin, ...args]]
  const quote = (s) => `'${String(s).replaceAll("'", `'\\''`)}'`
  return (bin, args) => ['su', ['postgres', '-s', '/bin/sh', '-c', [bin, ...args].map(quote).join(' ')]]
}

/**
 * Creates a PostgreSQL cluster in `dir` (created if missing) and starts it, listening on 127.0.0.1
 * only, on a free port, with trust authentication. Resolves to `{ url, stop }`: `url` is a
 * postgres:// connection string to its `postgres` database as the `postgres` superuser; `stop()`
 * stops the server (fast shutdown) and resolves once it is down. The folder is left in place.
 */
export async function startPostgres(dir) {
  dir = resolve(dir)
  const bin = findBinaries()
  mkdirSync(dir, { recursive: true })
  const data = join(dir, 'data')
  const logFile = join(dir, 'postgres.log')
  const as = runnerFor(dir)
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' }
  const run = (program, args) => {
    const [command, argv] = as(join(bin, program), args)
    const result = spawnSync(command, argv, { cwd: dir, env, encoding: 'utf8' })
    if (result.status !== 0) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''
      const output = `${result.stderr ?? ''}${result.stdout ?? ''}${result.error?.message ?? ''}`.trim()
      throw new Error(`${program} ${args.join(' ')} failed (exit ${result.status}): ${output}\n${log}`.trim())
    }
  }

  // initdb syncs its files (no --no-sync): they are on disk before anything is measured.
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C'])
  appendFileSync(
    join(data, 'postgresql.conf'),
    [
      '',
      '# wf bench (bench/peers/postgres.mjs)',
      "listen_addresses = '127.0.0.1'",
      "unix_socket_directories = ''", // TCP only: no socket path to outgrow, no /var/run/postgresql needed
      // PostgreSQL's defaults, spelled out: every commit waits for its WAL to reach the disk.
      'fsync = on',
      'synchronous_commit = on',
      'full_page_writes = on',
      "wal_sync_method = 'fdatasync'", // Linux's default, also spelled out
      'shared_buffers = 64MB', // DBOS's tables stay far smaller
      'max_connections = 50',
      '',
    ].join('\n'),
  )

  let port
  for (let attempt = 1; ; attempt++) {
    port = await freePort()
    try {
      run('pg_ctl', ['-D', data, '-l', logFile, '-o', `-p ${port}`, '-w', '-t', '60', 'start'])
      break
    } catch (error) {
      // Another process may have taken the port between freePort() and the server's bind.
      if (attempt >= 3 || !/could not bind|Address already in use/.test(error.message)) throw error
    }
  }

  // pg_ctl starts the server in a session of its own, so it outlives this process unless stopped:
  // stop it if this process exits or is interrupted before stop().
  let stopped = false
  const stopNow = (mode) => {
    if (stopped) return
    stopped = true
    const [command, argv] = as(join(bin, 'pg_ctl'), ['-D', data, '-m', mode, '-w', '-t', '60', 'stop'])
    spawnSync(command, argv, { cwd: dir, env, stdio: 'ignore' })
  }
  const onExit = () => stopNow('immediate')
  const onSignal = (signal) => {
    onExit()
    process.kill(process.pid, signal)
  }
  process.once('exit', onExit)
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    async stop() {
      process.off('exit', onExit)
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      if (stopped) return
      stopped = true
      run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop'])
    },
  }
}
