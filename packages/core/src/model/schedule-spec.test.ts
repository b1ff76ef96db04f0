// The ticks of a spec: counting a run of them (missed or paused ticks), and croner loaded only by a
// process that compiles a cron expression (a real child process on the built package).
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { countTicks, ticksOf } from './schedule-spec.js'

describe('countTicks', () => {
  const every = ticksOf({ every: '1s' }, 'test')

  it('counts the ticks after one and at or before another, with the first and the last', () => {
    expect(countTicks(every, 10_000, 15_000, 100)).toEqual({ first: 11_000, last: 15_000, count: 5 })
    expect(countTicks(every, 10_000, 14_999, 100)).toEqual({ first: 11_000, last: 14_000, count: 4 })
    expect(countTicks(every, 10_000, 10_999, 100)).toBeUndefined()
  })

  it('stops at the cap (a long outage of a per-second schedule)', () => {
    expect(countTicks(every, 0, 86_400_000, 10)).toEqual({ first: 1000, last: 10_000, count: 10 })
  })

  it('counts cron ticks in their time zone', () => {
    const daily = ticksOf({ cron: '0 3 * * *', timezone: 'Europe/Berlin' }, 'test')
    const counted = countTicks(daily, Date.parse('2026-03-01T00:00Z'), Date.parse('2026-03-04T00:00Z'), 100)
    expect(counted).toEqual({
      first: Date.parse('2026-03-01T02:00Z'),
      last: Date.parse('2026-03-03T02:00Z'),
      count: 3,
    })
  })
})

describe('loading croner', () => {
  const core = pathToFileURL(join(fileURLToPath(new URL('.', import.meta.url)), '../../dist/index.js')).href

  /**
   * Runs a worker for a few polls in a child process that declares `declares` and says whether
   * croner was loaded, as an ES module (seen by a resolve hook) or by require (in require.cache).
   */
  async function croner(declares: 'nothing' | 'every' | 'cron'): Promise<{ esm: boolean; cjs: boolean }> {
    const dir = await mkdtemp(join(tmpdir(), 'wf-croner-'))
    try {
      const seen = join(dir, 'seen')
      await writeFile(seen, '')
      await writeFile(
        join(dir, 'hooks.mjs'),
        `import { appendFileSync } from 'node:fs'
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context)
  if (resolved.url.includes('/croner/')) appendFileSync(${JSON.stringify(seen)}, resolved.url + '\\n')
  return resolved
}
`,
      )
      await writeFile(
        join(dir, 'register.mjs'),
        `import { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)})\n`,
      )
      await writeFile(
        join(dir, 'child.mjs'),
        `import { createRequire } from 'node:module'
const { createWorker, MemoryStorage, schedule, step } = await import(${JSON.stringify(core)})
const work = step('croner-child.work', () => 1)
if (${JSON.stringify(declares)} === 'every') schedule('hourly', { every: '1h' }, () => work())
if (${JSON.stringify(declares)} === 'cron') schedule('nightly', { cron: '0 3 * * *' }, () => work())
const worker = createWorker({ storage: new MemoryStorage(), handleSignals: false, pollIntervalMs: 10 })
await new Promise((resolve) => setTimeout(resolve, 100))
await worker.stop()
const cache = createRequire(import.meta.url).cache
console.log(JSON.stringify({ cjs: Object.keys(cache).some((key) => key.includes('/croner/')) }))
`,
      )
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          ['--import', pathToFileURL(join(dir, 'register.mjs')).href, join(dir, 'child.mjs')],
          (error, out) => (error ? reject(error) : resolve(out)),
        ),
      )
      const { cjs } = JSON.parse(stdout.trim().split('\n').pop() as string) as { cjs: boolean }
      return { esm: (await readFile(seen, 'utf8')).trim() !== '', cjs }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  it('is not loaded by a worker that declares no cron schedule', async () => {
    expect(await croner('nothing')).toEqual({ esm: false, cjs: false })
    expect(await croner('every')).toEqual({ esm: false, cjs: false })
  }, 30_000)

  it('is loaded once a cron schedule is declared', async () => {
    const loaded = await croner('cron')
    expect(loaded.esm || loaded.cjs).toBe(true)
  }, 30_000)
})
