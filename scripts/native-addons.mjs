// Native addons under another Node version, for scripts/test.mjs with WF_TEST_NODES.
//
// better-sqlite3 (examples/storage-sqlite) is compiled on install for the ABI of the Node that ran
// pnpm (NODE_MODULE_VERSION 115 for Node 20), and its loader (`bindings`) only looks in
// build/Release, so Node 22 (ABI 127) or 24 (ABI 137) cannot load it. Before a run under such a
// Node we compile the addon for it with node-gyp (npm's copy) against the headers that the `node`
// package on npm ships, offline, cache the result in .wf-test/native/, and put it in place of the
// installed one for that run only; restoreNativeAddons puts the installed one back. When that is
// not possible the project's tests are skipped on that Node, with a notice that says so.
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const ADDONS = [
  {
    project: 'example-storage-sqlite',
    from: 'examples/storage-sqlite',
    pkg: 'better-sqlite3',
    binary: 'build/Release/better_sqlite3.node',
    sources: ['binding.gyp', 'deps', 'src', 'package.json'],
    // Opens a database, which loads the addon.
    probe: (dir) => `require(${JSON.stringify(dir)})(':memory:').close()`,
  },
]

const nativeDir = (root) => join(root, '.wf-test', 'native')
const markerOf = (root) => join(nativeDir(root), 'swapped.json')

function locate(root, addon) {
  try {
    const require = createRequire(join(root, addon.from, 'package.json'))
    const pkgJson = require.resolve(`${addon.pkg}/package.json`)
    return { dir: dirname(pkgJson), version: JSON.parse(readFileSync(pkgJson, 'utf8')).version }
  } catch {
    return undefined
  }
}

const loads = (bin, addon, dir) =>
  spawnSync(bin, ['-e', addon.probe(dir)], { stdio: 'ignore', timeout: 60_000 }).status === 0

/** The headers of `bin`: the `node` package on npm keeps them in node-<platform>-<arch>/include. */
function headersOf(bin) {
  const prefix = dirname(dirname(bin))
  const candidates = [prefix, join(prefix, 'node_modules', `node-${process.platform}-${process.arch}`)]
  return candidates.find((d) => existsSync(join(d, 'include', 'node', 'node.h')))
}

function nodeGyp() {
  const candidates = [join(dirname(process.execPath), '..', 'lib', 'node_modules')]
  const npmRoot = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' }).stdout?.trim()
  if (npmRoot) candidates.push(npmRoot)
  return candidates
    .map((d) => join(d, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'))
    .find((f) => existsSync(f))
}

/** Compiles the addon for `bin` into `target`; returns why it could not, or undefined. */
function build({ addon, dir, bin, target, log }) {
  const headers = headersOf(bin)
  if (!headers) return `no Node headers beside ${bin}`
  const gyp = nodeGyp()
  if (!gyp) return "npm's node-gyp was not found"
  const work = mkdtempSync(join(dirname(target), `build-${addon.pkg}-`))
  try {
    for (const s of addon.sources) cpSync(join(dir, s), join(work, s), { recursive: true })
    log(`compiling ${addon.pkg} for this Node (about 2 minutes, once; cached in ${dirname(target)})`)
    // node-gyp lets npm_config_* from the environment override its arguments, and `pnpm test`
    // passes npm_config_nodedir (the installed Node's headers): drop them all.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_config_')),
    )
    const result = spawnSync(bin, [gyp, 'rebuild', '--release', `--nodedir=${headers}`], {
      cwd: work,
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    if (result.status !== 0) {
      return `node-gyp failed:\n${`${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-15).join('\n')}`
    }
    copyFileSync(join(work, addon.binary), target)
    return undefined
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

// The installed binary is usually a hard link into pnpm's store, shared with every other checkout:
// always unlink before writing, never write through it.
function replace(file, from) {
  rmSync(file, { force: true })
  copyFileSync(from, file)
}

/**
 * Makes every native addon loadable by `bin` (ABI `abi`). Returns the vitest projects to skip
 * on this Node because an addon could not be made to load.
 */
export function prepareNativeAddons({ root, bin, version, abi, log = console.log }) {
  const skipProjects = []
  const swapped = []
  for (const addon of ADDONS) {
    const found = locate(root, addon)
    if (!found || loads(bin, addon, found.dir)) continue
    const dir = nativeDir(root)
    mkdirSync(dir, { recursive: true })
    const cached = join(dir, `${addon.pkg}-${found.version}-abi${abi}.node`)
    let why = existsSync(cached) ? undefined : build({ addon, dir: found.dir, bin, target: cached, log })
    if (!why) {
      const installed = join(found.dir, addon.binary)
      const backup = join(dir, `${addon.pkg}-${found.version}-installed.node`)
      copyFileSync(installed, backup)
      swapped.push({ file: installed, backup })
      writeFileSync(markerOf(root), JSON.stringify(swapped))
      replace(installed, cached)
      if (!loads(bin, addon, found.dir)) why = `the addon compiled for ABI ${abi} does not load`
    }
    if (why) {
      skipProjects.push(addon.project)
      const notice = `SKIPPED on Node ${version}: the tests of ${addon.project}, because ${addon.pkg}'s native addon cannot be loaded by this Node: ${why}`
      log(`\n${'!'.repeat(100)}\n${notice}\n${'!'.repeat(100)}\n`)
    }
  }
  return { skipProjects }
}

/** Puts back the installed native addons that prepareNativeAddons replaced (also after a crash). */
export function restoreNativeAddons({ root }) {
  const marker = markerOf(root)
  if (!existsSync(marker)) return
  for (const { file, backup } of JSON.parse(readFileSync(marker, 'utf8'))) {
    if (existsSync(backup)) replace(file, backup)
  }
  rmSync(marker, { force: true })
}
