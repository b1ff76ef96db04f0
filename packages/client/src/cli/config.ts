// The project's settings for the `wf` command: `wf.config.json` in the working directory or an
// ancestor, or a `wf` field in a package.json on the way up (whichever is nearer), giving the
// storage and the step modules to import, so `wf list` in a project sees that project's
// workflows, not whatever the temp-folder default holds. Precedence: flag > env > file > default.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { defaultStoragePath, InvalidOptionsError } from '@wf/core'

/** What a config file says, with paths resolved against the file's folder. */
export interface ProjectConfig {
  /** The file it came from (`…/wf.config.json`, or `…/package.json` for its `wf` field). */
  file: string
  storage?: string
  import: string[]
}

/** A storage URI, and where it came from (for the line the command prints). */
export interface StorageChoice {
  uri: string
  from: 'flag' | 'env' | 'config' | 'default'
  /** The config file, when `from` is `config`. */
  file?: string
}

function read(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new InvalidOptionsError(
      `cannot read ${file}: ${error instanceof Error ? error.message : String(error)} (fix the JSON, or pass --storage)`,
    )
  }
}

/** A relative path resolved against the config file's folder; URIs (`s3://…`, `file:…`) as they are. */
function fromFile(dir: string, value: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(value) && !/^[a-z]:[\\/]/i.test(value)) return value
  return isAbsolute(value) ? value : resolve(dir, value)
}

/** A module to import: relative paths against the file's folder; bare package names as they are. */
function moduleFromFile(dir: string, value: string): string {
  return value.startsWith('.') ? resolve(dir, value) : fromFile(dir, value)
}

function parse(file: string, value: unknown): ProjectConfig {
  const where = file.endsWith('package.json') ? `the "wf" field of ${file}` : file
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionsError(
      `${where} must be an object like { "storage": "./data", "import": ["./dist/steps.js"] }`,
    )
  }
  const { storage, import: imports } = value as { storage?: unknown; import?: unknown }
  if (storage !== undefined && (typeof storage !== 'string' || storage === '')) {
    throw new InvalidOptionsError(`"storage" in ${where} must be a non-empty string (a path or a URI)`)
  }
  const list = imports === undefined ? [] : typeof imports === 'string' ? [imports] : imports
  if (!Array.isArray(list) || !list.every((m) => typeof m === 'string' && m !== '')) {
    throw new InvalidOptionsError(`"import" in ${where} must be a module path or a list of them`)
  }
  const dir = dirname(file)
  return {
    file,
    ...(storage === undefined ? {} : { storage: fromFile(dir, storage) }),
    import: list.map((m: string) => moduleFromFile(dir, m)),
  }
}

/** The nearest config, from `cwd` up to the root: `wf.config.json`, else a package.json's `wf` field. */
export function findConfig(cwd = process.cwd()): ProjectConfig | undefined {
  let dir = resolve(cwd)
  for (;;) {
    const own = join(dir, 'wf.config.json')
    if (existsSync(own)) return parse(own, read(own))
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg)) {
      const json = read(pkg) as { wf?: unknown } | null
      if (json && typeof json === 'object' && json.wf !== undefined) return parse(pkg, json.wf)
    }
    const up = dirname(dir)
    if (up === dir) return undefined
    dir = up
  }
}

/** The storage to use: `--storage`, else `WF_STORAGE`, else the config file's, else the default folder. */
export function chooseStorage(flag: string | undefined, config: ProjectConfig | undefined): StorageChoice {
  if (flag !== undefined && flag !== '') return { uri: flag, from: 'flag' }
  const env = process.env.WF_STORAGE
  if (env !== undefined && env !== '') return { uri: env, from: 'env' }
  if (config?.storage !== undefined) return { uri: config.storage, from: 'config', file: config.file }
  return { uri: defaultStoragePath(), from: 'default' }
}

/** The line that says which storage a command uses (not printed for `--storage`: it was just typed). */
export function describeStorage(choice: StorageChoice): string | undefined {
  if (choice.from === 'flag') return undefined
  if (choice.from === 'env') return `storage ${choice.uri} (from WF_STORAGE)`
  if (choice.from === 'config') return `storage ${choice.uri} (from ${choice.file})`
  return `storage ${choice.uri} (the default: no --storage, WF_STORAGE or wf.config.json; this folder is only on this machine)`
}
