// Pipelined checkpoints (`pipelineCheckpoints`): dependents start while a record is written, and
// what wf promises still holds — records in causal order, the end only once all are durable, strict
// steps strict, a lost commit never built upon.
import { describe, expect, it } from 'vitest'
import {
  InvalidOptionsError,
  MemoryStorage,
  Runtime,
  type RuntimeOptions,
  type Storage,
  step,
  workflow,
} from '../index.js'
import { stagedStorage as durableWhen } from '../test-support/staged-storage.js'
import { interceptStorage } from '../testing/index.js'

const STEP_KEY = /^workflows\/([^/]+)\/steps\/(.+)$/

/** A storage whose step-record writes take `delayMs`, logging when each starts and lands. */
function slowSteps(delayMs: number) {
  const inner = new MemoryStorage()
  const log: string[] = []
  let inFlight = 0
  let maxInFlight = 0
  const storage = interceptStorage(inner, {
    put: async (next, key, data, condition) => {
      const match = STEP_KEY.exec(key)
      if (!match) return next(key, data, condition)
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      try {
        const result = await next(key, data, condition)
        log.push(`landed ${match[2]}`)
        return result
      } finally {
        inFlight--
      }
    },
  })
  return {
    inner,
    storage,
    log,
    get maxInFlight() {
      return maxInFlight
    },
  }
}

/**
 * A storage with `putStaged` like a journal's: a write is accepted at once (visible, its condition
 * decided) and made durable `syncMs` later, in order.
 */
function stagedStorage(syncMs: number) {
  let notDurable = 0
  let maxNotDurable = 0
  let lastSync: Promise<void> = Promise.resolve()
  const storage = durableWhen(() => {
    notDurable++
    maxNotDurable = Math.max(maxNotDurable, notDurable)
    lastSync = lastSync.then(() => new Promise((resolve) => setTimeout(resolve, syncMs)))
    return lastSync.then(() => {
      notDurable--
    })
  })
  return {
    storage,
    get maxNotDurable() {
      return maxNotDurable
    },
    get notDurable() {
      return notDurable
    },
  }
}

async function committed(storage: Storage, workflowId: string): Promise<string[]> {
  const { keys } = await storage.list(`workflows/${workflowId}/steps/`)
  return keys.map((key) => key.slice(`workflows/${workflowId}/steps/`.length))
}

const runtime = (storage: Storage, options: RuntimeOptions = {}) =>
  new Runtime(storage, { pipelineCheckpoints: true, ...options })

describe('pipelined checkpoints', () => {
  it('starts a step before its input is durable, and writes records in causal order', async () => {
    const { storage, log } = slowSteps(15)
    const inc = step('pipe.inc', (x: number) => {
      log.push(`start ${x}`)
      return x + 1
    })
    const end = step('pipe.end', (x: number) => x * 10)
    let node = inc(0)
    for (let i = 1; i < 6; i++) node = inc(node)
    const out = await runtime(storage).run(end(node), { workflowId: 'chain' })
    expect(out).toBe(60)
    // Every step started before its predecessor's record landed …
    const startOf = (x: number) => log.indexOf(`start ${x}`)
    const landedOf = (id: string) => log.indexOf(`landed ${id}`)
    expect(startOf(1)).toBeLessThan(landedOf('pipe.inc'))
    expect(startOf(5)).toBeLessThan(landedOf('pipe.inc_1'))
    // … but each record landed after its input's.
    const ids = ['pipe.inc', ...Array.from({ length: 5 }, (_, i) => `pipe.inc_${i + 1}`)]
    for (let i = 1; i < ids.length; i++)
      expect(landedOf(ids[i] as string)).toBeGreaterThan(landedOf(ids[i - 1] as string))
    // The run ended only once all of them were durable.
    expect((await committed(storage, 'chain')).sort()).toEqual([...ids].sort())
  })

  it('is off by default: a dependent starts only after its input landed', async () => {
    const { storage, log } = slowSteps(5)
    const inc = step('strict.inc', (x: number) => {
      log.push(`start ${x}`)
      return x + 1
    })
    await new Runtime(storage).run(inc(inc(inc(0))), { workflowId: 'strict' })
    expect(log).toEqual(['start 0', 'landed strict.inc', 'start 1', 'landed strict.inc_1', 'start 2'])
  })

  it('keeps a step with pipelineCheckpoints: false strict: it starts from durable inputs, and its dependents wait for it', async () => {
    const { storage, inner, log } = slowSteps(15)
    const seenAtStart: string[][] = []
    const inc = step('mixed.inc', (x: number) => x + 1)
    const charge = step(
      'mixed.charge',
      async (x: number) => {
        seenAtStart.push(await committed(inner, 'mixed'))
        log.push('start charge')
        return x
      },
      { pipelineCheckpoints: false },
    )
    const after = step('mixed.after', (x: number) => {
      log.push('start after')
      return x
    })
    expect(await runtime(storage).run(after(charge(inc(inc(0)))), { workflowId: 'mixed' })).toBe(2)
    expect(seenAtStart[0]?.sort()).toEqual(['mixed.inc', 'mixed.inc_1'])
    expect(log.indexOf('start after')).toBeGreaterThan(log.indexOf('landed mixed.charge'))
  })

  it('writes a record right after its input was accepted on a storage with putStaged, keeping at most maxCheckpointsInFlight not durable', async () => {
    const journal = stagedStorage(10)
    const inc = step('bound.inc', (x: number) => x + 1)
    let node = inc(0)
    for (let i = 1; i < 20; i++) node = inc(node)
    const out = await runtime(journal.storage, { maxCheckpointsInFlight: 3 }).run(node, {
      workflowId: 'bound',
    })
    expect(out).toBe(20)
    // Records were written before their inputs were durable …
    expect(journal.maxNotDurable).toBeGreaterThan(1)
    // … three that later steps built on, and a fourth written strictly (its dependents waited).
    expect(journal.maxNotDurable).toBeLessThanOrEqual(4)
    // The run ended with every record durable.
    expect(journal.notDurable).toBe(0)
    expect(await committed(journal.storage, 'bound')).toHaveLength(19)
  })

  it('pipelines per workflow (RunOptions) and stores the choice with it', async () => {
    const { storage, log } = slowSteps(10)
    const inc = step('perrun.inc', (x: number) => {
      log.push(`start ${x}`)
      return x + 1
    })
    const rt = new Runtime(storage)
    await rt.run(inc(inc(0)), { workflowId: 'perrun', pipelineCheckpoints: true })
    expect(log.indexOf('start 1')).toBeLessThan(log.indexOf('landed perrun.inc'))
    const record = JSON.parse(
      new TextDecoder().decode((await storage.get('workflows/perrun/workflow'))?.data),
    )
    expect(record.pipelineCheckpoints).toBe(true)
  })

  it('stops, committing nothing built on it, when another runner committed a step first with another value', async () => {
    const inner = new MemoryStorage()
    let raced = false
    const storage = interceptStorage(inner, {
      put: async (next, key, data, condition) => {
        if (!raced && key === 'workflows/race/steps/race.roll') {
          raced = true
          // Another runner's record of the same step, with another value, lands first.
          const theirs = JSON.parse(new TextDecoder().decode(data))
          theirs.output = { inline: '[7]' }
          await next(key, new TextEncoder().encode(JSON.stringify(theirs)), condition)
        }
        await new Promise((resolve) => setTimeout(resolve, 10))
        return next(key, data, condition)
      },
    })
    const roll = step('race.roll', () => 4)
    const double = step('race.double', (x: number) => x * 2)
    const end = step('race.end', (x: number) => x + 1)
    const seen: number[] = []
    const watch = step('race.watch', (x: number) => {
      seen.push(x)
      return x
    })
    await expect(
      runtime(storage).run(end(watch(double(roll()))), { workflowId: 'race' }),
    ).rejects.toMatchObject({ code: 'WF_LEASE_LOST' })
    // The dependents ran on our 4 but nothing of theirs was committed.
    expect(seen).toEqual([8])
    expect(await committed(inner, 'race')).toEqual(['race.roll'])
    // A resume goes on from the committed 7.
    expect(await new Runtime(inner).resume<number>('race')).toBe(15)
    expect(seen).toEqual([8, 14])
  })

  it('goes on when another runner committed the same value first', async () => {
    const inner = new MemoryStorage()
    let raced = false
    const storage = interceptStorage(inner, {
      put: async (next, key, data, condition) => {
        if (!raced && key === 'workflows/same/steps/same.roll') {
          raced = true
          await next(key, data, condition)
        }
        return next(key, data, condition)
      },
    })
    const roll = step('same.roll', () => 4)
    const double = step('same.double', (x: number) => x * 2)
    expect(await runtime(storage).run(double(double(roll())), { workflowId: 'same' })).toBe(16)
    expect((await committed(inner, 'same')).sort()).toEqual(['same.double', 'same.roll'])
  })

  it("gives a durable function's body only durable values", async () => {
    const { storage, inner } = slowSteps(10)
    const inc = step('fn.inc', (x: number) => x + 1)
    const seen: string[][] = []
    const fn = workflow('fn.pipe', async (ctx, n: number) => {
      let value = n
      for (let i = 0; i < 3; i++) {
        value = await ctx.run(inc(inc(value)))
        seen.push(await committed(inner, 'fn'))
      }
      return value
    })
    expect(await runtime(storage).run(fn(0), { workflowId: 'fn' })).toBe(6)
    // Each graph call's two steps were durable when the body got its value.
    for (let i = 0; i < 3; i++)
      expect(seen[i]?.filter((id) => id.includes('fn.inc')).length).toBe(2 * (i + 1))
  })

  it('refuses options that are not booleans or positive integers', async () => {
    const storage = new MemoryStorage()
    expect(() => new Runtime(storage, { pipelineCheckpoints: 'yes' as unknown as boolean })).toThrow(
      InvalidOptionsError,
    )
    expect(() => new Runtime(storage, { maxCheckpointsInFlight: 0 })).toThrow(/maxCheckpointsInFlight/)
    expect(() => step('bad.pipe', () => 1, { pipelineCheckpoints: 1 as unknown as boolean })).toThrow(
      /pipelineCheckpoints must be a boolean/,
    )
    const ok = step('ok.pipe', () => 1)
    await expect(
      new Runtime(storage).run(ok(), { pipelineCheckpoints: 'no' as unknown as boolean }),
    ).rejects.toThrow(/pipelineCheckpoints must be a boolean/)
  })
})
