// Installs the DBOS SDK the benchmark compares against, on demand, into a cache folder outside the
// workspace: DBOS is a peer we measure, not a dependency of any package, so it never enters a
// package.json or the lockfile. The version is pinned to the one the figures are for.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

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
    mkdirSync(prefix, { recursive: true })
    // --prefix without a package.json of its own would make npm walk up to the workspace's: an
    // empty one pins the install to this folder.
    if (!existsSync(join(prefix, 'package.json')))
      writeFileSync(join(prefix, 'package.json'), '{ "name": "wf-bench-peers", "private": true }\n')
    const npm = spawnSync(
      'npm',
      [
        'install',
        '--no-save',
        '--no-audit',
        '--no-fund',
        '--no-package-lock',
        '--prefix',
        prefix,
        `${DBOS_PACKAGE}@${DBOS_VERSION}`,
      ],
      { cwd: prefix, encoding: 'utf8' },
    )
    if (npm.status !== 0 || !installed())
      throw new Error(
        `npm could not install ${DBOS_PACKAGE}@${DBOS_VERSION} into ${prefix} (exit ${npm.status}): ${(npm.stderr || npm.error?.message || '').trim().slice(-2000)}`,
      )
  }
  const { main = 'index.js' } = JSON.parse(readFileSync(manifest, 'utf8'))
  return join(home, main)
}
