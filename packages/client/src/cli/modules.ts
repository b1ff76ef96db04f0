// `--import`: loads the user's modules that register the steps a resume needs. Paths resolve
// against the working directory and are imported by file URL (so Windows paths and spaces
// work); bare names resolve from the working directory, as the user's application would.

import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isAbsolute, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { WfError } from '@wf/core'

/** A module given to `--import` could not be loaded. */
export class ImportFailedError extends WfError {
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

/** Imports each module in order (later ones may rely on earlier ones). */
export async function importModules(specs: readonly string[], cwd = process.cwd()): Promise<void> {
  for (const spec of specs) {
    try {
      await import(toUrl(spec, cwd))
    } catch (error) {
      throw new ImportFailedError(spec, error)
    }
  }
}
