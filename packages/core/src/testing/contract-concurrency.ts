// Contract tests for what leases and exactly-once commits stand on: atomic puts under concurrent
// readers, and conditional writes (create-if-absent, compare-and-swap) raced by many real writers.

import { describe, expect, it } from 'vitest'
import type { StoredValue } from '../storage/storage.js'
import {
  type ContractContext,
  expectConditionFailed,
  fillByte,
  isConditionFailed,
  text,
  utf8,
} from './support.js'

const PARALLEL_WRITERS = 50

function bodyText(value: StoredValue | undefined): string | undefined {
  return value && text(value.data)
}

/** Splits settled puts into the winners and the errors of the losers. */
function outcome(results: PromiseSettledResult<{ version: string }>[]): {
  winners: { index: number; version: string }[]
  losses: unknown[]
} {
  const winners: { index: number; version: string }[] = []
  const losses: unknown[] = []
  results.forEach((result, index) => {
    if (result.status === 'fulfilled') winners.push({ index, version: result.value.version })
    else losses.push(result.reason)
  })
  return { winners, losses }
}

export function describeConcurrency(ctx: ContractContext): void {
  const { timeoutMs } = ctx

  describe('atomic put', () => {
    it(
      'lets concurrent readers see only whole values some writer wrote, never a mix or a truncated one',
      async () => {
        const storage = ctx.storage()
        const key = 'atomic/value'
        const size = 1024 * 1024
        const writers = 4
        const writesEach = 8
        // Each write fills the value with its own byte; a byte joins `started` just before its put
        // begins, so a reader may only ever see a value filled with a started byte.
        const started = new Set<number>([0])
        await storage.put(key, new Uint8Array(size))
        let writing = true
        const problems: string[] = []
        let reads = 0

        async function writer(w: number): Promise<void> {
          for (let i = 0; i < writesEach; i++) {
            const byte = 1 + w * writesEach + i
            started.add(byte)
            await storage.put(key, new Uint8Array(size).fill(byte))
          }
        }
        async function reader(): Promise<void> {
          do {
            const value = await storage.get(key)
            reads++
            if (value === undefined) problems.push('the key was missing during an overwrite')
            else if (value.data.byteLength !== size)
              problems.push(`read ${value.data.byteLength} of ${size} bytes`)
            else {
              const byte = fillByte(value.data)
              if (byte === undefined) problems.push('read a value mixing bytes of different writes')
              else if (!started.has(byte)) problems.push(`read byte ${byte}, which no writer had written yet`)
            }
            // Yield to timers and I/O: a backend whose get never leaves the microtask queue would
            // otherwise starve writers that wait on a timer.
            await new Promise((resolve) => setImmediate(resolve))
          } while (writing && problems.length === 0)
        }

        const readers = Array.from({ length: 4 }, reader)
        try {
          await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)))
        } finally {
          writing = false
        }
        await Promise.all(readers)
        expect(problems).toEqual([])
        expect(reads).toBeGreaterThan(0)

        const lastBytes = Array.from({ length: writers }, (_, w) => w * writesEach + writesEach)
        const final = await storage.get(key)
        expect(final?.data.byteLength).toBe(size)
        expect(lastBytes).toContain(final && fillByte(final.data))
      },
      timeoutMs,
    )
  })

  describe('create-if-absent (ifAbsent)', () => {
    it(
      `lets exactly one of ${PARALLEL_WRITERS} parallel writers create a key; the others reject with ConditionFailedError`,
      async () => {
        const storage = ctx.storage()
        const key = 'race/absent'
        const results = await Promise.allSettled(
          Array.from({ length: PARALLEL_WRITERS }, (_, i) =>
            storage.put(key, utf8(`writer ${i}`), { ifAbsent: true }),
          ),
        )
        const { winners, losses } = outcome(results)
        expect(winners).toHaveLength(1)
        expect(losses.filter((error) => !isConditionFailed(error)).map(String)).toEqual([])
        const winner = winners[0] as { index: number; version: string }
        const stored = await storage.get(key)
        expect(bodyText(stored)).toBe(`writer ${winner.index}`)
        expect(stored?.version).toBe(winner.version)
      },
      timeoutMs,
    )

    it(
      'rejects ifAbsent on an existing key with ConditionFailedError and keeps the value and version',
      async () => {
        const storage = ctx.storage()
        const { version } = await storage.put('exists', utf8('kept'))
        await expectConditionFailed(
          () => storage.put('exists', utf8('lost'), { ifAbsent: true }),
          'put ifAbsent',
        )
        const stored = await storage.get('exists')
        expect(bodyText(stored)).toBe('kept')
        expect(stored?.version).toBe(version)
      },
      timeoutMs,
    )

    it(
      'creates with ifAbsent a key that was deleted',
      async () => {
        const storage = ctx.storage()
        await storage.put('again', utf8('old'))
        await storage.delete('again')
        const { version } = await storage.put('again', utf8('new'), { ifAbsent: true })
        const stored = await storage.get('again')
        expect(bodyText(stored)).toBe('new')
        expect(stored?.version).toBe(version)
      },
      timeoutMs,
    )
  })

  describe('compare-and-swap (ifVersion)', () => {
    it(
      `lets exactly one of ${PARALLEL_WRITERS} parallel writers from one version win; the others reject with ConditionFailedError`,
      async () => {
        const storage = ctx.storage()
        const key = 'race/cas'
        const { version } = await storage.put(key, utf8('start'))
        const results = await Promise.allSettled(
          Array.from({ length: PARALLEL_WRITERS }, (_, i) =>
            storage.put(key, utf8(`writer ${i}`), { ifVersion: version }),
          ),
        )
        const { winners, losses } = outcome(results)
        expect(winners).toHaveLength(1)
        expect(losses.filter((error) => !isConditionFailed(error)).map(String)).toEqual([])
        const winner = winners[0] as { index: number; version: string }
        expect(winner.version).not.toBe(version)
        const stored = await storage.get(key)
        expect(bodyText(stored)).toBe(`writer ${winner.index}`)
        expect(stored?.version).toBe(winner.version)
      },
      timeoutMs,
    )

    it(
      'writes when the version matches and returns the new version',
      async () => {
        const storage = ctx.storage()
        const first = await storage.put('cas', utf8('one'))
        const second = await storage.put('cas', utf8('two'), { ifVersion: first.version })
        const stored = await storage.get('cas')
        expect(bodyText(stored)).toBe('two')
        expect(stored?.version).toBe(second.version)
      },
      timeoutMs,
    )

    it(
      'rejects a stale version with ConditionFailedError and keeps the value and version',
      async () => {
        const storage = ctx.storage()
        const stale = await storage.put('stale', utf8('one'))
        const current = await storage.put('stale', utf8('two'))
        await expectConditionFailed(
          () => storage.put('stale', utf8('three'), { ifVersion: stale.version }),
          'put with a stale ifVersion',
        )
        const stored = await storage.get('stale')
        expect(bodyText(stored)).toBe('two')
        expect(stored?.version).toBe(current.version)
      },
      timeoutMs,
    )

    it(
      'rejects ifVersion on a missing key with ConditionFailedError and does not create it',
      async () => {
        const storage = ctx.storage()
        const other = await storage.put('other', utf8('x'))
        await expectConditionFailed(
          () => storage.put('missing', utf8('x'), { ifVersion: other.version }),
          'put ifVersion on a missing key',
        )
        const deleted = await storage.put('deleted', utf8('x'))
        await storage.delete('deleted')
        await expectConditionFailed(
          () => storage.put('deleted', utf8('y'), { ifVersion: deleted.version }),
          'put ifVersion on a deleted key',
        )
        expect(await storage.get('missing')).toBeUndefined()
        expect(await storage.get('deleted')).toBeUndefined()
        expect((await storage.list('')).keys).toEqual(['other'])
      },
      timeoutMs,
    )
  })
}
