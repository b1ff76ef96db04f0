// `pnpm lint` (after Biome, whose noImportCycles catches cycles): the folders of @wf/core's src are
// layers, and a file may import only from its own layer or the layers below it, type imports
// included. The public faces (index.ts, internal.ts, testing/) may import from any layer.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'core', 'src')
/** Lowest first. */
const LAYERS = [
  'errors.ts',
  'util',
  'storage',
  'model',
  'store',
  'step',
  'plan',
  'execution',
  'leases',
  'runtime',
]

const layerOf = (file) => LAYERS.indexOf(relative(src, file).split(/[/\\]/)[0])
const problems = []
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  const file = join(entry.parentPath, entry.name)
  if (!entry.isFile() || !/\.ts$/.test(entry.name) || /\.test\.ts$/.test(entry.name)) continue
  const layer = layerOf(file)
  if (layer === -1) continue // index.ts, internal.ts, testing/, __tests__/
  const text = readFileSync(file, 'utf8')
  // Static imports and re-exports (a line of its own, or the end of a multi-line one), not examples in comments.
  for (const [, spec] of text.matchAll(
    /^(?:import|export|\})[^'\n]*?(?:from\s+|import\s+)'(\.\.?\/[^']+)'/gm,
  )) {
    const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts')
    const targetLayer = layerOf(target)
    if (targetLayer > layer || (targetLayer === -1 && target.startsWith(src))) {
      problems.push(
        `${relative(src, file)} imports ${spec}: ${LAYERS[layer]} may import only ${LAYERS.slice(0, layer + 1).join(', ')}`,
      )
    }
  }
}
if (problems.length > 0) {
  console.error(`@wf/core layers: ${problems.length} import(s) point up a layer (packages/core/src):`)
  for (const p of problems) console.error(`  ${p}`)
  console.error('Move the shared code or type down to the lower layer (see packages/core/README.md, Inside).')
  process.exit(1)
}
console.log(`@wf/core layers: every import points down (${LAYERS.join(' < ')})`)
