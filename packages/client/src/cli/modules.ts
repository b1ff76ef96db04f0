// `--import`: loads the user's modules that register the steps a resume needs. Paths resolve
// against the working directory and are imported by file URL (so Windows paths and spaces
// work); bare names resolve from the working directory, as the user's application would.

import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isAbsolute, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { WfError } from '@wf/core'

/** A module given to `--import` could not be loaded. */
export class ImportFailedError extends WfError<'WF_IMPORT_FAILED'> {
  constructor(spec: string, cause: unknown) {
    super(
      'WF_IMPORT_FAILED',
      `could not import ${spec}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    )
  }
}

function toUrl(spec: string, cwd: string): string {
  if (/^(file|data|node):/.test(spec)) return spec
  const path = resolve(cwd, spec)
  if (isAbsolute(spec) || spec.startsWith('.') || existsSync(path)) return pathToFileURL(path).href
  try {
    return pathToFileURL(createRequire(join(cwd, 'index.js')).resolve(spec)).href
  } catch {
    return spec // an ESM-only package: let import() resolve it
  }
}

/** A TypeScript module given to `--import`, and no loader to run it with. */
export class TypeScriptLoaderMissingError extends WfError<'WF_TS_LOADER_MISSING'> {
  constructor(spec: string) {
    super(
      'WF_TS_LOADER_MISSING',
      `could not import ${spec}: Node ${process.version} cannot load TypeScript by itself. Install a loader in the project (npm i -D tsx) and wf uses it, or run wf with NODE_OPTIONS='--import tsx', or import the compiled .js file`,
    )
  }
}

const TYPESCRIPT = /\.(ts|mts|cts|tsx)$/i
let loader: Promise<boolean> | undefined

/**
 * Registers tsx's loader, resolved from the project (`cwd`), once, and says whether there was one:
 * wf does not depend on tsx, it uses the project's. Done before the first TypeScript import, not
 * after a failed one: Node keeps a module that failed to load as failed.
 */
function registerTypeScript(cwd: string): Promise<boolean> {
  loader ??= (async () => {
    let api: string
    try {
      api = createRequire(join(cwd, 'index.js')).resolve('tsx/esm/api')
    } catch {
      return false // perhaps NODE_OPTIONS='--import tsx', or a Node that strips types itself
    }
    const { register } = (await import(pathToFileURL(api).href)) as { register(): unknown }
    register()
    return true
  })()
  return loader
}

const unknownExtension = (error: unknown): boolean =>
  (error as { code?: unknown } | null)?.code === 'ERR_UNKNOWN_FILE_EXTENSION'

/**
 * Imports each module in order (later ones may rely on earlier ones). TypeScript modules go
 * through the project's tsx when it has one; without, an error says how to get one.
 */
export async function importModules(specs: readonly string[], cwd = process.cwd()): Promise<void> {
  for (const spec of specs) {
    const typescript = TYPESCRIPT.test(spec)
    const registered = typescript && (await registerTypeScript(cwd))
    try {
      await import(toUrl(spec, cwd))
    } catch (error) {
      if (typescript && !registered && unknownExtension(error)) throw new TypeScriptLoaderMissingError(spec)
      throw new ImportFailedError(spec, error)
    }
  }
}
