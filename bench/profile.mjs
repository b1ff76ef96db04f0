// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, grouped by the part of
// the system it belongs to, so "where does a step's time go" reads as encode / storage / scheduling.
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

const CORE_AREAS = {
  'scheduler.js': 'engine: scheduling (scheduler.js)',
  'commit.js': 'engine: step commits (commit.js)',
  'execution.js': 'engine: step attempts (execution.js)',
  'store.js': 'engine: records (store.js)',
  'codec.js': 'engine: encode (codec.js)',
  'graph.js': 'engine: graph (graph.js)',
  'runtime.js': 'engine: runtime.js',
  'step.js': 'engine: step.js',
  'context.js': 'engine: step context (context.js)',
  'memory-storage.js': 'storage: MemoryStorage',
  'storage.js': 'engine: key checks (storage.js)',
}

/** The area a profiled function belongs to. */
export function areaOf({ functionName, url }) {
  if (functionName === '(idle)') return 'idle (waiting for I/O)'
  if (functionName === '(garbage collector)') return 'GC'
  if (functionName === '(program)') return 'V8 / native (program)'
  if (url.includes('/packages/core/dist/')) return CORE_AREAS[basename(url)] ?? `engine: ${basename(url)}`
  if (url.includes('devalue')) return 'engine: encode (devalue)'
  if (url.includes('/packages/storage-fs/')) return `storage-fs: ${basename(url)}`
  if (url.includes('/packages/storage-s3/') || url.includes('@aws-sdk') || url.includes('@smithy'))
    return 'storage-s3 + AWS SDK'
  if (/node:internal\/fs|node:fs/.test(url)) return 'Node fs (promises, file handles)'
  if (/async_hooks|async_local_storage|async_context/.test(url)) return 'AsyncLocalStorage (step context)'
  if (/task_queues|timers|promises/.test(url)) return 'Node promises / microtasks / timers'
  if (/crypto/.test(url)) return 'Node crypto'
  if (/node:internal\/(util|validators|errors|url|path)|node:path/.test(url)) return 'Node util / path'
  if (url === '') return `V8 builtins (${functionName || 'anonymous'})`
  if (url.startsWith('node:')) return `Node: ${url.slice(5)}`
  return `other: ${basename(url)}`
}

/** Self milliseconds per function and per area of one profile. */
export function summarise(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfUs = new Map()
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i + 1] ?? 0
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + delta)
  }
  const functions = new Map()
  const areas = new Map()
  let totalUs = 0
  for (const [id, us] of selfUs) {
    const { callFrame } = byId.get(id)
    const area = areaOf(callFrame)
    const where = callFrame.url ? `${basename(callFrame.url)}:${callFrame.lineNumber + 1}` : ''
    const name = `${callFrame.functionName || '(anonymous)'} ${where}`.trim()
    const fn = functions.get(name) ?? { name, area, us: 0 }
    fn.us += us
    functions.set(name, fn)
    areas.set(area, (areas.get(area) ?? 0) + us)
    totalUs += us
  }
  return {
    totalMs: totalUs / 1000,
    areas: [...areas].map(([area, us]) => ({ area, ms: us / 1000 })).sort((a, b) => b.ms - a.ms),
    functions: [...functions.values()].map((f) => ({ ...f, ms: f.us / 1000 })).sort((a, b) => b.ms - a.ms),
  }
}
