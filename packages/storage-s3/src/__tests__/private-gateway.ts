// A Ceph RADOS Gateway of a test's own (scripts/s3/start-ceph-rgw.sh on free ports), for tests that
// stop or pause the server: the shared gateway other test files use must stay up. Needs the Ceph
// packages (scripts/s3/install-ceph.sh), which CI and this machine have.

import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const SCRIPTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'scripts', 's3')

export interface PrivateGateway {
  endpoint: string
  /** Pauses (SIGSTOP) or continues (SIGCONT) radosgw: an outage that keeps the in-memory data. */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void
  stop(): Promise<void>
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no free port')
  return address.port
}

/** Starts a one-node cluster with its gateway; rejects with the script's output when it cannot. */
export async function startPrivateGateway(): Promise<PrivateGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'wf-ceph-private-'))
  const stop = async () => {
    await run('bash', [join(SCRIPTS, 'stop-ceph-rgw.sh'), dir]).catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  }
  let lastError: unknown
  // The monitor takes two consecutive ports, picked at random: retry on the rare clash.
  for (let tries = 0; tries < 3; tries++) {
    const rgwPort = await freePort()
    const monPort = 20_000 + Math.floor(Math.random() * 20_000)
    if (!(await portIsFree(monPort)) || !(await portIsFree(monPort + 1))) continue
    try {
      await run('bash', [join(SCRIPTS, 'start-ceph-rgw.sh'), dir, String(rgwPort), String(monPort)], {
        timeout: 120_000,
      })
    } catch (error) {
      lastError = error
      await run('bash', [join(SCRIPTS, 'stop-ceph-rgw.sh'), dir]).catch(() => undefined)
      continue
    }
    const pid = Number(readFileSync(join(dir, 'run', 'client.rgw.a.pid'), 'utf8').trim())
    return {
      endpoint: `http://127.0.0.1:${rgwPort}`,
      signal: (signal) => process.kill(pid, signal),
      stop,
    }
  }
  await stop()
  const detail = lastError as { message?: string; stderr?: string } | undefined
  throw new Error(
    `could not start a private Ceph RADOS Gateway with scripts/s3/start-ceph-rgw.sh (are ceph-mon, ceph-osd and radosgw installed? scripts/s3/install-ceph.sh): ${detail?.message ?? 'ports busy'}\n${detail?.stderr ?? ''}`,
  )
}
