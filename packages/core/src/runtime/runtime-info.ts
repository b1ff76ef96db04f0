// Dependency management (the Ray page's unimplemented section): what a workflow was submitted
// with — Node, platform, the application and its lockfile, the @wf/* versions, and a fingerprint
// of each step's code and options — how that compares with what is loaded on resume, and what a
// resume does about a change (`onCodeChange`).

import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidOptionsError, type RuntimeChange, WorkflowCodeChangedError } from '../errors.js'
import type { RuntimeInfo, WorkflowRecord } from '../model/records.js'
import { fingerprintStep } from '../step/fingerprint.js'
import type { StepDefinition } from '../step/step.js'

/** What to do when a workflow is resumed with other code than it was submitted with. */
export type CodeChangePolicy = 'warn' | 'error' | 'ignore'

function findUp(start: string, names: readonly string[]): string | undefined {
  let dir = resolve(start)
  for (;;) {
    for (const name of names) {
      const candidate = join(dir, name)
      if (existsSync(candidate)) return candidate
    }
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  } catch {
    return undefined
  }
}

const WF_PACKAGES = ['@wf/core', '@wf/storage-fs', '@wf/storage-s3', '@wf/client'] as const
let cached: RuntimeInfo | undefined

/** The runtime of this process (computed once). */
export function currentRuntimeInfo(): RuntimeInfo {
  if (cached) return cached
  const entry = process.argv[1] ? dirname(resolve(process.argv[1])) : process.cwd()
  let appPackage = findUp(entry, ['package.json'])
  // Run through a tool (the `wf` CLI, a test runner): the application is the working directory's.
  const entryName = appPackage && readJson(appPackage)?.name
  if (
    !appPackage ||
    entry.includes('node_modules') ||
    (typeof entryName === 'string' && entryName.startsWith('@wf/'))
  ) {
    appPackage = findUp(process.cwd(), ['package.json'])
  }
  const info: RuntimeInfo = {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    wfPackages: {},
  }
  if (appPackage) {
    const pkg = readJson(appPackage)
    info.app = {}
    if (typeof pkg?.name === 'string') info.app.name = pkg.name
    if (typeof pkg?.version === 'string') info.app.version = pkg.version
    const lockfile = findUp(dirname(appPackage), ['pnpm-lock.yaml', 'package-lock.json', 'yarn.lock'])
    if (lockfile) {
      info.lockfile = {
        file: lockfile,
        sha256: createHash('sha256').update(readFileSync(lockfile)).digest('hex'),
      }
    }
  }
  const own = readJson(fileURLToPath(new URL('../../package.json', import.meta.url)))
  if (typeof own?.version === 'string') info.wfPackages['@wf/core'] = own.version
  for (const base of [appPackage, join(process.cwd(), 'package.json')]) {
    if (!base) continue
    const require = createRequire(base)
    for (const name of WF_PACKAGES) {
      if (info.wfPackages[name]) continue
      try {
        const version = readJson(require.resolve(`${name}/package.json`))?.version
        if (typeof version === 'string') info.wfPackages[name] = version
      } catch {
        // not installed
      }
    }
  }
  cached = info
  return info
}

/** The runtime fields that differ (a changed lockfile or Node version only ever warns). */
export function compareRuntime(before: RuntimeInfo | undefined, after: RuntimeInfo): RuntimeChange[] {
  if (!before) return []
  const changes: RuntimeChange[] = []
  // A field this process cannot tell (no package.json or lockfile where it runs, as under the `wf`
  // CLI in another folder) is not a change.
  const field = (what: string, a: string | undefined, b: string | undefined) => {
    if (a !== b && b !== undefined) changes.push({ what, before: a, after: b })
  }
  field('node', before.node, after.node)
  field('platform', before.platform, after.platform)
  field('arch', before.arch, after.arch)
  field('app.name', before.app?.name, after.app?.name)
  field('app.version', before.app?.version, after.app?.version)
  field('lockfile', before.lockfile?.sha256.slice(0, 16), after.lockfile?.sha256.slice(0, 16))
  for (const name of new Set([...Object.keys(before.wfPackages), ...Object.keys(after.wfPackages)])) {
    field(name, before.wfPackages[name], after.wfPackages[name])
  }
  return changes
}

/** The steps whose code or options changed: recorded fingerprints against the registry now. */
export function compareSteps(
  recorded: { [name: string]: string } | undefined,
  lookup: (name: string) => StepDefinition | undefined,
): RuntimeChange[] {
  const changes: RuntimeChange[] = []
  for (const [name, before] of Object.entries(recorded ?? {})) {
    const definition = lookup(name)
    if (!definition) continue // reported as StepNotRegisteredError when it is needed
    const after = fingerprintStep(definition)
    if (after !== before) changes.push({ what: `step:${name}`, before, after })
  }
  return changes
}

/** `onCodeChange` as given to a runtime or a resume, checked. */
export function validatePolicy(policy: unknown): CodeChangePolicy {
  if (policy !== 'warn' && policy !== 'error' && policy !== 'ignore') {
    throw new InvalidOptionsError(`onCodeChange must be 'warn', 'error' or 'ignore', got ${String(policy)}`)
  }
  return policy
}

/**
 * Applies the code-change policy to a workflow about to be resumed: `steps` from `compareSteps`,
 * and with `record`, its runtime against this process's.
 */
export function checkCodeChange(
  workflowId: string,
  policy: CodeChangePolicy,
  steps: RuntimeChange[],
  record: WorkflowRecord | undefined,
): void {
  if (policy === 'ignore') return
  const fields = record ? compareRuntime(record.runtime, currentRuntimeInfo()) : []
  if (steps.length === 0 && fields.length === 0) return
  if (policy === 'error' && steps.length > 0)
    throw new WorkflowCodeChangedError(workflowId, [...steps, ...fields])
  const list = [...steps, ...fields].map((c) => `${c.what} (${c.before ?? 'none'} → ${c.after ?? 'none'})`)
  process.emitWarning(
    `workflow "${workflowId}" is resumed with other code or runtime than it was submitted with: ${list.join(', ')}`,
    {
      code: 'WF_CODE_CHANGED',
    },
  )
}
