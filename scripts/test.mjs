// The README's test command: builds every package, makes sure a real S3 server is there for the
// S3 suite (starting a throwaway Ceph RADOS Gateway when WF_S3_ENDPOINT is not set), runs every
// test once with vitest, and ends with one line: "N passed, N failed".
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { S3_TEST_CREDENTIALS, startGateway } from './s3/server.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outDir = join(root, '.wf-test')
mkdirSync(outDir, { recursive: true })
const run = (cmd, args, env = process.env) =>
  spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env }).status ?? 1

const ci = process.env.CI === 'true' || process.env.CI === '1'
process.env.TURBO_TELEMETRY_DISABLED = '1'

if (run('turbo', ['run', 'build', '--output-logs=errors-only']) !== 0) {
  console.error('build failed')
  process.exit(1)
}

const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }
let gateway
if (!env.WF_S3_ENDPOINT && env.WF_S3_SKIP !== '1') {
  try {
    gateway = await startGateway()
    env.WF_S3_ENDPOINT = gateway.endpoint
    env.WF_S3_ACCESS_KEY_ID = S3_TEST_CREDENTIALS.accessKeyId
    env.WF_S3_SECRET_ACCESS_KEY = S3_TEST_CREDENTIALS.secretAccessKey
  } catch (error) {
    const notice = `NO S3 SERVER: ${error.message}. The S3 tests ${ci ? 'will FAIL (CI=true)' : 'are SKIPPED'}.
Run them by starting a gateway as root (scripts/s3/install-ceph.sh, then scripts/s3/start-ceph-rgw.sh DIR PORT)
and setting WF_S3_ENDPOINT=http://127.0.0.1:PORT, or run this command as root so it starts one itself.`
    console.error(`\n${'!'.repeat(100)}\n${notice}\n${'!'.repeat(100)}\n`)
  }
}
if (ci) env.WF_S3_REQUIRED = '1'

const reportFile = join(outDir, 'vitest.json')
let status
try {
  status = run(
    'vitest',
    ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${reportFile}`],
    env,
  )
} finally {
  gateway?.stop()
}

let passed = 0
let failed = 0
try {
  const report = JSON.parse(readFileSync(reportFile, 'utf8'))
  passed = report.numPassedTests
  failed = report.numFailedTests + (report.numRuntimeErrorTests ?? 0)
  if (!report.success && failed === 0) failed = 1
} catch {
  failed = Math.max(failed, 1)
}
writeFileSync(join(outDir, 'summary.json'), JSON.stringify({ passed, failed }))
console.log(`${passed} passed, ${failed} failed`)
process.exit(status === 0 && failed === 0 ? 0 : 1)
