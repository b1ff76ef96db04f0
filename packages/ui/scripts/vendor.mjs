// Copies the browser build of the graph layout library (@dagrejs/dagre, a devDependency) into
// dist/vendor/ at build time, so the page draws its graph from this package's own files: nothing
// is fetched from the internet, the page's CSP stays `script-src 'self'`, and installing @wf/ui
// installs no layout library (the copy is in the published dist/).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, '..', 'dist', 'vendor')
const pkgDir = dirname(createRequire(import.meta.url).resolve('@dagrejs/dagre/package.json'))
const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
mkdirSync(out, { recursive: true })
// The ESM build bundles graphlib; its source map is not shipped, so its comment goes.
const source = readFileSync(join(pkgDir, 'dist', 'dagre.esm.js'), 'utf8').replace(
  /\n\/\/# sourceMappingURL=.*\s*$/,
  '\n',
)
writeFileSync(
  join(out, 'dagre.js'),
  `/*! @dagrejs/dagre ${version}, MIT: see dagre.LICENSE.txt */\n${source}`,
)
// Its license, and the notices of what its build bundled.
writeFileSync(
  join(out, 'dagre.LICENSE.txt'),
  `${readFileSync(join(pkgDir, 'LICENSE'), 'utf8')}\n${readFileSync(join(pkgDir, 'dist', 'dagre.esm.js.LEGAL.txt'), 'utf8')}`,
)
