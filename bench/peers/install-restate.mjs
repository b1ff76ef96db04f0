// Installs Restate for the benchmark, on demand, into a cache folder outside the workspace, as
// install-dbos.mjs does for DBOS: Restate is a peer we measure, not a dependency of any package, so it
// never enters a package.json or the lockfile. Two pinned packages: the server, whose npm package
// ships the binary in a per-platform optional dependency (`@restatedev/restate-server-linux-x64`
// here), and the TypeScript SDK the steps run in. SDK 1.14.5 is the newest that runs on Node 20:
// from 1.15 its Node endpoint calls Promise.withResolvers (Node 22) on every request, and the
// invocation hangs. Server 1.7 accepts its service protocol.
import { existsSync, readFileSync } from 'node:fs'
import { arch, platform } from 'node:os'
import { join, resolve } from 'node:path'
import { npmInstall } from './common.mjs'

export const RESTATE_SERVER_PACKAGE = '@restatedev/restate-server'
export const RESTATE_SERVER_VERSION = '1.7.12'
export const RESTATE_SDK_PACKAGE = '@restatedev/restate-sdk'
export const RESTATE_SDK_VERSION = '1.14.5'

/**
 * Installs the pinned Restate server and SDK with npm into `<cacheDir>/restate` (only when those
 * exact versions are not there yet) and returns `{ server, sdk, serverVersion, sdkVersion }`: the
 * absolute path of the `restate-server` binary for this platform, and of the SDK's ES module entry
 * (for `import()`). Throws, saying why, when npm fails or the platform has no binary package.
 */
export function ensureRestate(cacheDir) {
  // A folder of its own: an `npm install --no-save` into DBOS's folder would prune DBOS.
  const prefix = join(resolve(cacheDir), 'restate')
  const modules = join(prefix, 'node_modules')
  const platformPackage = `${RESTATE_SERVER_PACKAGE}-${platform()}-${arch()}`
  const server = join(modules, ...platformPackage.split('/'), 'bin', 'restate-server')
  const versionOf = (name) => {
    const manifest = join(modules, ...name.split('/'), 'package.json')
    return existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).version : undefined
  }
  const installed = () =>
    versionOf(RESTATE_SDK_PACKAGE) === RESTATE_SDK_VERSION &&
    versionOf(platformPackage) === RESTATE_SERVER_VERSION &&
    existsSync(server)
  if (!installed()) {
    npmInstall(
      prefix,
      'wf-bench-peer-restate',
      [
        `${RESTATE_SERVER_PACKAGE}@${RESTATE_SERVER_VERSION}`,
        `${RESTATE_SDK_PACKAGE}@${RESTATE_SDK_VERSION}`,
      ],
      // The server package depends on @scarf/scarf, whose postinstall reports the download: the
      // binary needs no install script.
      ['--ignore-scripts'],
    )
    if (!installed())
      throw new Error(
        `npm installed ${RESTATE_SERVER_PACKAGE} into ${prefix} but not its binary package ${platformPackage}@${RESTATE_SERVER_VERSION} (Restate ships binaries for linux and darwin, x64 and arm64 only; npm skips optional dependencies with --omit=optional)`,
      )
  }
  return {
    server,
    sdk: join(modules, ...RESTATE_SDK_PACKAGE.split('/'), 'dist', 'index.js'),
    serverVersion: RESTATE_SERVER_VERSION,
    sdkVersion: RESTATE_SDK_VERSION,
  }
}
