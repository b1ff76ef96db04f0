// `wf info`: what the `wf` command works on. The storage (its URI and where that came from), its
// backend, and how it keeps data (a folder's durability mode and why it has it), as the storage
// describes itself (`Storage.describe`, optional: a plugin without it shows its class name), then
// the versions of wf's packages and Node.

import { readFileSync } from 'node:fs'
import { currentRuntimeInfo, type Storage } from '@wf/core'
import type { StorageChoice } from './config.js'
import type { Out } from './format.js'
import { paint } from './format.js'

/** What `wf info` prints (its `--json` form). */
export interface InfoReport {
  /** The storage URI. */
  storage: string
  /** Where the URI came from: `--storage`, `WF_STORAGE`, a config file, or the default folder. */
  storageFrom: StorageChoice['from']
  /** The config file, when `storageFrom` is `config`. */
  configFile?: string
  /** The backend (`@wf/storage-fs`), or the storage's class name when it does not describe itself. */
  backend: string
  /** Where the data lives, as the backend says. */
  location?: string
  /** How a completed write is made durable, as the backend says (absent when it does not). */
  durability?: string
  /** Why it has that durability. */
  durabilityReason?: string
  /** Versions of the @wf/* packages this command found. */
  versions: Record<string, string>
  /** `process.version`, platform and architecture. */
  node: string
}

/** Reads what `storage` says about itself and what this process runs. */
export function infoReport(storage: Storage, choice: StorageChoice): InfoReport {
  const described = storage.describe?.()
  const runtime = currentRuntimeInfo()
  const versions: Record<string, string> = { ...runtime.wfPackages }
  const client = clientVersion()
  if (client !== undefined) versions['@wf/client'] = client
  return {
    storage: choice.uri,
    storageFrom: choice.from,
    ...(choice.file === undefined ? {} : { configFile: choice.file }),
    backend: described?.backend ?? storage.constructor?.name ?? 'unknown',
    ...(described?.location === undefined ? {} : { location: described.location }),
    ...(described?.durability === undefined ? {} : { durability: described.durability }),
    ...(described?.durabilityReason === undefined ? {} : { durabilityReason: described.durabilityReason }),
    versions: Object.fromEntries(Object.entries(versions).sort(([a], [b]) => a.localeCompare(b))),
    node: `${runtime.node} (${runtime.platform} ${runtime.arch})`,
  }
}

const FROM: Record<StorageChoice['from'], string> = {
  flag: 'from --storage',
  env: 'from WF_STORAGE',
  config: 'from the config file',
  default: 'the default: no --storage, WF_STORAGE or wf.config.json; this folder is only on this machine',
}

/** The report as aligned lines. */
export function infoText(info: InfoReport, out: Pick<Out, 'color'>): string {
  const from =
    info.storageFrom === 'config' && info.configFile ? `from ${info.configFile}` : FROM[info.storageFrom]
  const rows: [string, string][] = [
    ['storage', `${info.storage} ${paint(out, 'dim', `(${from})`)}`],
    ['backend', info.backend],
  ]
  if (info.location !== undefined && info.location !== info.storage) rows.push(['location', info.location])
  rows.push(['durability', info.durability ?? paint(out, 'dim', 'not reported by this storage')])
  if (info.durabilityReason !== undefined) rows.push(['why', info.durabilityReason])
  const versions = Object.entries(info.versions).map(([name, version]) => `${name} ${version}`)
  rows.push(['wf', versions.join(', ') || 'unknown'], ['node', info.node])
  const width = Math.max(...rows.map(([label]) => label.length))
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n')
}

function clientVersion(): string | undefined {
  try {
    // dist/cli/info.js (and src/cli/info.ts) sit two folders below the package.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    return typeof pkg?.version === 'string' ? pkg.version : undefined
  } catch {
    return undefined
  }
}
