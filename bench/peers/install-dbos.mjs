// Installs the DBOS SDK the benchmark compares against, on demand, into a cache folder outside the
// workspace: DBOS is a peer we measure, not a dependency of any package, so it never enters a
// package.json or the lockfile. The version is pinned to the one the figures are for.
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { npmInstall } from './common.mjs'

export const DBOS_PACKAGE = '@dbos-inc/dbos-sdk'
export const DBOS_VERSION = '5.3.0'

/**
 * Installs `@dbos-inc/dbos-sdk@5.3.0` with npm into `cacheDir` (only when that exact version is not
 * there yet) and returns the absolute path of its entry file, for `import()`.
 */
export function ensureDbos(cacheDir) {
  const prefix = resolve(cacheDir)
  const home = join(prefix, 'node_modules', ...DBOS_PACKAGE.split('/'))
  const manifest = join(home, 'package.json')
  const installed = () =>
    existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).version === DBOS_VERSION
  if (!installed()) {
    npmInstall(prefix, 'wf-bench-peers', [`${DBOS_PACKAGE}@${DBOS_VERSION}`])
    if (!installed()) throw new Error(`npm did not install ${DBOS_PACKAGE}@${DBOS_VERSION} into ${prefix}`)
  }
  const { main = 'index.js' } = JSON.parse(readFileSync(manifest, 'utf8'))
  return join(home, main)
}
