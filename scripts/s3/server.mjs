// Starts and stops the throwaway Ceph RADOS Gateway that the S3 tests and benchmarks run against.
// Used by scripts/test.mjs and scripts/bench.mjs; the shell scripts beside it do the work.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

export const S3_TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** Installs (when missing and allowed) and starts a gateway. Returns { endpoint, stop } or throws. */
export async function startGateway({ log = console.error } = {}) {
  const install = spawnSync('bash', [join(here, 'install-ceph.sh')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  if (install.status !== 0) throw new Error('could not install the Ceph RADOS Gateway packages')
  const dir = mkdtempSync(join(tmpdir(), 'wf-ceph-'))
  const rgwPort = await freePort()
  // The monitor takes two consecutive ports (v2 and v1); retry on the rare clash.
  const monPort = 20000 + Math.floor(Math.random() * 20000)
  log(`starting Ceph RADOS Gateway on 127.0.0.1:${rgwPort} (data in ${dir})`)
  try {
    execFileSync('bash', [join(here, 'start-ceph-rgw.sh'), dir, String(rgwPort), String(monPort)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 180_000,
    })
  } catch (error) {
    spawnSync('bash', [join(here, 'stop-ceph-rgw.sh'), dir])
    throw error
  }
  const endpoint = `http://127.0.0.1:${rgwPort}`
  return {
    endpoint,
    stop() {
      spawnSync('bash', [join(here, 'stop-ceph-rgw.sh'), dir], { stdio: 'inherit' })
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
